package api_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// snapshot is everything a refused request must leave alone.
type snapshot struct {
	head    uint64
	secrets []string
	state   string
}

func (s *stack) snapshot() snapshot {
	s.t.Helper()
	head, err := s.Store.Head(ctx)
	mustOK(s.t, err)
	secrets, err := s.Store.ListSecrets(ctx, ">")
	mustOK(s.t, err)
	slices.Sort(secrets)
	return snapshot{head, secrets, s.stateJSON()}
}

func (s *stack) mustBeUnchanged(before snapshot) {
	s.t.Helper()
	after := s.snapshot()
	if after.head != before.head {
		s.t.Errorf("ledger head %d -> %d: something was appended", before.head, after.head)
	}
	if !slices.Equal(after.secrets, before.secrets) {
		s.t.Errorf("SECRETS %v -> %v", before.secrets, after.secrets)
	}
	if after.state != before.state {
		s.t.Error("the projected state changed")
	}
}

func frame(cmd wire.Command, m wire.Message) wire.Frame {
	return wire.Frame{Cmd: cmd, Body: m.MarshalProto()}
}

func createKey(name string) wire.Frame {
	return frame(wire.CmdKeyCreate, &wire.CreateKeyRequest{Name: name})
}

// A User allowed KEY:CREATE and IDENTITY:CREATE sends [KEY:CREATE k,
// IDENTITY:CREATE X as Admin]: the second frame is refused by the Admin
// guard, so the answer is 403 and the first frame did not happen either.
func TestBatchRefusedByGuardChangesNothing(t *testing.T) {
	s := newStack(t)
	root := s.client("")
	mustOK(t, root.CreateEnclave(ctx, "e"))
	userKey, userID := newIdentity(t)
	_, otherID := newIdentity(t)
	mustOK(t, root.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: userID}))
	mustOK(t, root.CreatePolicy(ctx, "e", &wire.CreatePolicyRequest{Name: "p",
		Allow: map[string][]string{"KEY:CREATE": {"*"}, "IDENTITY:CREATE": {"*"}}}))
	mustOK(t, root.AssignPolicy(ctx, "e", userID, "p"))
	user := s.client(userKey)

	before := s.snapshot()
	_, err := user.Send(ctx, "e", []wire.Frame{
		createKey("k"),
		frame(wire.CmdIdentityCreate, &wire.CreateIdentityRequest{Identity: otherID, Privilege: "Admin"}),
	})
	if !errors.Is(err, client.ErrPermission) {
		t.Fatalf("batch err = %v, want 403", err)
	}
	s.mustBeUnchanged(before)
	if _, err := root.KeyStatus(ctx, "e", "k", 0); !errors.Is(err, client.ErrKeyNotFound) {
		t.Fatalf("KeyStatus(k) err = %v, want not found: the refused batch created it", err)
	}
	// Each frame alone: the key is allowed, the Admin is not.
	mustOK(t, user.CreateKey(ctx, "e", "k", "", false))
	if err := user.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: otherID, Privilege: "Admin"}); !errors.Is(err, client.ErrPermission) {
		t.Fatalf("CreateIdentity(Admin) by a User err = %v, want 403", err)
	}
}

