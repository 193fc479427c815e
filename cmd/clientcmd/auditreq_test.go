package clientcmd

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/nodetest"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
)

// cannedRequests answers GET /v1/ledger/requests with two records.
func cannedRequests(*http.Request, int) any {
	return client.AuditRequests{Last: 9, Records: []client.AuditRequest{
		{Seq: 8, Time: tt0, Identity: "h1:u", Enclave: "t", Method: "POST", Path: "/v1/kms/t", Status: 403, Error: "access denied",
			Items: []client.AuditRequestItem{{Command: "KEY:DECRYPT", Key: "k1", Version: 2}}},
		{Seq: 9, Time: tt0, Method: "GET", Path: "/v1/ledger/state", Status: 200},
	}}
}

// TestRequestCutsText: the text line of a record says what the server
// cut from it, and that a marker stands for a dropped record.
func TestRequestCutsText(t *testing.T) {
	r := client.AuditRequest{Truncated: []client.AuditCut{{Field: "path", Len: 900017}, {Field: "items", Len: 5000}},
		Items: []client.AuditRequestItem{{Command: "KEY:STATUS", Key: "<<<", KeyLen: 1000000}}, Dropped: &client.AuditDrop{Reason: "too large"}}
	want := "  [cut path 900017 bytes, items 5000, key 1000000 bytes]  [record dropped: too large]"
	if got := requestCuts(r); got != want {
		t.Errorf("requestCuts = %q, want %q", got, want)
	}
	if got := requestCuts(client.AuditRequest{Items: []client.AuditRequestItem{{Command: "KEY:STATUS", Key: "k"}}}); got != "" {
		t.Errorf("requestCuts of an uncut record = %q, want nothing", got)
	}
}

func TestAuditRequestsCLI(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		request string // path?query of the only request
		out     []string
	}{
		{"Filters", []string{"audit", "requests", "-e", "t", "--key", "k1", "--identity", "h1:u", "--command", "KEY:DECRYPT",
			"--result", "denied", "--since", "5", "--until", "2025-03-02"},
			"/v1/ledger/requests?command=KEY%3ADECRYPT&enclave=t&identity=h1%3Au&key=k1&result=denied&since=5&until=2025-03-02T00%3A00%3A00Z",
			[]string{"2025-03-01T12:00:00Z  h1:u  t  KEY:DECRYPT k1 v2  403  access denied\n",
				"2025-03-01T12:00:00Z  -  -  GET /v1/ledger/state  200\n"}},
		{"Status", []string{"audit", "requests", "--result", "404", "--since", "2025-03-01T10:00:00Z"},
			"/v1/ledger/requests?result=404&since=2025-03-01T10%3A00%3A00Z", nil},
		{"Lines", []string{"audit", "requests", "-n", "2", "--command", "KEY:*"}, "/v1/ledger/requests?command=KEY%3A%2A&tail=2", nil},
		{"Limit", []string{"audit", "requests", "--limit", "5"}, "/v1/ledger/requests?limit=5", nil},
		{"JSONLines", []string{"audit", "requests", "--json"}, "/v1/ledger/requests?",
			[]string{`{"seq":8,"time":"2025-03-01T12:00:00Z",`, `"items":[{"command":"KEY:DECRYPT","key":"k1","version":2}],"status":403,"error":"access denied",`,
				"\n" + `{"seq":9,`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeLedger(t, cannedRequests)
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
			if tt.name == "JSONLines" {
				for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
					var r client.AuditRequest
					if err := json.Unmarshal([]byte(line), &r); err != nil || r.Seq == 0 {
						t.Errorf("line %q is not one record: %v", line, err)
					}
				}
			}
		})
	}
}

func TestAuditRequestsCLIUsage(t *testing.T) {
	f := newFakeLedger(t, cannedRequests)
	for _, args := range [][]string{
		{"audit", "requests", "--result", "maybe"},
		{"audit", "requests", "--result", "99"},
		{"audit", "requests", "--since", "yesterday"},
		{"audit", "requests", "--limit", "-1"},
		{"audit", "requests", "-n", "0"},
		{"audit", "requests", "-n", "10001"},
	} {
		if _, err := f.run(context.Background(), args...); !errors.Is(err, ErrUsage) {
			t.Errorf("%v: err = %v, want ErrUsage", args, err)
		}
	}
	if reqs := f.requests(); len(reqs) != 0 {
		t.Errorf("usage errors sent requests: %q", reqs)
	}
}

