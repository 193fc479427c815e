package ledger

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestGoldenHSMKindRemote pins HSMKindRemote to the kind recorded for a
// remote HSM in the golden system.hsm_added.v1 event: renaming the
// constant's value would leave ledgers already written with a kind no
// node writes any more.
func TestGoldenHSMKindRemote(t *testing.T) {
	_, ev := readGoldenEvent(t, TypeHSMAdded)
	var p HSMAdded
	dec := json.NewDecoder(bytes.NewReader(ev.Payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatal(err)
	}
	if p.Kind != HSMKindRemote {
		t.Errorf("golden %s kind = %q, want HSMKindRemote %q", TypeHSMAdded, p.Kind, HSMKindRemote)
	}
}
