package api_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
)

// requestsFixture is a sync-audited node with enclaves A and B and a
// window of AUDIT records, (since, until], holding exactly the requests
// named in order.
type requestsFixture struct {
	s            *auditStack
	root         *client.Client
	clients      map[string]*client.Client // "admin" (Admin of A), "user" (User of A), "auditor" (auditor of A)
	since, until uint64                    // AUDIT sequences bounding the window
	labels       map[string]string         // recordKey -> name of the request
	byName       map[string]client.AuditRequest
}

// windowNames are the requests of the window, in order: "query" is the
// requests query that found since.
var windowNames = []string{"query", "genA", "encB", "deniedA", "badDecA", "infoB", "missingA"}

func newRequestsFixture(t *testing.T) *requestsFixture {
	t.Helper()
	s := startAuditStack(t, &ledger.AuditConfig{Sync: true})
	root := s.client("")
	f := &requestsFixture{s: s, root: root, clients: map[string]*client.Client{}, labels: map[string]string{},
		byName: map[string]client.AuditRequest{}}
	ids := map[string]string{}
	for _, who := range []string{"admin", "user", "auditor"} {
		key, id := newIdentity(t)
		f.clients[who], ids[who] = s.client(key), id
	}
	mustOK(t, root.CreateEnclave(ctx, "A"))
	mustOK(t, root.CreateEnclave(ctx, "B"))
	mustOK(t, root.CreateKey(ctx, "A", "kA", "", false))
	mustOK(t, root.CreateKey(ctx, "B", "kB", "", false))
	mustOK(t, root.CreateIdentity(ctx, "A", &wire.CreateIdentityRequest{Identity: ids["admin"], Privilege: "Admin"}))
	mustOK(t, root.CreateIdentity(ctx, "A", &wire.CreateIdentityRequest{Identity: ids["user"]}))
	mustOK(t, f.clients["admin"].CreateIdentity(ctx, "A", &wire.CreateIdentityRequest{Identity: ids["auditor"],
		Tags: map[string]string{api.AuditorTag: api.AuditorRole}}))
	g, err := root.GenerateKey(ctx, "A", "kA", 0, nil, 32)
	mustOK(t, err)

	start, err := root.AuditRequests(ctx, client.RequestFilter{Tail: 1})
	mustOK(t, err)
	f.since = start.Last
	_, err = root.GenerateKey(ctx, "A", "kA", 0, []byte("ad"), 32)
	mustOK(t, err)
	_, err = root.Encrypt(ctx, "B", "kB", 0, []byte("plain"), nil)
	mustOK(t, err)
	if _, err := f.clients["user"].GenerateKey(ctx, "A", "kA", 0, nil, 32); !errors.Is(err, client.ErrPermission) {
		t.Fatalf("user GenerateKey err = %v, want access denied", err)
	}
	if _, err := root.Decrypt(ctx, "A", "kA", 0, g.Ciphertext, []byte("wrong ad")); err == nil {
		t.Fatal("Decrypt with the wrong associated data err = nil")
	}
	_, err = root.KeyInfo(ctx, "B", "kB")
	mustOK(t, err)
	if _, err := root.GenerateKey(ctx, "A", "nokey", 0, nil, 32); !errors.Is(err, client.ErrKeyNotFound) {
		t.Fatalf("GenerateKey of a missing key err = %v, want key does not exist", err)
	}
	end, err := root.AuditRequests(ctx, client.RequestFilter{After: f.since})
	mustOK(t, err)
	f.until = end.Last

	// The window holds exactly the requests above, as they were made.
	type want struct {
		identity, enclave, command, key string
		status                          int
		err                             string
	}
	wants := []want{
		{s.RootID, "", "", "", 200, ""},
		{s.RootID, "A", "KEY:GENERATE", "kA", 200, ""},
		{s.RootID, "B", "KEY:ENCRYPT", "kB", 200, ""},
		{ids["user"], "A", "KEY:GENERATE", "kA", 403, "access denied"},
		{s.RootID, "A", "KEY:DECRYPT", "kA", 400, "invalid ciphertext"},
		{s.RootID, "B", "GET /v1/admin/{enclave}/keys/{name}", "kB", 200, ""},
		{s.RootID, "A", "KEY:GENERATE", "nokey", 404, "key does not exist"},
	}
	if len(end.Records) != len(wants) || end.More {
		t.Fatalf("window holds %d records (more %v), want %d: %+v", len(end.Records), end.More, len(wants), end.Records)
	}
	for i, r := range end.Records {
		w := wants[i]
		var cmd, key string
		if len(r.Items) > 0 {
			cmd, key = r.Items[0].Command, r.Items[0].Key
		}
		if r.Identity != w.identity || r.Enclave != w.enclave || cmd != w.command || key != w.key || r.Status != w.status ||
			!strings.Contains(r.Error, w.err) || r.Seq <= f.since || r.Seq > f.until {
			t.Fatalf("window record %d (%s) = %+v, want %+v", i, windowNames[i], r, w)
		}
		f.labels[recordKey(r)] = windowNames[i]
		f.byName[windowNames[i]] = r
	}
	if q := end.Records[0]; q.Route != "GET /v1/ledger/requests" {
		t.Fatalf("first window record = %+v, want the requests query", q)
	}
	return f
}