// TestAuditRequestsCLIPages: the listing follows More with after=Last,
// stops at --limit, and cuts a batch larger than the limit.
func TestAuditRequestsCLIPages(t *testing.T) {
	page := func(r *http.Request, n int) any {
		seq := uint64(n * 10)
		recs := []client.AuditRequest{{Seq: seq, Time: tt0, Method: "GET", Path: "/p", Status: 200}}
		if r.URL.Query().Get("limit") == "1" {
			recs = append(recs, recs[0]) // one batch holds two matches
		}
		return client.AuditRequests{Last: seq, More: n < 3, Records: recs}
	}
	tests := []struct {
		args []string
		want []string
		n    int
	}{
		{nil, []string{"/v1/ledger/requests?", "/v1/ledger/requests?after=10", "/v1/ledger/requests?after=20"}, 3},
		{[]string{"--limit", "2"}, []string{"/v1/ledger/requests?limit=2", "/v1/ledger/requests?after=10&limit=1"}, 2},
	}
	for _, tt := range tests {
		f := newFakeLedger(t, page)
		out, err := f.run(context.Background(), append([]string{"audit", "requests"}, tt.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.requests(); strings.Join(got, " ") != strings.Join(tt.want, " ") || strings.Count(out, "GET /p") != tt.n {
			t.Errorf("%v: requests = %q, output %q; want %q and %d records", tt.args, got, out, tt.want, tt.n)
		}
	}
}

// TestAuditRequestsCLIFollow: -f prints the newest records, then polls
// with after = the last cursor (at once again while More), until stopped.
func TestAuditRequestsCLIFollow(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := func(seq uint64, path string) client.AuditRequest {
		return client.AuditRequest{Seq: seq, Time: tt0, Method: "GET", Path: path, Status: 200}
	}
	f := newFakeLedger(t, func(r *http.Request, n int) any {
		switch n {
		case 1:
			return client.AuditRequests{Last: 5, Records: []client.AuditRequest{rec(4, "/a"), rec(5, "/b")}}
		case 2:
			return client.AuditRequests{Last: 5, Records: []client.AuditRequest{}}
		case 3:
			return client.AuditRequests{Last: 7, More: true, Records: []client.AuditRequest{rec(7, "/c")}}
		case 4:
			return client.AuditRequests{Last: 8, Records: []client.AuditRequest{rec(8, "/d")}}
		}
		cancel()
		return client.AuditRequests{Last: 8, Records: []client.AuditRequest{}}
	})
	out, err := f.run(ctx, "audit", "requests", "-f", "--interval", "10ms", "--result", "ok")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/v1/ledger/requests?result=ok&tail=10", "/v1/ledger/requests?after=5&result=ok",
		"/v1/ledger/requests?after=5&result=ok", "/v1/ledger/requests?after=7&result=ok", "/v1/ledger/requests?after=8&result=ok"}
	if got := f.requests(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("requests = %q, want %q", got, want)
	}
	var paths []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		paths = append(paths, strings.Fields(line)[4])
	}
	if strings.Join(paths, " ") != "/a /b /c /d" {
		t.Fatalf("-f printed %q", out)
	}
}

// TestAuditRequestsCLIServer runs the command against a real node that
// audits in sync mode: the denied and the failed requests are listed
// with their reason, and -f prints a new request as it is made.
func TestAuditRequestsCLIServer(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{Audit: &ledger.AuditConfig{Sync: true}})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: n.Certificate.Leaf.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	root := n.Client(t, "")
	userKey, userID := nodetest.NewIdentity(t)
	mustNil := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustNil(root.CreateEnclave(ctx, "t"))
	mustNil(root.CreateKey(ctx, "t", "k1", "", false))
	mustNil(root.CreateIdentity(ctx, "t", &wire.CreateIdentityRequest{Identity: userID}))
	if _, err := n.Client(t, userKey).GenerateKey(ctx, "t", "k1", 0, nil, 32); !errors.Is(err, client.ErrPermission) {
		t.Fatalf("user GenerateKey err = %v, want access denied", err)
	}
	run := func(ctx context.Context, w io.Writer, args ...string) error {
		app := &cli.App{Name: "kmsledger", Commands: Commands(nil), Writer: w, ErrWriter: io.Discard}
		argv := append([]string{"kmsledger", "audit", "requests", "-a", n.RootKey, "--server", n.Addr, "--ca", ca}, args...)
		return app.RunContext(ctx, argv)
	}

	var out strings.Builder
	mustNil(run(ctx, &out, "-e", "t", "--result", "denied"))
	if want := "  " + userID + "  t  KEY:GENERATE k1  403  access denied"; strings.Count(out.String(), "\n") != 1 || !strings.Contains(out.String(), want) {
		t.Fatalf("--result denied printed %q, want one line with %q", out.String(), want)
	}

	badDecrypt := func() {
		t.Helper()
		if _, err := root.Decrypt(ctx, "t", "k1", 0, []byte("not a ciphertext"), nil); err == nil {
			t.Fatal("Decrypt of garbage err = nil")
		}
	}
	wantLine := func(sc *bufio.Scanner, what string) {
		t.Helper()
		if !sc.Scan() || !strings.Contains(sc.Text(), "  "+n.RootID+"  t  KEY:DECRYPT k1") || !strings.HasSuffix(sc.Text(), "  400  invalid ciphertext") {
			t.Fatalf("-f printed %q (%v), want %s", sc.Text(), sc.Err(), what)
		}
	}
	badDecrypt()
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(fctx, pw, "-f", "--interval", "10ms", "-e", "t", "--command", "KEY:DECRYPT")
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	wantLine(lines, "the newest failed Decrypt first")
	badDecrypt() // made after -f printed the newest: found by polling
	wantLine(lines, "the failed Decrypt made while following")
	cancel()
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Fatalf("-f ended with %v", err)
	}
}
