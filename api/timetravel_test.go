package api_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
)

// stepClock is the handler's clock in these tests: every step of a
// scripted history happens at a known minute.
type stepClock struct{ ns atomic.Int64 }

func (c *stepClock) now() time.Time            { return time.Unix(0, c.ns.Load()).UTC() }
func (c *stepClock) set(t time.Time)           { c.ns.Store(t.UnixNano()) }
func stepTime(base time.Time, i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }

// history is a node with a scripted history of grants, revocations,
// policy edits and deletions in enclave "t", run step by step.
type history struct {
	s     *stack
	root  *client.Client
	names map[string]string // identity -> short name
	keys  map[string]string // short name -> API key
	ids   map[string]string // short name -> identity
	clock *stepClock
	base  time.Time
}

func newHistory(t *testing.T) *history {
	s := newStack(t)
	h := &history{s: s, root: s.client(""), names: map[string]string{s.RootID: "root"},
		keys: map[string]string{}, ids: map[string]string{}, clock: &stepClock{}}
	// Minutes after the bootstrap events, which carry the real time.
	h.base = time.Now().Add(time.Hour).Truncate(time.Minute).UTC()
	h.clock.set(h.base)
	s.Handler.Now = h.clock.now
	for _, n := range []string{"A", "U", "S", "D", "D2", "B", "X", "O"} {
		h.keys[n], h.ids[n] = newIdentity(t)
		h.names[h.ids[n]] = n
	}
	return h
}

func (h *history) client(name string) *client.Client { return h.s.client(h.keys[name]) }

