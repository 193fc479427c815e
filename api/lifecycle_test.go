package api_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
)

var (
	errDisabled = &client.Error{Status: 409, Message: "key is disabled"}
	errPending  = &client.Error{Status: 409, Message: "key is pending deletion"}
	errTomb     = &client.Error{Status: 409, Message: "key was destroyed: its name stays reserved until an admin releases it"}
)

func TestDisableEnable(t *testing.T) {
	s := newStack(t)
	c := s.client("")
	mustOK(t, c.CreateEnclave(ctx, "e1"))
	mustOK(t, c.CreateKey(ctx, "e1", "k", "", false))
	g, err := c.GenerateKey(ctx, "e1", "k", 0, []byte("ad"), 0)
	mustOK(t, err)

	mustOK(t, c.DisableKey(ctx, "e1", "k", 0))
	if _, err := c.GenerateKey(ctx, "e1", "k", 0, nil, 0); !errors.Is(err, errDisabled) {
		t.Fatalf("GenerateKey(disabled) err = %v, want %v", err, errDisabled)
	}
	if _, err := c.Decrypt(ctx, "e1", "k", 0, g.Ciphertext, []byte("ad")); !errors.Is(err, errDisabled) {
		t.Fatalf("Decrypt(disabled) err = %v, want %v", err, errDisabled)
	}
	if _, err := c.Encrypt(ctx, "e1", "k", 0, []byte("x"), nil); !errors.Is(err, errDisabled) {
		t.Fatalf("Encrypt(disabled) err = %v, want %v", err, errDisabled)
	}
	info, err := c.KeyInfo(ctx, "e1", "k")
	mustOK(t, err)
	if info.State != "disabled" {
		t.Fatalf("KeyInfo state = %q, want disabled", info.State)
	}
	if _, err := c.KeyStatus(ctx, "e1", "k", 0); err != nil {
		t.Fatalf("KeyStatus(disabled) err = %v: a disabled key still exists", err)
	}
	// Survives a restart (it is a ledger event).
	s = s.restart()
	c = s.client("")
	if _, err := c.Decrypt(ctx, "e1", "k", 0, g.Ciphertext, []byte("ad")); !errors.Is(err, errDisabled) {
		t.Fatalf("Decrypt(disabled, after restart) err = %v", err)
	}
	mustOK(t, c.EnableKey(ctx, "e1", "k", 0))
	d, err := c.Decrypt(ctx, "e1", "k", 0, g.Ciphertext, []byte("ad"))
	mustOK(t, err)
	if !bytes.Equal(d.Plaintext, g.Plaintext) {
		t.Fatal("Decrypt after enable: wrong plaintext")
	}

	// One version: v1 disabled, v2 (latest) works.
	mustOK(t, c.CreateKey(ctx, "e1", "k", "", true))
	mustOK(t, c.DisableKey(ctx, "e1", "k", 1))
	if _, err := c.Decrypt(ctx, "e1", "k", 0, g.Ciphertext, []byte("ad")); !errors.Is(err, errDisabled) {
		t.Fatalf("Decrypt(v1 disabled) err = %v", err)
	}
	g2, err := c.GenerateKey(ctx, "e1", "k", 0, nil, 0)
	mustOK(t, err)
	if g2.Version != 2 {
		t.Fatalf("GenerateKey version = %d, want 2", g2.Version)
	}
	info, err = c.KeyInfo(ctx, "e1", "k")
	mustOK(t, err)
	if len(info.Versions) != 2 || info.Versions[0].State != "disabled" || info.Versions[1].State != "enabled" || info.Versions[1].LastUsed == nil {
		t.Fatalf("KeyInfo versions = %+v, want v1 disabled, v2 enabled and used", info.Versions)
	}
	// Only admins change states.
	userKey, userID := newIdentity(t)
	mustOK(t, c.CreatePolicy(ctx, "e1", &wire.CreatePolicyRequest{Name: "all", Allow: map[string][]string{"KEY:DELETE": {"*"}, "KEY:CREATE": {"*"}}}))
	mustOK(t, c.CreateIdentity(ctx, "e1", &wire.CreateIdentityRequest{Identity: userID}))
	mustOK(t, c.AssignPolicy(ctx, "e1", userID, "all"))
	if err := s.client(userKey).EnableKey(ctx, "e1", "k", 1); !errors.Is(err, client.ErrPermission) {
		t.Fatalf("EnableKey by a user err = %v, want ErrPermission", err)
	}
}

