package ledger

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// openTestStore opens a Store on dir (a fresh temp dir if "") and closes it
// in t.Cleanup. Close is idempotent, so tests may close it earlier.
func openTestStore(tb testing.TB, dir string) *Store {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	s, err := Open(context.Background(), Config{Dir: dir})
	if err != nil {
		tb.Fatalf("Open(%s) err = %v, want nil", dir, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close() err = %v, want nil", err)
		}
	})
	return s
}

// testEvent returns a valid event on subject with command id cmd.
func testEvent(subject, cmd string) Event {
	return Event{
		Type:      "test.happened.v1",
		ID:        "ev-" + cmd,
		Time:      time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Actor:     "h1:test",
		Enclave:   "enc",
		Aggregate: subject,
		CommandID: cmd,
		Payload:   json.RawMessage(`{"n":1}`),
	}
}

// mustAppend appends n events with Expect{Any: true} on subject and returns
// their sequences.
func mustAppend(tb testing.TB, s *Store, subject string, n int) []uint64 {
	tb.Helper()
	seqs := make([]uint64, n)
	for i := range n {
		seq, _, err := s.Append(context.Background(), testEvent(subject, rand.Text()), Expect{Any: true})
		if err != nil {
			tb.Fatalf("Append(%s #%d) err = %v, want nil", subject, i, err)
		}
		seqs[i] = seq
	}
	return seqs
}

// waitFor polls cond until it holds, failing the test after timeout (the
// checkFor pattern of nats-server's tests; the timeout only prevents a
// hang).
func waitFor(tb testing.TB, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// bareServer starts a NATS server without JetStream (so no stream and no
// JetStream API ever answers) and returns a connection to it; both end
// with the test.
func bareServer(tb testing.TB) *nats.Conn {
	tb.Helper()
	ns, err := server.NewServer(&server.Options{DontListen: true, NoSigs: true})
	if err != nil {
		tb.Fatal(err)
	}
	ns.Start()
	tb.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		tb.Fatal("server not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}
