package ledger

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestSecretsOneMessagePerSubject: SECRETS holds at most one message per
// subject whoever writes. A stream with an earlier version's
// configuration (no such limit) gets the limit when the store opens. A
// message published straight to the stream on an occupied reference,
// without the expectation header PutSecret sent before (a writer that
// can reach the stream, planting material), is refused, and the material
// stays. A single node stores the material without headers. An erased
// reference is free again.
func TestSecretsOneMessagePerSubject(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	earlier := secretsConfig(1)
	earlier.MaxMsgsPerSubject, earlier.DiscardNewPerSubject = -1, false
	if _, err := s.js.UpdateStream(ctx, earlier); err != nil {
		t.Fatal(err)
	}
	ref := SecretRef("enc", "k", 1)
	if err := s.PutSecret(ctx, ref, []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	info, err := s.secrets.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.Config; c.MaxMsgsPerSubject != 1 || !c.DiscardNewPerSubject || c.Discard != secretsConfig(1).Discard {
		t.Fatalf("SECRETS after Open: %d messages per subject, discard new per subject %v; want 1, true", c.MaxMsgsPerSubject, c.DiscardNewPerSubject)
	}
	_, err = s.js.PublishMsg(ctx, &nats.Msg{Subject: secretSubject(ref), Data: []byte("planted")})
	if !isSubjectFull(err) {
		t.Fatalf("a second message on %s: err = %v, want the stream's refusal", ref, err)
	}
	if err := s.PutSecret(ctx, ref, []byte("other")); !errors.Is(err, ErrSecretExists) {
		t.Errorf("PutSecret on an occupied reference err = %v, want ErrSecretExists", err)
	}
	if got, err := s.GetSecret(ctx, ref); err != nil || string(got) != "sealed" {
		t.Fatalf("GetSecret = %q, %v; want the first material", got, err)
	}
	if err := s.PutSecret(ctx, SecretRef("enc", "k", 2), []byte("v2")); err != nil {
		t.Fatal(err)
	}
	m, err := s.secrets.GetLastMsgForSubject(ctx, secretSubject(SecretRef("enc", "k", 2)))
	if err != nil {
		t.Fatal(err)
	}
	for k := range m.Header { // a direct get adds where the message is
		if k != "Nats-Sequence" && k != "Nats-Stream" && k != "Nats-Subject" && k != "Nats-Time-Stamp" {
			t.Errorf("material stored with header %s: %q, want none on a single node", k, m.Header[k])
		}
	}
	if err := s.EraseSecret(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSecret(ctx, ref, []byte("again")); err != nil {
		t.Errorf("PutSecret after EraseSecret err = %v, want nil", err)
	}
}
