package projections

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
)

// eventFeed builds ledger events as the ledger hands them to a
// projection: each one encoded and decoded on its own, so that every
// string of an event is its own allocation, as after a replay.
type eventFeed struct {
	tb  testing.TB
	seq uint64
	at  time.Time
}

func (f *eventFeed) event(typ, enclave, subject, actor string, p any) ledger.Event {
	f.tb.Helper()
	payload, err := json.Marshal(p)
	if err != nil {
		f.tb.Fatal(err)
	}
	f.seq++
	f.at = f.at.Add(time.Millisecond)
	b, err := json.Marshal(ledger.Event{Type: typ, ID: fmt.Sprintf("%032x", f.seq), Time: f.at, Actor: actor,
		Enclave: enclave, Aggregate: subject, CommandID: fmt.Sprintf("cmd-%d", f.seq), Payload: payload})
	if err != nil {
		f.tb.Fatal(err)
	}
	var ev ledger.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		f.tb.Fatal(err)
	}
	ev.Seq = f.seq
	return ev
}

// memActor is an identity as the ledger records it.
const memActor = "h1:Q2hlY2tpbmcgdGhlIHNpemUgb2YgYW4gaWRlbnRpdHkgaGVyZQ"

// BuildKeys applies the events that create n keys (one version each)
// spread over enclaves enclaves (e0, e1, ...) to st, as a replay would.
// It is exported to the package's external tests (mem_test.go).
func BuildKeys(tb testing.TB, st *State, n, enclaves int) {
	tb.Helper()
	f := &eventFeed{tb: tb, at: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	apply := func(ev ledger.Event) {
		if err := st.Apply(ev); err != nil {
			tb.Fatal(err)
		}
	}
	apply(f.event(ledger.TypeSystemInitialized, "", ledger.SystemSubject(), memActor, ledger.SystemInitialized{RootIdentity: memActor}))
	for e := range enclaves {
		name := fmt.Sprintf("e%d", e)
		apply(f.event(ledger.TypeEnclaveCreated, "", ledger.EnclaveSubject(name), memActor, ledger.EnclaveCreated{Name: name}))
	}
	for i := range n {
		enc, name := fmt.Sprintf("e%d", i%enclaves), fmt.Sprintf("bucket-%07d", i)
		ev := f.event(ledger.TypeKeyCreated, enc, ledger.KeySubject(enc, name), memActor, ledger.KeyCreated{
			Name: name, Version: 1, Type: "AES256",
			SecretRef:   ledger.AttemptSecretRef(enc, name, 1, fmt.Sprintf("%032x", f.seq+1)),
			Fingerprint: fmt.Sprintf("%064x", i),
		})
		apply(ev)
	}
}