// A write batch whose third frame fails applies none of the frames, and
// leaves no sealed material behind.
func TestWriteBatchFailingFrameAppliesNothing(t *testing.T) {
	s := newStack(t)
	root := s.client("")
	mustOK(t, root.CreateEnclave(ctx, "e"))
	mustOK(t, root.CreateKey(ctx, "e", "exists", "", false))
	for _, tc := range []struct {
		name  string
		third wire.Frame
		want  error
	}{
		{"KeyExists", createKey("exists"), client.ErrKeyExists},
		{"NoSuchPolicy", frame(wire.CmdPolicyAssign, &wire.AssignPolicyRequest{Identity: s.RootID, Policy: "nope"}), nil},
		{"BadName", createKey("a.b"), nil},
		{"SecondFrameRepeated", createKey("one"), client.ErrKeyExists}, // "one" is frame 1
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.snapshot()
			_, err := root.Send(ctx, "e", []wire.Frame{createKey("one"), createKey("two"), tc.third})
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Status < 400 || ce.Status >= 500 || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("batch err = %v, want a 4xx (%v)", err, tc.want)
			}
			s.mustBeUnchanged(before)
			for _, k := range []string{"one", "two"} {
				if _, err := root.KeyStatus(ctx, "e", k, 0); !errors.Is(err, client.ErrKeyNotFound) {
					t.Fatalf("KeyStatus(%s) err = %v, want not found", k, err)
				}
			}
		})
	}
}

// A successful write batch applies every frame, each seeing the earlier
// ones, in one atomic append; it survives a restart and the hash chain
// verifies.
func TestWriteBatchAtomicAndDurable(t *testing.T) {
	s := newStack(t)
	root := s.client("")
	mustOK(t, root.CreateEnclave(ctx, "e"))
	_, userID := newIdentity(t)
	head, err := s.Store.Head(ctx)
	mustOK(t, err)
	frames := []wire.Frame{
		createKey("a"),
		createKey("b"),
		frame(wire.CmdKeyCreate, &wire.CreateKeyRequest{Name: "b", AddVersion: true}), // sees frame 2
		frame(wire.CmdPolicyCreate, &wire.CreatePolicyRequest{Name: "p", Allow: map[string][]string{"key:generate": {"b"}}}),
		frame(wire.CmdIdentityCreate, &wire.CreateIdentityRequest{Identity: userID}),
		frame(wire.CmdPolicyAssign, &wire.AssignPolicyRequest{Identity: userID, Policy: "p"}), // sees frames 4 and 5
		frame(wire.CmdKeyDelete, &wire.DeleteKeyRequest{Name: "a", AllVersions: true}),        // sees frame 1
	}
	out, err := root.Send(ctx, "e", frames)
	if err != nil || len(out) != 0 {
		t.Fatalf("batch = (%d frames, %v), want 200 with no frames", len(out), err)
	}
	after, err := s.Store.Head(ctx)
	mustOK(t, err)
	if after != head+uint64(len(frames)) {
		t.Fatalf("head %d -> %d, want %d events", head, after, len(frames))
	}
	check := func(s *stack) {
		t.Helper()
		c := s.client("")
		if st, err := c.KeyStatus(ctx, "e", "b", 0); err != nil || st.Version != 2 {
			t.Fatalf("KeyStatus(b) = (%+v, %v), want version 2", st, err)
		}
		if _, err := c.KeyStatus(ctx, "e", "a", 0); !errors.Is(err, client.ErrKeyNotFound) {
			t.Fatalf("KeyStatus(a) err = %v, want deleted", err)
		}
		id, err := c.GetIdentity(ctx, "e", userID)
		if err != nil || id.Policy != "p" {
			t.Fatalf("GetIdentity = (%+v, %v), want policy p", id, err)
		}
		secrets, err := s.Store.ListSecrets(ctx, ">")
		mustOK(t, err)
		slices.Sort(secrets)
		var want []string
		s.Proj.View(func(st *projections.State) {
			for _, v := range st.Enclaves["e"].Keys["b"].SortedVersions() {
				want = append(want, v.SecretRef("e", "b"))
			}
		})
		slices.Sort(want)
		if len(want) != 2 || !slices.Equal(secrets, want) {
			t.Fatalf("SECRETS = %v, want %v (a's material erased)", secrets, want)
		}
	}
	check(s)
	before := s.stateJSON()
	s = s.restart()
	if got := s.stateJSON(); got != before {
		t.Fatal("the state replayed after a restart differs")
	}
	check(s)
	if _, err := s.Store.Verify(ctx, ledger.VerifyOptions{}); err != nil {
		t.Fatalf("Verify after a batch: %v", err)
	}
}