// recordKey identifies a record among those of one test.
func recordKey(r client.AuditRequest) string {
	return fmt.Sprintf("%d %d %s %d", r.Seq, r.Time.UnixNano(), r.Path, r.Status)
}

// names runs the query and names the records found; a record outside the
// window is named by its path.
func (f *requestsFixture) names(t *testing.T, c *client.Client, fl client.RequestFilter) ([]string, *client.AuditRequests) {
	t.Helper()
	l, err := c.AuditRequests(ctx, fl)
	if err != nil {
		t.Fatalf("AuditRequests(%+v) err = %v", fl, err)
	}
	out := []string{}
	for _, r := range l.Records {
		name, ok := f.labels[recordKey(r)]
		if !ok {
			name = "outside:" + r.Path
		}
		out = append(out, name)
	}
	return out, l
}

// TestAuditRequestsFilters: every filter returns exactly the requests it
// names, in order.
func TestAuditRequestsFilters(t *testing.T) {
	f := newRequestsFixture(t)
	win := func(fl client.RequestFilter) client.RequestFilter {
		fl.Since, fl.Until = client.Point{Seq: f.since}, client.Point{Seq: f.until}
		return fl
	}
	_, nobody := newIdentity(t)
	tests := []struct {
		name   string
		filter client.RequestFilter
		want   []string
	}{
		{"All", win(client.RequestFilter{}), windowNames},
		{"EnclaveA", win(client.RequestFilter{Enclave: "A"}), []string{"genA", "deniedA", "badDecA", "missingA"}},
		{"EnclaveB", win(client.RequestFilter{Enclave: "B"}), []string{"encB", "infoB"}},
		{"Key", win(client.RequestFilter{Key: "kA"}), []string{"genA", "deniedA", "badDecA"}},
		{"KeyOfAdminRoute", win(client.RequestFilter{Key: "kB"}), []string{"encB", "infoB"}},
		{"IdentityOfNobody", win(client.RequestFilter{Identity: nobody}), nil},
		{"CommandDecrypt", win(client.RequestFilter{Command: "KEY:DECRYPT"}), []string{"badDecA"}},
		{"CommandPrefix", win(client.RequestFilter{Command: "KEY:*"}), []string{"genA", "encB", "deniedA", "badDecA", "missingA"}},
		{"CommandRoute", win(client.RequestFilter{Command: "GET /v1/admin/{enclave}/keys/{name}"}), []string{"infoB"}},
		{"CommandRouteNoItems", win(client.RequestFilter{Command: "GET /v1/ledger/requests"}), []string{"query"}},
		{"CommandAndKey", win(client.RequestFilter{Command: "KEY:GENERATE", Key: "kA"}), []string{"genA", "deniedA"}},
		{"ResultOK", win(client.RequestFilter{Result: client.ResultOK}), []string{"query", "genA", "encB", "infoB"}},
		{"ResultDenied", win(client.RequestFilter{Result: client.ResultDenied}), []string{"deniedA"}},
		{"ResultError", win(client.RequestFilter{Result: client.ResultError}), []string{"badDecA", "missingA"}},
		{"ResultStatus404", win(client.RequestFilter{Result: "404"}), []string{"missingA"}},
		{"ResultStatus400", win(client.RequestFilter{Result: "400"}), []string{"badDecA"}},
		{"Combined", win(client.RequestFilter{Enclave: "A", Key: "kA", Result: client.ResultError}), []string{"badDecA"}},
		{"TimeRange", client.RequestFilter{Since: client.Point{Time: f.byName["deniedA"].Time},
			Until: client.Point{Time: f.byName["infoB"].Time}}, []string{"deniedA", "badDecA", "infoB"}},
		// A since time and the cursor combine: each cuts on its own.
		{"TimeCutsCursorDoesNot", client.RequestFilter{Since: client.Point{Time: f.byName["infoB"].Time},
			After: f.byName["genA"].Seq, Until: client.Point{Seq: f.until}}, []string{"infoB", "missingA"}},
		{"CursorCutsTimeDoesNot", client.RequestFilter{Since: client.Point{Time: f.byName["query"].Time},
			After: f.byName["badDecA"].Seq, Until: client.Point{Seq: f.until}}, []string{"infoB", "missingA"}},
		{"Tail", win(client.RequestFilter{Tail: 2}), []string{"infoB", "missingA"}},
		{"TailFiltered", win(client.RequestFilter{Tail: 1, Enclave: "A", Result: client.ResultOK}), []string{"genA"}},
		{"Limit", win(client.RequestFilter{Limit: 3}), []string{"query", "genA", "encB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, l := f.names(t, f.root, tt.filter)
			want := tt.want
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("records = %q, want %q", got, want)
			}
			if l.More != (tt.name == "Limit") {
				t.Errorf("more = %v", l.More)
			}
		})
	}
	// The identity filter, with identities that made requests.
	got, _ := f.names(t, f.root, win(client.RequestFilter{Identity: f.byName["deniedA"].Identity}))
	if !slices.Equal(got, []string{"deniedA"}) {
		t.Errorf("identity of the user: records = %q, want [deniedA]", got)
	}
	got, _ = f.names(t, f.root, win(client.RequestFilter{Identity: f.s.RootID, Key: "kA"}))
	if !slices.Equal(got, []string{"genA", "badDecA"}) {
		t.Errorf("identity of root, key kA: records = %q, want [genA badDecA]", got)
	}
}

