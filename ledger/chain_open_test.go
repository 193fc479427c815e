package ledger

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestEnsureStreamUpdatesOnlyAChange: opening a stream whose
// configuration is already the wanted one sends no update (in a cluster
// it would clear the new group's preferred member, and costs a meta
// proposal at every start); a changed configuration is updated.
func TestEnsureStreamUpdatesOnlyAChange(t *testing.T) {
	s := openTestStore(t, "")
	ctx := context.Background()
	var mu sync.Mutex
	var updates []string // descriptions, in the order of the server's update advisories
	sub, err := s.nc.Subscribe("$JS.EVENT.ADVISORY.STREAM.UPDATED.>", func(m *nats.Msg) {
		var adv struct {
			Stream string `json:"stream"`
		}
		_ = json.Unmarshal(m.Data, &adv)
		info, err := s.js.Stream(ctx, adv.Stream)
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			updates = append(updates, adv.Stream+": "+info.CachedInfo().Config.Description)
		} else {
			updates = append(updates, adv.Stream+": "+err.Error())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	seen := func(n int) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(updates) >= n
		}
	}

	changed := secretsConfig(1)
	changed.Description = "changed"
	if _, err := s.ensureStream(ctx, changed); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, seen(1))
	// The streams as Open wants them: nothing to update, except SECRETS.
	for _, c := range []jetstream.StreamConfig{ledgerConfig(1, s.dupWindow), auditConfig(1), secretsConfig(1)} {
		if _, err := s.ensureStream(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, seen(2))
	// Advisories come in order: one more update after the last one
	// expected proves that no other came in between.
	changed.Description = "changed again"
	if _, err := s.ensureStream(ctx, changed); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, seen(3))
	mu.Lock()
	defer mu.Unlock()
	want := []string{"SECRETS: changed", "SECRETS: " + secretsConfig(1).Description, "SECRETS: changed again"}
	if len(updates) != len(want) {
		t.Fatalf("update advisories %q, want %q", updates, want)
	}
	for i := range want {
		if updates[i] != want[i] {
			t.Fatalf("update advisories %q, want %q", updates, want)
		}
	}
}