// A batch may not store material under a name an earlier frame destroys
// (the erasure after the append would take it); without new material,
// deleting and re-creating an enclave in one batch works.
func TestWriteBatchRecreatedEnclave(t *testing.T) {
	s := newStack(t)
	root := s.client("")
	mustOK(t, root.CreateEnclave(ctx, api.DefaultEnclave))
	mustOK(t, root.CreateKey(ctx, "", "k", "", false))
	before := s.snapshot()
	_, err := root.Send(ctx, "", []wire.Frame{
		frame(wire.CmdEnclaveDelete, &wire.DeleteEnclaveRequest{Name: api.DefaultEnclave}),
		frame(wire.CmdEnclaveCreate, &wire.CreateEnclaveRequest{Name: api.DefaultEnclave}),
		createKey("k2"),
	})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusBadRequest {
		t.Fatalf("batch err = %v, want 400", err)
	}
	s.mustBeUnchanged(before)

	_, err = root.Send(ctx, "", []wire.Frame{
		frame(wire.CmdEnclaveDelete, &wire.DeleteEnclaveRequest{Name: api.DefaultEnclave}),
		frame(wire.CmdEnclaveCreate, &wire.CreateEnclaveRequest{Name: api.DefaultEnclave}),
	})
	mustOK(t, err)
	if _, err := root.KeyStatus(ctx, "", "k", 0); !errors.Is(err, client.ErrKeyNotFound) {
		t.Fatalf("KeyStatus(k) in the re-created enclave err = %v, want not found", err)
	}
	if secrets, err := s.Store.ListSecrets(ctx, ">"); err != nil || len(secrets) != 0 {
		t.Fatalf("SECRETS = (%v, %v), want the old enclave's material erased", secrets, err)
	}
}

// Writes and reads of too many frames: write batches are bounded by the
// atomic batch limit, read answers by the response budget.
func TestKeyListBatchBounded(t *testing.T) {
	s := newStack(t)
	root := s.client("")
	mustOK(t, root.CreateEnclave(ctx, "e"))
	var creates []wire.Frame
	for i := range 154 {
		creates = append(creates, createKey(fmt.Sprintf("key-%03d-%s", i, strings.Repeat("x", 60))))
	}
	_, err := root.Send(ctx, "e", creates) // one atomic batch
	mustOK(t, err)

	userKey, userID := newIdentity(t)
	mustOK(t, root.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: userID}))
	mustOK(t, root.CreatePolicy(ctx, "e", &wire.CreatePolicyRequest{Name: "lister", Allow: map[string][]string{"KEY:LIST": {"*"}}}))
	mustOK(t, root.AssignPolicy(ctx, "e", userID, "lister"))
	user := s.client(userKey)

	list := frame(wire.CmdKeyList, &wire.ListRequest{})
	few, err := user.Send(ctx, "e", slices.Repeat([]wire.Frame{list}, 3))
	if err != nil || len(few) != 3 {
		t.Fatalf("3 KEY:LIST frames = (%d, %v), want 3 answers", len(few), err)
	}
	_, err = user.Send(ctx, "e", slices.Repeat([]wire.Frame{list}, 1000))
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusRequestEntityTooLarge || !strings.Contains(ce.Message, "response too large") {
		t.Fatalf("1000 KEY:LIST frames err = %v, want 413 response too large", err)
	}

	// More write frames than one atomic batch holds: 400, nothing written.
	before := s.snapshot()
	var many []wire.Frame
	for i := range ledger.MaxBatch + 1 {
		many = append(many, createKey(fmt.Sprintf("m%d", i)))
	}
	if _, err := root.Send(ctx, "e", many); !errors.As(err, &ce) || ce.Status != http.StatusBadRequest {
		t.Fatalf("%d KEY:CREATE frames err = %v, want 400", len(many), err)
	}
	s.mustBeUnchanged(before)
}