// TestAuditRequestsCursor: paging with limit and After = Last returns
// every record once, in order; polling from Last returns exactly what is
// new.
func TestAuditRequestsCursor(t *testing.T) {
	f := newRequestsFixture(t)
	fl := client.RequestFilter{Since: client.Point{Seq: f.since}, Until: client.Point{Seq: f.until}, Limit: 2}
	var all []string
	pages := 0
	for {
		got, l := f.names(t, f.root, fl)
		pages++
		if len(got) > 2 || pages > len(windowNames) {
			t.Fatalf("page %d = %q, want at most 2 records", pages, got)
		}
		all = append(all, got...)
		if !l.More {
			if l.Last != f.until {
				t.Errorf("last page ends at %d, want %d", l.Last, f.until)
			}
			break
		}
		fl.After = l.Last
	}
	if !slices.Equal(all, windowNames) || pages != 4 {
		t.Fatalf("paged records = %q in %d pages, want %q in 4", all, pages, windowNames)
	}

	poll := client.RequestFilter{After: f.until, Command: "KEY:*"}
	got, l := f.names(t, f.root, poll)
	if len(got) != 0 || l.Last <= f.until {
		t.Fatalf("first poll = %q, last %d; want nothing new, last > %d", got, l.Last, f.until)
	}
	_, err := f.root.Encrypt(ctx, "A", "kA", 0, []byte("new"), nil)
	mustOK(t, err)
	poll.After = l.Last
	l2, err := f.root.AuditRequests(ctx, poll)
	mustOK(t, err)
	if len(l2.Records) != 1 || l2.Records[0].Items[0].Command != "KEY:ENCRYPT" || l2.Records[0].Seq <= l.Last || l2.Last < l2.Records[0].Seq {
		t.Fatalf("poll after a new Encrypt = %+v, want exactly that request", l2)
	}
	poll.After = l2.Last
	l3, err := f.root.AuditRequests(ctx, poll)
	mustOK(t, err)
	if len(l3.Records) != 0 || l3.Last < l2.Last {
		t.Fatalf("third poll = %+v, want nothing new", l3)
	}
}

