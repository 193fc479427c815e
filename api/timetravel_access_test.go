package api_test

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
)

// TestTimeTravelAccess: root reads everything; Admins and auditors of an
// enclave read that enclave only (and only its current incarnation);
// nobody else reads anything; the auditor cannot use keys.
func TestTimeTravelAccess(t *testing.T) {
	h, head := newAccessHistory(t)
	t.Run("Grid", func(t *testing.T) { checkTimeTravelGrid(t, h, head) })
	t.Run("Auditor", func(t *testing.T) { checkAuditorReads(t, h, head) })
	// Last: it deletes and recreates enclave o.
	t.Run("Reincarnation", func(t *testing.T) { checkReincarnatedEnclave(t, h) })
}

// newAccessHistory makes enclaves t and o with the callers of the access
// grid: A the Admin of t, U a User of t allowed IDENTITY:CREATE, D an
// auditor of t, D2 a would-be auditor made by U, S a service account of
// A, O the Admin of o. It returns the head of the ledger after them.
func newAccessHistory(t *testing.T) (*history, uint64) {
	t.Helper()
	h := newHistory(t)
	r := h.root
	mustOK(t, r.CreateEnclave(ctx, "t"))
	mustOK(t, r.CreateEnclave(ctx, "o"))
	mustOK(t, r.CreateKey(ctx, "t", "k", "", false))
	mustOK(t, r.CreateIdentity(ctx, "t", &wire.CreateIdentityRequest{Identity: h.ids["A"], Privilege: "Admin"}))
	mustOK(t, r.CreateIdentity(ctx, "t", &wire.CreateIdentityRequest{Identity: h.ids["U"]}))
	mustOK(t, r.CreatePolicy(ctx, "t", policyReq("ids", map[string][]string{"IDENTITY:CREATE": {"*"}}, nil)))
	mustOK(t, r.AssignPolicy(ctx, "t", h.ids["U"], "ids"))
	auditor := &wire.CreateIdentityRequest{Identity: h.ids["D"], Tags: map[string]string{api.AuditorTag: api.AuditorRole}}
	mustOK(t, h.client("A").CreateIdentity(ctx, "t", auditor))
	// A User allowed IDENTITY:CREATE cannot mint an auditor.
	mustOK(t, h.client("U").CreateIdentity(ctx, "t", &wire.CreateIdentityRequest{Identity: h.ids["D2"], Tags: auditor.Tags}))
	mustOK(t, h.client("A").CreateIdentity(ctx, "t", &wire.CreateIdentityRequest{Identity: h.ids["S"], IsServiceAccount: true}))
	mustOK(t, r.CreateIdentity(ctx, "o", &wire.CreateIdentityRequest{Identity: h.ids["O"], Privilege: "Admin"}))
	head, err := h.s.Store.Head(ctx)
	mustOK(t, err)
	return h, head

}

// checkTimeTravelGrid calls every time-travel read as every caller and
// checks the status each gets.
func checkTimeTravelGrid(t *testing.T, h *history, head uint64) {
	type call func(c *client.Client) error
	state := func(enclave string) call {
		return func(c *client.Client) error {
			_, err := c.LedgerState(ctx, client.Point{Seq: head}, enclave)
			return err
		}
	}
	whoCan := func(c *client.Client) error {
		_, err := c.WhoCan(ctx, "t", "k", "KEY:DECRYPT", client.Point{Seq: head})
		return err
	}
	diff := func(c *client.Client) error {
		_, err := c.LedgerDiff(ctx, client.Point{Seq: 1}, client.Point{}, "t")
		return err
	}
	events := func(enclave string) call {
		return func(c *client.Client) error {
			_, err := c.LedgerEvents(ctx, client.EventFilter{Enclave: enclave})
			return err
		}
	}
	calls := map[string]call{"state": state("t"), "who-can": whoCan, "diff": diff, "events": events("t"),
		"state-all": state(""), "events-all": events(""), "state-o": state("o"), "events-o": events("o")}
	// Status per caller for each call: 0 = allowed.
	tests := []struct {
		who  string
		want map[string]int
	}{
		{"root", map[string]int{}},
		{"A", map[string]int{"state-all": 400, "events-all": 400, "state-o": 403, "events-o": 403}},
		{"D", map[string]int{"state-all": 400, "events-all": 400, "state-o": 403, "events-o": 403}},
		{"S", map[string]int{"state-all": 400, "events-all": 400, "state-o": 403, "events-o": 403}}, // service account of A
		{"O", map[string]int{"state": 403, "who-can": 403, "diff": 403, "events": 403, "state-all": 400, "events-all": 400}},
		{"U", map[string]int{"state": 403, "who-can": 403, "diff": 403, "events": 403, "state-all": 400, "events-all": 400, "state-o": 403, "events-o": 403}},
		{"D2", map[string]int{"state": 403, "who-can": 403, "diff": 403, "events": 403, "state-all": 400, "events-all": 400, "state-o": 403, "events-o": 403}},
		// X is no identity anywhere: refused before its parameters are looked at.
		{"X", map[string]int{"state": 403, "who-can": 403, "diff": 403, "events": 403, "state-all": 403, "events-all": 403, "state-o": 403, "events-o": 403}},
	}
	for _, tt := range tests {
		t.Run(tt.who, func(t *testing.T) {
			c := h.root
			if tt.who != "root" {
				c = h.client(tt.who)
			}
			for _, name := range slices.Sorted(maps.Keys(calls)) {
				err := calls[name](c)
				got := 0
				if err != nil {
					ce, ok := err.(*client.Error)
					if !ok {
						t.Fatalf("%s by %s: err = %v", name, tt.who, err)
					}
					got = ce.Status
				}
				if got != tt.want[name] {
					t.Errorf("%s by %s: status = %d (%v), want %d", name, tt.who, got, err, tt.want[name])
				}
			}
		})
	}

}