func TestScheduledDeletionAndTombstone(t *testing.T) {
	s := newStack(t)
	c := s.client("")
	mustOK(t, c.CreateEnclave(ctx, "e1"))
	mustOK(t, c.CreateKey(ctx, "e1", "k", "", false))
	g, err := c.GenerateKey(ctx, "e1", "k", 0, nil, 0)
	mustOK(t, err)

	if err := c.ScheduleKeyDeletion(ctx, "e1", "k", "-1h"); err == nil {
		t.Fatal("ScheduleKeyDeletion(-1h) err = nil, want a 400")
	}
	mustOK(t, c.ScheduleKeyDeletion(ctx, "e1", "k", "7d"))
	if _, err := c.Decrypt(ctx, "e1", "k", 0, g.Ciphertext, nil); !errors.Is(err, errPending) {
		t.Fatalf("Decrypt(pending) err = %v, want %v", err, errPending)
	}
	info, err := c.KeyInfo(ctx, "e1", "k")
	mustOK(t, err)
	if info.State != "pending-deletion" || info.DeletionDeadline == nil || time.Until(*info.DeletionDeadline) < 6*24*time.Hour {
		t.Fatalf("KeyInfo = %+v, want pending deletion in 7 days", info)
	}
	mustOK(t, c.RestoreKey(ctx, "e1", "k"))
	if _, err := c.Decrypt(ctx, "e1", "k", 0, g.Ciphertext, nil); err != nil {
		t.Fatalf("Decrypt after restore err = %v", err)
	}
	if err := c.RestoreKey(ctx, "e1", "k"); err == nil {
		t.Fatal("RestoreKey of a key not pending err = nil")
	}

	// The deadline passes while the server is down: the next start
	// carries the deletion out and records it.
	mustOK(t, c.ScheduleKeyDeletion(ctx, "e1", "k", "1d"))
	s = s.restart()
	if n, err := s.Handler.DestroyDue(ctx); err != nil || n != 0 {
		t.Fatalf("DestroyDue before the deadline = %d, %v; want 0", n, err)
	}
	s.Handler.Now = func() time.Time { return time.Now().Add(25 * time.Hour) }
	if n, err := s.Handler.DestroyDue(ctx); err != nil || n != 1 {
		t.Fatalf("DestroyDue after the deadline = %d, %v; want 1", n, err)
	}
	c = s.client("")
	if _, err := c.Decrypt(ctx, "e1", "k", 0, g.Ciphertext, nil); !errors.Is(err, client.ErrKeyNotFound) {
		t.Fatalf("Decrypt(destroyed) err = %v, want ErrKeyNotFound", err)
	}
	var reason string
	_, err = s.Store.Replay(ctx, 1, func(ev ledger.Event) error {
		if ev.Type == ledger.TypeKeyDeleted {
			reason = ev.Actor + "/" + string(ev.Payload)
		}
		return nil
	})
	mustOK(t, err)
	if !bytes.Contains([]byte(reason), []byte(`"reason":"scheduled"`)) || !bytes.HasPrefix([]byte(reason), []byte("kmsledger:scheduler/")) {
		t.Fatalf("deletion event = %s, want one by the scheduler with reason scheduled", reason)
	}

	// The name is a tombstone: CreateKey (as MinIO does at startup) fails
	// loudly until an admin releases it.
	if err := c.CreateKey(ctx, "e1", "k", "", false); !errors.Is(err, errTomb) {
		t.Fatalf("CreateKey(tombstoned) err = %v, want %v", err, errTomb)
	}
	if err := c.ImportKey(ctx, "e1", "k", "", bytes.Repeat([]byte{1}, 32)); !errors.Is(err, errTomb) {
		t.Fatalf("ImportKey(tombstoned) err = %v, want %v", err, errTomb)
	}
	mustOK(t, c.ReleaseKeyName(ctx, "e1", "k"))
	mustOK(t, c.CreateKey(ctx, "e1", "k", "", false))
	if _, err := c.Decrypt(ctx, "e1", "k", 0, g.Ciphertext, nil); !errors.Is(err, client.ErrDecrypt) {
		t.Fatalf("Decrypt(old ciphertext, new key of the same name) err = %v, want ErrDecrypt", err)
	}
	// An API deletion tombstones too.
	mustOK(t, c.DeleteKey(ctx, "e1", "k", 0, true))
	if err := c.CreateKey(ctx, "e1", "k", "", false); !errors.Is(err, errTomb) {
		t.Fatalf("CreateKey after API deletion err = %v, want %v", err, errTomb)
	}
}

func TestRewrap(t *testing.T) {
	s := newStack(t)
	c := s.client("")
	mustOK(t, c.CreateEnclave(ctx, "e1"))
	mustOK(t, c.CreateKey(ctx, "e1", "k", "", false))
	ad := []byte(`{"bucket":"bucket/object"}`)
	g1, err := c.GenerateKey(ctx, "e1", "k", 0, ad, 0)
	mustOK(t, err)
	mustOK(t, c.CreateKey(ctx, "e1", "k", "", true))
	r, err := c.Rewrap(ctx, "e1", "k", g1.Ciphertext, ad)
	mustOK(t, err)
	if r.Version != 2 || bytes.Equal(r.Ciphertext, g1.Ciphertext) {
		t.Fatalf("Rewrap = v%d, want v2 and a new ciphertext", r.Version)
	}
	// Old version gone: the rewrapped ciphertext still decrypts.
	mustOK(t, c.DeleteKey(ctx, "e1", "k", 1, false))
	d, err := c.Decrypt(ctx, "e1", "k", 0, r.Ciphertext, ad)
	mustOK(t, err)
	if !bytes.Equal(d.Plaintext, g1.Plaintext) {
		t.Fatal("Decrypt(rewrapped) returned other bytes")
	}
	if _, err := c.Rewrap(ctx, "e1", "k", r.Ciphertext, []byte("wrong")); !errors.Is(err, client.ErrDecrypt) {
		t.Fatalf("Rewrap with wrong AD err = %v, want ErrDecrypt", err)
	}
	// A user allowed only to decrypt may not rewrap.
	userKey, userID := newIdentity(t)
	mustOK(t, c.CreatePolicy(ctx, "e1", &wire.CreatePolicyRequest{Name: "dec", Allow: map[string][]string{"KEY:DECRYPT": {"*"}}}))
	mustOK(t, c.CreateIdentity(ctx, "e1", &wire.CreateIdentityRequest{Identity: userID}))
	mustOK(t, c.AssignPolicy(ctx, "e1", userID, "dec"))
	if _, err := s.client(userKey).Rewrap(ctx, "e1", "k", r.Ciphertext, ad); !errors.Is(err, client.ErrPermission) {
		t.Fatalf("Rewrap by a decrypt-only user err = %v, want ErrPermission", err)
	}
}
