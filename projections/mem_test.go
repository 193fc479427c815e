package projections_test

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// memKeys is the number of keys the memory benchmarks build:
// KMSLEDGER_BENCH_KEYS, default 100,000.
func memKeys(tb testing.TB) int {
	n := 100_000
	if s := os.Getenv("KMSLEDGER_BENCH_KEYS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n <= 0 {
			tb.Fatalf("KMSLEDGER_BENCH_KEYS=%q: want a positive number", s)
		}
	}
	return n
}

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

// memEnclaves is the number of enclaves the keys are spread over:
// KMSLEDGER_BENCH_ENCLAVES, default 1.
func memEnclaves(tb testing.TB) int {
	n := 1
	if s := os.Getenv("KMSLEDGER_BENCH_ENCLAVES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n <= 0 {
			tb.Fatalf("KMSLEDGER_BENCH_ENCLAVES=%q: want a positive number", s)
		}
	}
	return n
}

// buildKeys applies the events that create n keys (one version each)
// spread over enclaves enclaves (e0, e1, ...) to st, as a replay would.
func buildKeys(tb testing.TB, st *projections.State, n, enclaves int) {
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

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkStateMemory reports what the projection of N keys
// (KMSLEDGER_BENCH_KEYS, default 100,000) spread over
// KMSLEDGER_BENCH_ENCLAVES enclaves (default 1) costs in live heap per
// key, built through the apply path as a replay builds it.
func BenchmarkStateMemory(b *testing.B) {
	n, enclaves := memKeys(b), memEnclaves(b)
	for b.Loop() {
		before := heapInUse()
		st := projections.NewState()
		buildKeys(b, st, n, enclaves)
		after := heapInUse()
		b.ReportMetric(float64(after-before)/float64(n), "B/key")
		runtime.KeepAlive(st)
	}
}
