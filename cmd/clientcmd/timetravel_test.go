package clientcmd

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
)

func TestParsePoint(t *testing.T) {
	now := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want client.Point
		err  bool
	}{
		{"", client.Point{}, false},
		{"42", client.Point{Seq: 42}, false},
		{"now", client.Point{Time: now}, false},
		{"-36h", client.Point{Time: now.Add(-36 * time.Hour)}, false},
		{"-7d", client.Point{Time: now.Add(-7 * 24 * time.Hour)}, false},
		{"2025-03-01", client.Point{Time: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}, false},
		{"2025-03-01T10:00:00+02:00", client.Point{Time: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)}, false},
		{"0", client.Point{}, true},
		{"-0s", client.Point{}, true},
		{"-x", client.Point{}, true},
		{"yesterday", client.Point{}, true},
	}
	for _, tt := range tests {
		got, err := parsePoint("at", tt.in, now)
		if tt.err {
			if !errors.Is(err, ErrUsage) {
				t.Errorf("parsePoint(%q) err = %v, want ErrUsage", tt.in, err)
			}
			continue
		}
		if err != nil || got.Seq != tt.want.Seq || !got.Time.Equal(tt.want.Time) {
			t.Errorf("parsePoint(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// fakeLedger answers the /v1/ledger API with canned bodies and records
// the requests.
type fakeLedger struct {
	*httptest.Server
	caFile string
	reply  func(r *http.Request, n int) any // n counts requests from 1

	mu   sync.Mutex
	reqs []*url.URL
}

func newFakeLedger(t *testing.T, reply func(r *http.Request, n int) any) *fakeLedger {
	t.Helper()
	f := &fakeLedger{reply: reply}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(f.handle))
	f.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	f.StartTLS()
	t.Cleanup(f.Close)
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeLedger) handle(w http.ResponseWriter, r *http.Request) {
	if len(r.TLS.PeerCertificates) == 0 || wire.IdentityFromCert(r.TLS.PeerCertificates[0]) != cliTestIdentity || r.Method != http.MethodGet {
		http.Error(w, `{"message":"access denied: insufficient permissions"}`, http.StatusForbidden)
		return
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, r.URL)
	n := len(f.reqs)
	f.mu.Unlock()
	b, _ := json.Marshal(f.reply(r, n))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

func (f *fakeLedger) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, u := range f.reqs {
		out = append(out, u.Path+"?"+u.RawQuery)
	}
	return out
}

// run runs the CLI with args and the connection flags for f until it
// returns or ctx ends. Tests that run the CLI are not parallel: urfave/cli
// writes its global help flag on every run.
func (f *fakeLedger) run(ctx context.Context, args ...string) (string, error) {
	var out bytes.Buffer
	app := &cli.App{Name: "kmsledger", Commands: Commands(nil), Writer: &out, ErrWriter: io.Discard}
	conn := []string{"-a", cliTestAPIKey, "--server", f.Listener.Addr().String(), "--ca", f.caFile}
	n := 1
	if args[0] == "audit" {
		n = 2
	}
	argv := append(append(append([]string{"kmsledger"}, args[:n]...), conn...), args[n:]...)
	err := app.RunContext(ctx, argv)
	return out.String(), err
}

var tt0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func cannedLedger(r *http.Request, _ int) any {
	switch r.URL.Path {
	case "/v1/ledger/state":
		return client.LedgerState{Seq: 42, Enclaves: []client.EnclaveState{{
			Name: "t", CreatedAt: tt0, CreatedBy: "h1:root",
			Keys:       []wire.KeyInfo{{Name: "k1", State: "disabled", Versions: []wire.VersionInfo{{Version: 1, Type: "AES256", State: "enabled"}}}},
			Tombstones: []client.TombstoneState{{Name: "old", DestroyedAt: tt0, DestroyedBy: "h1:root"}},
			Identities: []client.IdentityState{{Identity: "h1:u", Privilege: "User", Policy: "p", Tags: map[string]string{"kmsledger.role": "auditor"}}},
			Policies:   []client.PolicyState{{Name: "p", Allow: map[string][]string{"KEY:DECRYPT": {"k*"}}, Deny: map[string][]string{"KEY:DECRYPT": {"k2"}}}},
		}}}
	case "/v1/ledger/who-can":
		return client.WhoCanResult{Seq: 42, Enclave: "t", Key: "k1", Command: "KEY:DECRYPT", Grants: []client.Grant{
			{Identity: "h1:root", Via: "root", Reason: "the root identity may do everything"},
			{Identity: "h1:u", Via: "policy", Policy: "p", Rule: "k*", Reason: `a User whose policy "p" allows KEY:DECRYPT on "k*"`},
		}}
	case "/v1/ledger/diff":
		return client.LedgerDiff{From: 10, To: 42, Changes: []client.Change{
			{Op: "added", Kind: "key", Enclave: "t", Name: "k1", Description: `key "k1" created (v1 AES256), enabled`},
			{Op: "removed", Kind: "identity", Enclave: "t", Name: "h1:a", Description: "identity h1:a deleted"},
			{Op: "changed", Kind: "policy", Enclave: "t", Name: "p", Description: `policy "p" edited`},
		}}
	case "/v1/ledger/events":
		return client.LedgerEvents{Last: 42, Events: []client.LedgerEvent{
			{Seq: 41, Type: "key.created.v1", Time: tt0, Actor: "h1:root", Enclave: "t", Aggregate: "ledger.t.key.k1", Payload: json.RawMessage(`{"name":"k1"}`)},
		}}
	}
	return nil
}

func TestTimeTravelCLI(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		request string // path?query of the only request
		out     []string
	}{
		{"StateBySeq", []string{"state", "--at", "42", "-e", "t"}, "/v1/ledger/state?enclave=t&seq=42",
			[]string{"State after event 42", "Enclave t", "k1  disabled  [v1 AES256 enabled]", "old  destroyed", "h1:u  User  policy p  kmsledger.role=auditor",
				"p  allow KEY:DECRYPT k*; deny KEY:DECRYPT k2"}},
		{"StateByTime", []string{"state", "--at", "2025-03-01T12:00:00Z"}, "/v1/ledger/state?at=2025-03-01T12%3A00%3A00Z", []string{"Enclave t"}},
		{"StateJSON", []string{"state", "--at", "2025-03-01", "--json"}, "/v1/ledger/state?at=2025-03-01T00%3A00%3A00Z", []string{`"seq": 42`, `"tombstones"`}},
		{"WhoCan", []string{"who-can", "-e", "t", "--key", "k1", "--at", "7"}, "/v1/ledger/who-can?command=KEY%3ADECRYPT&enclave=t&key=k1&seq=7",
			[]string{"KEY:DECRYPT on t/k1 after event 42:", "h1:root  root    the root identity", `h1:u  policy  a User whose policy "p"`}},
		{"WhoCanJSON", []string{"who-can", "-e", "t", "--key", "k1", "--command", "KEY:GENERATE", "--at", "7", "--json"},
			"/v1/ledger/who-can?command=KEY%3AGENERATE&enclave=t&key=k1&seq=7", []string{`"rule": "k*"`}},
		{"Diff", []string{"audit", "diff", "--from", "10", "-e", "t"}, "/v1/ledger/diff?enclave=t&from=10",
			[]string{"Changes from event 10 to event 42:", `+ t: key "k1" created`, "- t: identity h1:a deleted", `~ t: policy "p" edited`}},
		{"DiffTimes", []string{"audit", "diff", "--from", "2025-03-01", "--to", "2025-03-02"}, "/v1/ledger/diff?from=2025-03-01T00%3A00%3A00Z&to=2025-03-02T00%3A00%3A00Z", nil},
		{"Events", []string{"audit", "events", "-e", "t", "--key", "k1", "--identity", "h1:u", "--type", "key.*", "--since", "5", "--until", "2025-03-02"},
			"/v1/ledger/events?enclave=t&identity=h1%3Au&key=k1&since=5&type=key.%2A&until=2025-03-02T00%3A00%3A00Z",
			[]string{"41  2025-03-01T12:00:00Z  key.created.v1", "key k1  h1:root"}},
		{"EventsJSONLines", []string{"audit", "events", "--json"}, "/v1/ledger/events?", []string{`{"seq":41,"type":"key.created.v1"`, `"payload":{"name":"k1"}}`}},
		{"Tail", []string{"audit", "tail", "-n", "3", "-e", "t"}, "/v1/ledger/events?enclave=t&tail=3", []string{"41  "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeLedger(t, cannedLedger)
			out, err := f.run(context.Background(), tt.args...)
			if err != nil {
				t.Fatalf("%v: err = %v", tt.args, err)
			}
			if reqs := f.requests(); len(reqs) != 1 || reqs[0] != tt.request {
				t.Errorf("%v: requests = %q, want %q", tt.args, reqs, tt.request)
			}
			for _, s := range tt.out {
				if !strings.Contains(out, s) {
					t.Errorf("%v: output lacks %q:\n%s", tt.args, s, out)
				}
			}
		})
	}
}

func TestTimeTravelCLIUsage(t *testing.T) {
	f := newFakeLedger(t, cannedLedger)
	for _, args := range [][]string{
		{"state", "--at", "yesterday"},
		{"who-can", "--key", "k1"}, // no enclave
		{"audit", "diff", "--from", "-x"},
		{"audit", "events", "--limit", "-1"},
		{"audit", "tail", "-n", "0"},
	} {
		if _, err := f.run(context.Background(), args...); !errors.Is(err, ErrUsage) {
			t.Errorf("%v: err = %v, want ErrUsage", args, err)
		}
	}
	if reqs := f.requests(); len(reqs) != 0 {
		t.Errorf("usage errors sent requests: %q", reqs)
	}
}

// TestAuditEventsPages: events follows More with since=Last and stops at
// --limit.
func TestAuditEventsPages(t *testing.T) {
	page := func(r *http.Request, n int) any {
		seq := uint64(n * 10)
		return client.LedgerEvents{Last: seq, More: n < 3, Events: []client.LedgerEvent{{Seq: seq, Type: "key.created.v1", Time: tt0}}}
	}
	f := newFakeLedger(t, page)
	out, err := f.run(context.Background(), "audit", "events")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/v1/ledger/events?", "/v1/ledger/events?since=10", "/v1/ledger/events?since=20"}
	if got := f.requests(); strings.Join(got, " ") != strings.Join(want, " ") || strings.Count(out, "key.created.v1") != 3 {
		t.Fatalf("requests = %q, output %q; want %q and 3 events", got, out, want)
	}

	f = newFakeLedger(t, page)
	if out, err = f.run(context.Background(), "audit", "events", "--limit", "2"); err != nil {
		t.Fatal(err)
	}
	want = []string{"/v1/ledger/events?limit=2", "/v1/ledger/events?limit=1&since=10"}
	if got := f.requests(); strings.Join(got, " ") != strings.Join(want, " ") || strings.Count(out, "key.created.v1") != 2 {
		t.Fatalf("--limit 2: requests = %q, output %q; want %q and 2 events", got, out, want)
	}
}

// TestAuditTailFollow: tail -f prints the newest events, then polls with
// since = the last sequence seen and prints what is new, until stopped.
func TestAuditTailFollow(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFakeLedger(t, func(r *http.Request, n int) any {
		ev := func(seq uint64) client.LedgerEvent {
			return client.LedgerEvent{Seq: seq, Type: "key.created.v" + strconv.FormatUint(seq, 10), Time: tt0}
		}
		switch n {
		case 1:
			return client.LedgerEvents{Last: 5, Events: []client.LedgerEvent{ev(4), ev(5)}}
		case 2:
			return client.LedgerEvents{Last: 5, Events: []client.LedgerEvent{}}
		case 3:
			return client.LedgerEvents{Last: 7, Events: []client.LedgerEvent{ev(7)}}
		}
		cancel()
		return client.LedgerEvents{Last: 7, Events: []client.LedgerEvent{}}
	})
	out, err := f.run(ctx, "audit", "tail", "-f", "--interval", "10ms", "--type", "key.*")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/v1/ledger/events?tail=10&type=key.%2A", "/v1/ledger/events?since=5&type=key.%2A",
		"/v1/ledger/events?since=5&type=key.%2A", "/v1/ledger/events?since=7&type=key.%2A"}
	if got := f.requests(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("requests = %q, want %q", got, want)
	}
	var types []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		types = append(types, strings.Fields(line)[2])
	}
	if strings.Join(types, " ") != "key.created.v4 key.created.v5 key.created.v7" {
		t.Fatalf("tail -f printed %q", out)
	}
}
