package projections

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
)

func readGolden(t *testing.T, typ string) ledger.Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "events", typ+".json"))
	if err != nil {
		t.Fatalf("golden file for %s: %v", typ, err)
	}
	var ev ledger.Event
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("decode golden %s: %v", typ, err)
	}
	if ev.Type != typ {
		t.Fatalf("golden %s has type %q", typ, ev.Type)
	}
	return ev
}

// TestGoldenFilePerEventType: every event type has a golden file in
// testdata/events.
func TestGoldenFilePerEventType(t *testing.T) {
	var files []string
	matches, _ := filepath.Glob(filepath.Join("..", "testdata", "events", "*.json"))
	for _, m := range matches {
		files = append(files, filepath.Base(m[:len(m)-len(".json")]))
	}
	for _, typ := range ledger.Types() {
		if !slices.Contains(files, typ) {
			t.Errorf("event type %s has no golden file", typ)
		}
	}
}

// TestGoldenEvents decodes the golden file of every event type ever
// written and folds them, in a scripted order, into a State, checking the
// state after each step. A change to an event schema that breaks old
// events fails here.
func TestGoldenEvents(t *testing.T) {
	const user = "h1:arR75DQsEPiGAUDhKYyrK9xo_XSCttl0nyua-NNvjYc"
	s := NewState()
	steps := []struct {
		typ   string
		check func(*State) bool
	}{
		{ledger.TypeSystemInitialized, func(s *State) bool { return s.Initialized && s.DefaultType == "AES256" && len(s.SealedREK) == 16 }},
		{ledger.TypeHSMAdded, func(s *State) bool {
			return len(s.HSMs) == 2 && s.HSMs["kmsledger:hsm/rek-wrapper"].Name == "remote" && len(s.HSMs["kmsledger:hsm/rek-wrapper"].SealedREK) == 17
		}},
		{ledger.TypeHSMRemoved, func(s *State) bool { return len(s.HSMs) == 1 && s.HSMs["soft:0123456789abcdef"] == nil }},
		{ledger.TypeEnclaveCreated, func(s *State) bool { return s.Enclaves["minio"] != nil }},
		{ledger.TypeKeyCreated, func(s *State) bool {
			k := s.Enclaves["minio"].Keys["my-key"]
			return k != nil && k.Latest().Version == 1 && k.Latest().Type == "AES256" && k.Latest().SecretRef("minio", "my-key") == "minio.my-key.1"
		}},
		{ledger.TypeKeyDisabled, func(s *State) bool { return s.Enclaves["minio"].Keys["my-key"].Disabled }},
		{ledger.TypeKeyEnabled, func(s *State) bool {
			k := s.Enclaves["minio"].Keys["my-key"]
			return k.Disabled && !k.Version(1).Disabled // version 1 enabled; the key stays disabled
		}},
		{ledger.TypeKeyDeletionScheduled, func(s *State) bool {
			k := s.Enclaves["minio"].Keys["my-key"]
			return k.DeletionDeadline().Equal(time.Date(2026, 11, 30, 15, 0, 2, 0, time.UTC)) && errors.Is(k.Usable(k.Latest()), ErrKeyPendingDeletion)
		}},
		{ledger.TypeKeyRestored, func(s *State) bool {
			k := s.Enclaves["minio"].Keys["my-key"]
			return k.DeletionDeadline().IsZero() && errors.Is(k.Usable(k.Latest()), ErrKeyDisabled)
		}},
		{ledger.TypeKeyImported, func(s *State) bool {
			v := s.Enclaves["minio"].Keys["imported"].Latest()
			return v.Imported && v.Type == "ChaCha20" && v.Source() != nil && v.Source().Kind == "kes-fs" && v.Source().Format == "protobuf"
		}},
		{ledger.TypeKeyVersionDeleted, func(s *State) bool { return s.Enclaves["minio"].Keys["my-key"] == nil }},
		{ledger.TypeKeyDeleted, func(s *State) bool {
			e := s.Enclaves["minio"]
			return e.Keys["imported"] == nil && e.Tombstones["imported"] != nil && e.Tombstones["my-key"] != nil
		}},
		{ledger.TypeKeyNameReleased, func(s *State) bool { return s.Enclaves["minio"].Tombstones["imported"] == nil }},
		{ledger.TypeIdentityCreated, func(s *State) bool {
			id := s.Enclaves["minio"].Identities[user]
			return id != nil && id.Privilege == "User" && id.Tags["team"] == "storage"
		}},
		{ledger.TypePolicyCreated, func(s *State) bool {
			p := s.Enclaves["minio"].Policies["minio"]
			return p != nil && slices.Equal(p.Allow["KEY:GENERATE"], []string{"minio-*"}) && slices.Equal(p.Deny["KEY:DECRYPT"], []string{"minio-secret"})
		}},
		{ledger.TypePolicyAssigned, func(s *State) bool { return s.Enclaves["minio"].Identities[user].Policy == "minio" }},
		{ledger.TypePolicyDeleted, func(s *State) bool { return s.Enclaves["minio"].Policies["minio"] == nil }},
		{ledger.TypeIdentityDeleted, func(s *State) bool { return s.Enclaves["minio"].Identities[user] == nil }},
		{ledger.TypeEnclaveDeleted, func(s *State) bool { return s.Enclaves["minio"] == nil }},
	}
	for i, st := range steps {
		ev := readGolden(t, st.typ)
		ev.Seq = uint64(i + 1)
		if err := s.Apply(ev); err != nil {
			t.Fatalf("Apply(%s) err = %v, want nil", st.typ, err)
		}
		if !st.check(s) {
			t.Fatalf("state after %s is not as expected", st.typ)
		}
	}
	created := readGolden(t, ledger.TypeEnclaveCreated)
	created.Seq = 98
	if err := s.Apply(created); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ledger.Event{Type: "key.rotated.v9", Enclave: "minio", Seq: 99, Payload: []byte("{}")}); err == nil {
		t.Fatal("Apply(unknown type) err = nil, want error")
	}
}
