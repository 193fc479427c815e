package ledger

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestReopenKeepsEverything(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	s := openTestStore(t, dir)
	subj := KeySubject("enc", "k")
	seqs := mustAppend(t, s, subj, 5)
	if _, _, err := s.Append(ctx, testEvent(subj, "before-close"), Expect{Seq: seqs[4]}); err != nil {
		t.Fatalf("Append err = %v", err)
	}
	if err := s.PutSecret(ctx, "enc.k.1", []byte("sealed")); err != nil {
		t.Fatalf("PutSecret err = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close err = %v", err)
	}

	s = openTestStore(t, dir)
	if head, err := s.Head(ctx); err != nil || head != 6 {
		t.Fatalf("Head() after reopen = (%d, %v), want (6, nil)", head, err)
	}
	var got []Event
	if _, err := s.Replay(ctx, 0, func(ev Event) error { got = append(got, ev); return nil }); err != nil || len(got) != 6 {
		t.Fatalf("Replay after reopen: %d events, err %v, want 6, nil", len(got), err)
	}
	if got[5].CommandID != "before-close" {
		t.Errorf("last event CommandID = %q, want before-close", got[5].CommandID)
	}
	// Expectations and the duplicates window survive the restart.
	if _, _, err := s.Append(ctx, testEvent(subj, "after"), Expect{Seq: 5}); !errors.Is(err, ErrConflict) {
		t.Errorf("Append with stale expectation after reopen err = %v, want ErrConflict", err)
	}
	if seq, dup, err := s.Append(ctx, testEvent(subj, "before-close"), Expect{Any: true}); err != nil || !dup || seq != 6 {
		t.Errorf("retried Append after reopen = (%d, %v, %v), want (6, true, nil)", seq, dup, err)
	}
	if b, err := s.GetSecret(ctx, "enc.k.1"); err != nil || string(b) != "sealed" {
		t.Errorf("GetSecret after reopen = (%q, %v), want (sealed, nil)", b, err)
	}
}

func TestLedgerRefusesDeleteAndPurge(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	mustAppend(t, s, KeySubject("enc", "k"), 3)

	ops := []struct {
		name string
		do   func() error
	}{
		{"DeleteMsg", func() error { return s.ledger.DeleteMsg(ctx, 2) }},
		{"SecureDeleteMsg", func() error { return s.ledger.SecureDeleteMsg(ctx, 2) }},
		{"Purge", func() error { return s.ledger.Purge(ctx) }},
		{"Purge subject", func() error { return s.ledger.Purge(ctx, jetstream.WithPurgeSubject(KeySubject("enc", "k"))) }},
		{"rollup", func() error {
			m := nats.NewMsg(KeySubject("enc", "k"))
			m.Data = []byte(`{}`)
			m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
			_, err := s.js.PublishMsg(ctx, m)
			return err
		}},
	}
	for _, op := range ops {
		if err := op.do(); err == nil {
			t.Errorf("%s on LEDGER err = nil, want refusal", op.name)
		}
	}
	info, err := s.ledger.Info(ctx)
	if err != nil {
		t.Fatalf("Info err = %v", err)
	}
	if info.State.Msgs != 3 || info.State.FirstSeq != 1 || info.State.LastSeq != 3 {
		t.Fatalf("LEDGER state = %d msgs [%d, %d], want 3 msgs [1, 3]", info.State.Msgs, info.State.FirstSeq, info.State.LastSeq)
	}
	cfg := info.Config
	if !cfg.DenyDelete || !cfg.DenyPurge || cfg.AllowRollup || !cfg.AllowDirect || cfg.MaxAge != 0 ||
		cfg.MaxMsgs != -1 || cfg.MaxBytes != -1 || cfg.Storage != jetstream.FileStorage || cfg.Duplicates != singleDuplicateWindow {
		t.Fatalf("LEDGER config = %+v, want append-only file stream without limits", cfg)
	}
}

func TestOpenLocksDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	openTestStore(t, dir)
	s2, err := Open(context.Background(), Config{Dir: dir})
	if !errors.Is(err, ErrLocked) {
		if s2 != nil {
			s2.Close()
		}
		t.Fatalf("second Open(%s) err = %v, want ErrLocked", dir, err)
	}
}

func TestClosedStore(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	if err := s.Close(); err != nil {
		t.Fatalf("Close err = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close err = %v, want nil", err)
	}
	calls := map[string]error{}
	_, _, calls["Append"] = s.Append(ctx, testEvent(KeySubject("e", "k"), "c"), Expect{})
	_, calls["Head"] = s.Head(ctx)
	_, calls["LastSeq"] = s.LastSeq(ctx, "ledger.>")
	_, calls["Replay"] = s.Replay(ctx, 0, func(Event) error { return nil })
	_, calls["Subscribe"] = s.Subscribe(ctx, 0, func(Event) {})
	calls["PutSecret"] = s.PutSecret(ctx, "e.k.1", nil)
	_, calls["GetSecret"] = s.GetSecret(ctx, "e.k.1")
	calls["EraseSecret"] = s.EraseSecret(ctx, "e.k.1")
	_, calls["ListSecrets"] = s.ListSecrets(ctx, "")
	for name, err := range calls {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close err = %v, want ErrClosed", name, err)
		}
	}
}

func TestOpenListen(t *testing.T) {
	t.Parallel()
	s, err := Open(context.Background(), Config{Dir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("Open(Listen) err = %v", err)
	}
	defer s.Close()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("nats.Connect(%s) err = %v", s.ClientURL(), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Stream(context.Background(), ledgerStream); err != nil {
		t.Fatalf("remote client: Stream(LEDGER) err = %v", err)
	}
	if openTestStore(t, "").ClientURL() != "" {
		t.Errorf("ClientURL() without Listen is not empty")
	}
}