// TestAuditRequestsAccess: root reads every enclave; the Admin and the
// auditor of A read A's records only; a User without the auditor tag
// reads nothing.
func TestAuditRequestsAccess(t *testing.T) {
	f := newRequestsFixture(t)
	win := func(enclave string) client.RequestFilter {
		return client.RequestFilter{Enclave: enclave, Since: client.Point{Seq: f.since}, Until: client.Point{Seq: f.until}}
	}
	tests := []struct {
		who     string
		enclave string
		status  int
		want    []string
	}{
		{"root", "", 0, windowNames},
		{"root", "B", 0, []string{"encB", "infoB"}},
		{"admin", "A", 0, []string{"genA", "deniedA", "badDecA", "missingA"}},
		{"auditor", "A", 0, []string{"genA", "deniedA", "badDecA", "missingA"}},
		{"admin", "", http.StatusBadRequest, nil},
		{"admin", "B", http.StatusForbidden, nil},
		{"auditor", "B", http.StatusForbidden, nil},
		{"user", "A", http.StatusForbidden, nil},
		{"user", "", http.StatusBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.who+"-"+tt.enclave, func(t *testing.T) {
			c := f.root
			if tt.who != "root" {
				c = f.clients[tt.who]
			}
			if tt.status != 0 {
				_, err := c.AuditRequests(ctx, win(tt.enclave))
				var ce *client.Error
				if !errors.As(err, &ce) || ce.Status != tt.status {
					t.Fatalf("err = %v, want status %d", err, tt.status)
				}
				return
			}
			got, _ := f.names(t, c, win(tt.enclave))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("records = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestAuditRequestsIncarnation: an enclave deleted and created again is
// another tenant: its new Admin does not read the old one's requests;
// root still does.
func TestAuditRequestsIncarnation(t *testing.T) {
	f := newRequestsFixture(t)
	mustOK(t, f.root.DeleteEnclave(ctx, "B"))
	mustOK(t, f.root.CreateEnclave(ctx, "B"))
	key, id := newIdentity(t)
	mustOK(t, f.root.CreateIdentity(ctx, "B", &wire.CreateIdentityRequest{Identity: id, Privilege: "Admin"}))
	l, err := f.s.client(key).AuditRequests(ctx, client.RequestFilter{Enclave: "B"})
	mustOK(t, err)
	if len(l.Records) != 1 || l.Records[0].Items[0].Command != "IDENTITY:CREATE" || l.Records[0].Items[0].Key != id {
		t.Fatalf("new admin of B reads %+v, want only its own creation", l.Records)
	}
	got, _ := f.names(t, f.root, client.RequestFilter{Enclave: "B", Since: client.Point{Seq: f.since}, Until: client.Point{Seq: f.until}})
	if !slices.Equal(got, []string{"encB", "infoB"}) {
		t.Fatalf("root reads %q of the old B, want [encB infoB]", got)
	}
}

// TestAuditRequestsBadQueries: malformed filters are 400, and a server
// without auditing answers 501.
func TestAuditRequestsBadQueries(t *testing.T) {
	s := startAuditStack(t, &ledger.AuditConfig{Sync: true})
	root := s.client("")
	for _, fl := range []client.RequestFilter{
		{Result: "maybe"},
		{Result: "99"},
		{Limit: 1 << 20},
		{Tail: 1 << 20},
	} {
		_, err := root.AuditRequests(ctx, fl)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusBadRequest {
			t.Errorf("AuditRequests(%+v) err = %v, want status 400", fl, err)
		}
	}
	off := startAuditStack(t, nil)
	_, err := off.client("").AuditRequests(ctx, client.RequestFilter{})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusNotImplemented {
		t.Errorf("AuditRequests without auditing err = %v, want status 501", err)
	}
}