// checkAuditorReads: the auditor reads, but has no key operation, and
// kms clients still read it as a plain User with a tag; a non-root
// answer is restricted to its enclave.
func checkAuditorReads(t *testing.T, h *history, head uint64) {
	if _, err := h.client("D").GenerateKey(ctx, "t", "k", 0, nil, 0); err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Errorf("auditor GenerateKey err = %v, want access denied", err)
	}
	r := h.root
	id, err := r.GetIdentity(ctx, "t", h.ids["D"])
	mustOK(t, err)
	if id.Privilege != wire.PrivilegeUser || id.Tags[api.AuditorTag] != api.AuditorRole {
		t.Errorf("auditor identity = %+v, want a User with the auditor tag", id)
	}
	// A non-root answer is restricted to its enclave.
	st, err := h.client("D").LedgerState(ctx, client.Point{Seq: head}, "t")
	mustOK(t, err)
	if len(st.Enclaves) != 1 || st.Enclaves[0].Name != "t" {
		t.Errorf("auditor state = %+v, want enclave t only", st.Enclaves)
	}
	all, err := r.LedgerState(ctx, client.Point{Seq: head}, "")
	mustOK(t, err)
	if len(all.Enclaves) != 2 {
		t.Errorf("root state has %d enclaves, want 2", len(all.Enclaves))
	}
	evs, err := h.client("A").LedgerEvents(ctx, client.EventFilter{Enclave: "t"})
	mustOK(t, err)
	for _, ev := range evs.Events {
		if ev.Enclave != "t" && ev.Aggregate != "ledger._.enclave.t" {
			t.Errorf("admin of t sees event %+v", ev)
		}
	}

}

// checkReincarnatedEnclave: an enclave deleted and created again is
// another tenant: its new Admin does not see the old incarnation.
func checkReincarnatedEnclave(t *testing.T, h *history) {
	r := h.root
	h.clock.set(h.base.Add(time.Minute))
	mustOK(t, r.CreateKey(ctx, "o", "old-key", "", false))
	old, err := h.s.Store.Head(ctx)
	mustOK(t, err)
	mustOK(t, r.DeleteEnclave(ctx, "o"))
	h.clock.set(h.base.Add(2 * time.Minute))
	mustOK(t, r.CreateEnclave(ctx, "o"))
	mustOK(t, r.CreateIdentity(ctx, "o", &wire.CreateIdentityRequest{Identity: h.ids["B"], Privilege: "Admin"}))
	st, err := h.client("B").LedgerState(ctx, client.Point{Seq: old}, "o")
	mustOK(t, err)
	if len(st.Enclaves) != 0 {
		t.Errorf("new admin of o sees the old incarnation: %+v", st.Enclaves)
	}
	st, err = r.LedgerState(ctx, client.Point{Seq: old}, "o")
	mustOK(t, err)
	if len(st.Enclaves) != 1 || len(st.Enclaves[0].Keys) != 1 {
		t.Errorf("root state of old o = %+v, want it with old-key", st.Enclaves)
	}
	evs, err := h.client("B").LedgerEvents(ctx, client.EventFilter{Enclave: "o", Key: "old-key"})
	mustOK(t, err)
	if len(evs.Events) != 0 {
		t.Errorf("new admin of o sees old events: %+v", evs.Events)
	}
	w, err := h.client("B").WhoCan(ctx, "o", "old-key", "KEY:DECRYPT", client.Point{Seq: old})
	mustOK(t, err)
	if got := h.grants(w.Grants); !slices.Equal(got, []string{"root:root"}) {
		t.Errorf("who-can in the old o, asked by the new admin = %v, want root only", got)
	}
}

// TestTimeTravelBadRequests checks the answers to malformed queries.
func TestTimeTravelBadRequests(t *testing.T) {
	s := newStack(t)
	r := s.client("")
	mustOK(t, r.CreateEnclave(ctx, "t"))
	head, err := s.Store.Head(ctx)
	mustOK(t, err)
	tests := []struct {
		name string
		call func() error
	}{
		{"BeyondHead", func() error { _, err := r.LedgerState(ctx, client.Point{Seq: head + 1}, ""); return err }},
		{"NoPoint", func() error { _, err := r.LedgerState(ctx, client.Point{}, ""); return err }},
		{"UnknownCommand", func() error { _, err := r.WhoCan(ctx, "t", "k", "KEY:STEAL", client.Point{Seq: head}); return err }},
		{"NoKey", func() error { _, err := r.WhoCan(ctx, "t", "", "KEY:DECRYPT", client.Point{Seq: head}); return err }},
		{"NoEnclave", func() error { _, err := r.WhoCan(ctx, "", "k", "KEY:DECRYPT", client.Point{Seq: head}); return err }},
		{"DiffNoFrom", func() error { _, err := r.LedgerDiff(ctx, client.Point{}, client.Point{}, ""); return err }},
		{"EventsBadLimit", func() error { _, err := r.LedgerEvents(ctx, client.EventFilter{Limit: 1 << 20}); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if ce, ok := err.(*client.Error); !ok || ce.Status != 400 {
				t.Fatalf("err = %v, want status 400", err)
			}
		})
	}
	// A listing command needs no key.
	w, err := r.WhoCan(ctx, "t", "", "KEY:LIST", client.Point{Seq: head})
	mustOK(t, err)
	if len(w.Grants) != 1 || w.Grants[0].Via != client.ViaRoot {
		t.Fatalf("who-can KEY:LIST = %+v, want root", w.Grants)
	}
}