// BenchmarkKeyListBatch1000 sends 1,000 KEY:LIST frames to an enclave of
// 154 keys (a 6 KB request): the answer stops at the response budget with
// 413, so time and memory are bounded by the budget, not by the frames.
func BenchmarkKeyListBatch1000(b *testing.B) {
	s := newStack(b)
	root := s.client("")
	mustOK(b, root.CreateEnclave(ctx, "e"))
	var creates []wire.Frame
	for i := range 154 {
		creates = append(creates, createKey(fmt.Sprintf("key-%03d-%s", i, strings.Repeat("x", 60))))
	}
	_, err := root.Send(ctx, "e", creates)
	mustOK(b, err)
	frames := slices.Repeat([]wire.Frame{frame(wire.CmdKeyList, &wire.ListRequest{})}, 1000)
	b.ReportAllocs()
	for b.Loop() {
		var ce *client.Error
		if _, err := root.Send(ctx, "e", frames); !errors.As(err, &ce) || ce.Status != http.StatusRequestEntityTooLarge {
			b.Fatalf("err = %v, want 413", err)
		}
	}
}

// Hostile write batches: a stranger, a User of another enclave, and a User
// whose policy allows only some frames get 403 and change nothing.
func TestWriteBatchHostileCallers(t *testing.T) {
	s := newStack(t)
	root := s.client("")
	for _, e := range []string{"e", "f"} {
		mustOK(t, root.CreateEnclave(ctx, e))
	}
	strangerKey, _ := newIdentity(t)
	otherKey, otherID := newIdentity(t)
	narrowKey, narrowID := newIdentity(t)
	mustOK(t, root.CreateIdentity(ctx, "f", &wire.CreateIdentityRequest{Identity: otherID, Privilege: "Admin"}))
	mustOK(t, root.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: narrowID}))
	mustOK(t, root.CreatePolicy(ctx, "e", &wire.CreatePolicyRequest{Name: "narrow", Allow: map[string][]string{"KEY:CREATE": {"a*"}}}))
	mustOK(t, root.AssignPolicy(ctx, "e", narrowID, "narrow"))
	batch := []wire.Frame{createKey("a1"), createKey("b1")}
	for name, key := range map[string]string{"Stranger": strangerKey, "AdminOfOtherEnclave": otherKey, "NarrowPolicy": narrowKey} {
		t.Run(name, func(t *testing.T) {
			before := s.snapshot()
			if _, err := s.client(key).Send(ctx, "e", batch); !errors.Is(err, client.ErrPermission) {
				t.Fatalf("batch err = %v, want 403", err)
			}
			s.mustBeUnchanged(before)
		})
	}
	mustOK(t, s.client(narrowKey).CreateKey(ctx, "e", "a1", "", false))
}

// Racing batches that share a key: exactly one applies, wholly; the other
// applies nothing.
func TestWriteBatchesRace(t *testing.T) {
	s := newStack(t)
	root := s.client("")
	mustOK(t, root.CreateEnclave(ctx, "e"))
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = root.Send(ctx, "e", []wire.Frame{createKey(fmt.Sprintf("own-%d", i)), createKey("shared")})
		})
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		_, own := root.KeyStatus(ctx, "e", fmt.Sprintf("own-%d", i), 0)
		switch {
		case err == nil:
			wins++
			mustOK(t, own)
		case errors.Is(err, client.ErrKeyExists):
			if !errors.Is(own, client.ErrKeyNotFound) {
				t.Fatalf("batch %d failed but its first frame applied (%v)", i, own)
			}
		default:
			t.Fatalf("batch %d err = %v", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d batches won, want exactly 1", wins)
	}
	if secrets, _ := s.Store.ListSecrets(ctx, ">"); len(secrets) != 2 {
		t.Fatalf("SECRETS = %v, want the winner's two keys only", secrets)
	}
}