// grants renders a who-can answer as "name:via[:policy:rule][<parent]".
func (h *history) grants(gs []client.Grant) []string {
	var out []string
	for _, g := range gs {
		s := h.names[g.Identity] + ":" + g.Via
		if g.Policy != "" {
			s += ":" + g.Policy + ":" + g.Rule
		}
		if g.Parent != "" {
			s += "<" + h.names[g.Parent]
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// summary renders enclave t of a past state compactly.
func (h *history) summary(st *client.LedgerState) string {
	var b strings.Builder
	for _, e := range st.Enclaves {
		if e.Name != "t" {
			continue
		}
		for _, k := range e.Keys {
			fmt.Fprintf(&b, "key %s %s v%d; ", k.Name, k.State, len(k.Versions))
		}
		for _, tb := range e.Tombstones {
			fmt.Fprintf(&b, "tombstone %s; ", tb.Name)
		}
		var ids []string
		for _, x := range e.Identities {
			s := h.names[x.Identity] + " " + x.Privilege
			if x.Policy != "" {
				s += " policy " + x.Policy
			}
			if x.ServiceAccount {
				s += " of " + h.names[x.Parent]
			}
			ids = append(ids, s)
		}
		slices.Sort(ids)
		for _, s := range ids {
			b.WriteString("id " + s + "; ")
		}
		for _, p := range e.Policies {
			fmt.Fprintf(&b, "policy %s allow %v deny %v; ", p.Name, p.Allow, p.Deny)
		}
	}
	return strings.TrimSuffix(b.String(), "; ")
}

type historyStep struct {
	name     string
	do       func(t *testing.T, h *history)
	state    string   // summary of enclave t after the step
	decryptK []string // who-can KEY:DECRYPT on k1 after the step
	decryptL []string // who-can KEY:DECRYPT on k2
}

func policyReq(name string, allow, deny map[string][]string) *wire.CreatePolicyRequest {
	return &wire.CreatePolicyRequest{Name: name, Allow: allow, Deny: deny}
}

func historySteps() []historyStep {
	ok := mustOK
	allowP := map[string][]string{"KEY:DECRYPT": {"k*"}, "IDENTITY:CREATE": {"*"}}
	return []historyStep{
		{"Setup", func(t *testing.T, h *history) {
			ok(t, h.root.CreateEnclave(ctx, "t"))
			ok(t, h.root.CreateKey(ctx, "t", "k1", "", false))
			ok(t, h.root.CreateKey(ctx, "t", "k2", "", false))
			ok(t, h.root.CreateIdentity(ctx, "t", &wire.CreateIdentityRequest{Identity: h.ids["A"], Privilege: "Admin"}))
			ok(t, h.root.CreateIdentity(ctx, "t", &wire.CreateIdentityRequest{Identity: h.ids["U"]}))
		},
			"key k1 enabled v1; key k2 enabled v1; id A Admin; id U User",
			[]string{"A:admin", "root:root"}, []string{"A:admin", "root:root"}},
		{"GrantPolicy", func(t *testing.T, h *history) {
			ok(t, h.root.CreatePolicy(ctx, "t", policyReq("p", allowP, nil)))
			ok(t, h.root.AssignPolicy(ctx, "t", h.ids["U"], "p"))
		},
			"key k1 enabled v1; key k2 enabled v1; id A Admin; id U User policy p; policy p allow map[IDENTITY:CREATE:[*] KEY:DECRYPT:[k*]] deny map[]",
			[]string{"A:admin", "U:policy:p:k*", "root:root"}, []string{"A:admin", "U:policy:p:k*", "root:root"}},
		{"ServiceAccountOfUser", func(t *testing.T, h *history) {
			ok(t, h.client("U").CreateIdentity(ctx, "t", &wire.CreateIdentityRequest{Identity: h.ids["S"], IsServiceAccount: true}))
		},
			"key k1 enabled v1; key k2 enabled v1; id A Admin; id S User of U; id U User policy p; policy p allow map[IDENTITY:CREATE:[*] KEY:DECRYPT:[k*]] deny map[]",
			[]string{"A:admin", "S:policy:p:k*<U", "U:policy:p:k*", "root:root"}, []string{"A:admin", "S:policy:p:k*<U", "U:policy:p:k*", "root:root"}},
		{"DenyK1", func(t *testing.T, h *history) {
			ok(t, h.root.CreatePolicy(ctx, "t", policyReq("p", allowP, map[string][]string{"KEY:DECRYPT": {"k1"}})))
		},
			"key k1 enabled v1; key k2 enabled v1; id A Admin; id S User of U; id U User policy p; policy p allow map[IDENTITY:CREATE:[*] KEY:DECRYPT:[k*]] deny map[KEY:DECRYPT:[k1]]",
			[]string{"A:admin", "root:root"}, []string{"A:admin", "S:policy:p:k*<U", "U:policy:p:k*", "root:root"}},
		{"NarrowToK1", func(t *testing.T, h *history) {
			ok(t, h.root.CreatePolicy(ctx, "t", policyReq("p", map[string][]string{"KEY:DECRYPT": {"k1"}, "IDENTITY:CREATE": {"*"}}, nil)))
		},
			"key k1 enabled v1; key k2 enabled v1; id A Admin; id S User of U; id U User policy p; policy p allow map[IDENTITY:CREATE:[*] KEY:DECRYPT:[k1]] deny map[]",
			[]string{"A:admin", "S:policy:p:k1<U", "U:policy:p:k1", "root:root"}, []string{"A:admin", "root:root"}},
		{"RevokeByReassign", func(t *testing.T, h *history) {
			ok(t, h.root.CreatePolicy(ctx, "t", policyReq("q", map[string][]string{"KEY:ENCRYPT": {"*"}}, nil)))
			ok(t, h.root.AssignPolicy(ctx, "t", h.ids["U"], "q"))
		},
			"key k1 enabled v1; key k2 enabled v1; id A Admin; id S User of U; id U User policy q; policy p allow map[IDENTITY:CREATE:[*] KEY:DECRYPT:[k1]] deny map[]; policy q allow map[KEY:ENCRYPT:[*]] deny map[]",
			[]string{"A:admin", "root:root"}, []string{"A:admin", "root:root"}},
		{"RotateAndDisable", func(t *testing.T, h *history) {
			ok(t, h.root.CreateKey(ctx, "t", "k2", "", true))
			ok(t, h.root.DisableKey(ctx, "t", "k2", 0))
		},
			"key k1 enabled v1; key k2 disabled v2; id A Admin; id S User of U; id U User policy q; policy p allow map[IDENTITY:CREATE:[*] KEY:DECRYPT:[k1]] deny map[]; policy q allow map[KEY:ENCRYPT:[*]] deny map[]",
			[]string{"A:admin", "root:root"}, []string{"A:admin", "root:root"}},
		{"DeleteAdmin", func(t *testing.T, h *history) {
			ok(t, h.root.DeleteIdentity(ctx, "t", h.ids["A"]))
		},
			"key k1 enabled v1; key k2 disabled v2; id S User of U; id U User policy q; policy p allow map[IDENTITY:CREATE:[*] KEY:DECRYPT:[k1]] deny map[]; policy q allow map[KEY:ENCRYPT:[*]] deny map[]",
			[]string{"root:root"}, []string{"root:root"}},
		{"DeleteKeyAndPolicy", func(t *testing.T, h *history) {
			ok(t, h.root.DeleteKey(ctx, "t", "k1", 0, true))
			ok(t, h.root.DeletePolicy(ctx, "t", "p"))
		},
			"key k2 disabled v2; tombstone k1; id S User of U; id U User policy q; policy q allow map[KEY:ENCRYPT:[*]] deny map[]",
			[]string{"root:root"}, []string{"root:root"}},
		{"GrantAgain", func(t *testing.T, h *history) {
			ok(t, h.root.CreatePolicy(ctx, "t", policyReq("q", map[string][]string{"KEY:DECRYPT": {"*"}}, nil)))
		},
			"key k2 disabled v2; tombstone k1; id S User of U; id U User policy q; policy q allow map[KEY:DECRYPT:[*]] deny map[]",
			[]string{"S:policy:q:*<U", "U:policy:q:*", "root:root"}, []string{"S:policy:q:*<U", "U:policy:q:*", "root:root"}},
	}
}

// TestTimeTravelHistory runs a scripted history through the whole stack
// and checks `state --at` and `who-can` at every step, by sequence and by
// time, after the whole history has been written.
func TestTimeTravelHistory(t *testing.T) {
	h := newHistory(t)
	steps := historySteps()
	seqs := make([]uint64, len(steps))
	for i, st := range steps {
		h.clock.set(stepTime(h.base, i))
		st.do(t, h)
		head, err := h.s.Store.Head(ctx)
		mustOK(t, err)
		seqs[i] = head
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			bySeq, err := h.root.LedgerState(ctx, client.Point{Seq: seqs[i]}, "")
			mustOK(t, err)
			if bySeq.Seq != seqs[i] {
				t.Errorf("state seq = %d, want %d", bySeq.Seq, seqs[i])
			}
			if got := h.summary(bySeq); got != st.state {
				t.Errorf("state at seq %d =\n%s\nwant\n%s", seqs[i], got, st.state)
			}
			// Any time within the step's minute gives the same state.
			at := stepTime(h.base, i).Add(30 * time.Second)
			byTime, err := h.root.LedgerState(ctx, client.Point{Time: at}, "t")
			mustOK(t, err)
			if a, b := mustJSON(t, bySeq), mustJSON(t, byTime); a != b {
				t.Errorf("state at %v =\n%s\nstate at seq %d =\n%s", at, b, seqs[i], a)
			}
			for _, q := range []struct {
				key  string
				want []string
			}{{"k1", st.decryptK}, {"k2", st.decryptL}} {
				for _, p := range []client.Point{{Seq: seqs[i]}, {Time: at}} {
					r, err := h.root.WhoCan(ctx, "t", q.key, "KEY:DECRYPT", p)
					mustOK(t, err)
					if got := h.grants(r.Grants); !slices.Equal(got, q.want) || r.Seq != seqs[i] {
						t.Errorf("who-can KEY:DECRYPT %s at %v = seq %d %v, want seq %d %v", q.key, p, r.Seq, got, seqs[i], q.want)
					}
				}
			}
		})
	}
	// Before the history the enclave did not exist; only root could act.
	before, err := h.root.LedgerState(ctx, client.Point{Time: h.base.Add(-time.Second)}, "")
	mustOK(t, err)
	if len(before.Enclaves) != 0 || before.Seq == 0 {
		t.Errorf("state before the history = %+v; want the bootstrap and no enclave", before)
	}
	r, err := h.root.WhoCan(ctx, "t", "k1", "KEY:DECRYPT", client.Point{Time: h.base.Add(-time.Second)})
	mustOK(t, err)
	if got := h.grants(r.Grants); !slices.Equal(got, []string{"root:root"}) {
		t.Errorf("who-can before the history = %v, want root only", got)
	}

	t.Run("Diff", func(t *testing.T) { testDiff(t, h, seqs) })
	t.Run("Events", func(t *testing.T) { testEvents(t, h, seqs) })
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	mustOK(t, err)
	return string(b)
}

func testDiff(t *testing.T, h *history, seqs []uint64) {
	want := []string{
		"removed key k1", "changed key k2", "added version k2",
		"added identity S", "removed identity A", "added assignment U", "added policy q",
	}
	slices.Sort(want)
	for _, pts := range [][2]client.Point{
		{{Seq: seqs[0]}, {Seq: seqs[len(seqs)-1]}},
		{{Time: stepTime(h.base, 0).Add(time.Second)}, {}}, // to the head
	} {
		d, err := h.root.LedgerDiff(ctx, pts[0], pts[1], "t")
		mustOK(t, err)
		var got []string
		for _, c := range d.Changes {
			name := c.Name
			if n, ok := h.names[name]; ok {
				name = n
			}
			got = append(got, c.Op+" "+c.Kind+" "+name)
			if c.Enclave != "t" || c.Description == "" {
				t.Errorf("change %+v: want enclave t and a description", c)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) || d.From != seqs[0] || d.To != seqs[len(seqs)-1] {
			t.Errorf("diff %v..%v = %d..%d %q\nwant %d..%d %q", pts[0], pts[1], d.From, d.To, got, seqs[0], seqs[len(seqs)-1], want)
		}
	}
}

func testEvents(t *testing.T, h *history, seqs []uint64) {
	last := seqs[len(seqs)-1]
	types := func(l *client.LedgerEvents) string {
		var s []string
		for _, ev := range l.Events {
			s = append(s, strings.TrimSuffix(ev.Type, ".v1"))
		}
		return strings.Join(s, " ")
	}
	tests := []struct {
		name     string
		f        client.EventFilter
		want     string
		wantLast uint64
		more     bool
	}{
		{"Key", client.EventFilter{Enclave: "t", Key: "k1"}, "key.created key.deleted", last, false},
		{"KeyAnyEnclave", client.EventFilter{Key: "k2"}, "key.created key.created key.disabled", last, false},
		{"Identity", client.EventFilter{Enclave: "t", Identity: h.ids["U"]},
			"identity.created identity.policy_assigned identity.created identity.policy_assigned", last, false},
		{"TypePrefix", client.EventFilter{Type: "policy.*"}, "policy.created policy.created policy.created policy.created policy.deleted policy.created", last, false},
		{"TypeExact", client.EventFilter{Type: "identity.deleted.v1"}, "identity.deleted", last, false},
		{"SinceSeq", client.EventFilter{Since: client.Point{Seq: seqs[6]}}, "identity.deleted key.deleted policy.deleted policy.created", last, false},
		{"SinceTime", client.EventFilter{Since: client.Point{Time: stepTime(h.base, 8)}}, "key.deleted policy.deleted policy.created", last, false},
		{"UntilSeq", client.EventFilter{Enclave: "t", Until: client.Point{Seq: seqs[0]}},
			"enclave.created key.created key.created identity.created identity.created", seqs[0], false},
		{"UntilTime", client.EventFilter{Enclave: "t", Type: "policy.*", Until: client.Point{Time: stepTime(h.base, 3)}}, "policy.created policy.created", last, false},
		{"Limit", client.EventFilter{Enclave: "t", Limit: 2}, "enclave.created key.created", seqs[0] - 3, true},
		{"Tail", client.EventFilter{Enclave: "t", Tail: 2}, "policy.deleted policy.created", last, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := h.root.LedgerEvents(ctx, tt.f)
			mustOK(t, err)
			if got := types(l); got != tt.want || l.Last != tt.wantLast || l.More != tt.more {
				t.Fatalf("events(%+v) = %q last %d more %v; want %q last %d more %v", tt.f, got, l.Last, l.More, tt.want, tt.wantLast, tt.more)
			}
		})
	}
	// Paging with since=last gives every event of t exactly once.
	var pages []string
	f := client.EventFilter{Enclave: "t", Limit: 4}
	for {
		l, err := h.root.LedgerEvents(ctx, f)
		mustOK(t, err)
		pages = append(pages, types(l))
		if !l.More {
			break
		}
		f.Since = client.Point{Seq: l.Last}
	}
	all, err := h.root.LedgerEvents(ctx, client.EventFilter{Enclave: "t"})
	mustOK(t, err)
	if got := strings.Join(pages, " "); got != types(all) {
		t.Fatalf("paged events = %q, want %q", got, types(all))
	}
}
