package interop

import (
	"archive/tar"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/minio/kms-go/kms"
)

// host is the server's host:port, for the SDK calls that take one.
func host() string { return strings.TrimPrefix(env.Endpoint, "https://") }

// wantStatus fails unless err is a kms.Error with status code.
func wantStatus(t *testing.T, what string, err error, code int) {
	t.Helper()
	var e kms.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("%s: err = %v, want status %d", what, err, code)
	}
}

// TestSDKSurface checks that the tests of this package call every
// exported method of the pinned kms-go Client at least once (called, or
// passed as a method value to a helper that calls it).
func TestSDKSurface(t *testing.T) {
	files, err := filepath.Glob("*_test.go")
	noErr(t, "glob", err)
	var src strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		noErr(t, "read "+f, err)
		src.Write(b)
	}
	typ := reflect.TypeOf(&kms.Client{})
	for i := range typ.NumMethod() {
		name := typ.Method(i).Name
		if !strings.Contains(src.String(), "."+name+"(") && !strings.Contains(src.String(), "."+name+",") {
			t.Errorf("no test calls kms.Client.%s", name)
		}
	}
}

// TestOps covers the profiling calls of the SDK, as root and refused to
// anybody else (TestOpsLogsAndCluster and TestOpsDB the rest of the
// operations surface).
func TestOps(t *testing.T) {
	g := newGroup(t, "ops")
	user := clientFor(t, newKey(t))

	g.run("Hosts", func(t *testing.T) {
		if hs := env.Root.Hosts(); len(hs) != 1 || hs[0] != host() {
			t.Fatalf("Hosts() = %v, want [%s]", hs, host())
		}
	})
	g.run("StartProfiling, ProfilingStatus, StopProfiling", func(t *testing.T) {
		req := &kms.ProfileRequest{Host: host(), CPU: true, Heap: true, Goroutine: true, Thread: true, BlockRate: 1000, MutexFraction: 5}
		before := time.Now().Add(-time.Minute)
		noErr(t, "StartProfiling", env.Root.StartProfiling(ctx(t), req))
		st, err := env.Root.ProfilingStatus(ctx(t), &kms.ProfileRequest{Host: host()})
		noErr(t, "ProfilingStatus", err)
		if !st.CPU || !st.Heap || !st.Goroutine || !st.Thread || st.BlockRate != 1000 || st.MutexFraction != 5 || st.Started.Before(before) {
			t.Fatalf("ProfilingStatus = %+v, want what was started, now", st)
		}
		wantStatus(t, "StartProfiling again", env.Root.StartProfiling(ctx(t), req), http.StatusConflict)
		resp, err := env.Root.StopProfiling(ctx(t), &kms.ProfileRequest{Host: host()})
		noErr(t, "StopProfiling", err)
		defer resp.Close()
		tr := tar.NewReader(resp)
		var names []string
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			noErr(t, "TAR", err)
			if h.Size == 0 {
				t.Fatalf("%s is empty", h.Name)
			}
			names = append(names, h.Name)
		}
		if len(names) != 6 {
			t.Fatalf("profile TAR holds %v, want six profiles", names)
		}
		_, err = env.Root.StopProfiling(ctx(t), &kms.ProfileRequest{Host: host()})
		wantStatus(t, "StopProfiling again", err, http.StatusConflict)
	})
	g.run("profiling as unknown identity", func(t *testing.T) {
		wantStatus(t, "StartProfiling", user.StartProfiling(ctx(t), &kms.ProfileRequest{Host: host(), Heap: true}), http.StatusForbidden)
		_, err := user.ProfilingStatus(ctx(t), &kms.ProfileRequest{Host: host()})
		wantStatus(t, "ProfilingStatus", err, http.StatusForbidden)
		_, err = user.StopProfiling(ctx(t), &kms.ProfileRequest{Host: host()})
		wantStatus(t, "StopProfiling", err, http.StatusForbidden)
	})
}

// TestOpsLogsAndCluster covers the log stream and the cluster calls.
func TestOpsLogsAndCluster(t *testing.T) {
	g := newGroup(t, "ops-cluster")
	user := clientFor(t, newKey(t))

	g.run("Logs", func(t *testing.T) {
		resp, err := env.Root.Logs(ctx(t), &kms.LogRequest{Level: -4, Path: "/version"})
		noErr(t, "Logs", err)
		defer resp.Close()
		_, err = env.Root.Version(ctx(t), &kms.VersionRequest{})
		noErr(t, "Version", err)
		rec, ok := resp.Next()
		if !ok {
			t.Fatalf("Logs: no record: %v", resp.Close())
		}
		if rec.Path != "/version" || rec.Method != http.MethodGet || !rec.IP.IsValid() || rec.Identity != env.RootKey.Identity() {
			t.Fatalf("log record = %+v, want root's GET /version", rec)
		}
	})
	g.run("Logs as unknown identity", func(t *testing.T) {
		_, err := user.Logs(ctx(t), &kms.LogRequest{})
		wantStatus(t, "Logs", err, http.StatusForbidden)
	})
	g.run("ClusterStatus", func(t *testing.T) {
		st, err := env.Root.ClusterStatus(ctx(t), &kms.ClusterStatusRequest{})
		noErr(t, "ClusterStatus", err)
		n, ok := st.NodesUp[0]
		if len(st.NodesUp) != 1 || len(st.NodesDown) != 0 || !ok || n.Role != "Leader" || n.LeaderID != 0 || n.Commit == 0 || n.APIVersion != "v1" {
			t.Fatalf("ClusterStatus = %+v (node 0 %+v), want one node up, its own leader", st, n)
		}
		_, err = user.ClusterStatus(ctx(t), &kms.ClusterStatusRequest{})
		wantStatus(t, "ClusterStatus as unknown identity", err, http.StatusForbidden)
	})
	g.run("AddNode, RemoveNode, EditCluster", func(t *testing.T) {
		wantStatus(t, "AddNode", env.Root.AddNode(ctx(t), &kms.AddClusterNodeRequest{Host: "127.0.0.1:1"}), http.StatusConflict)
		wantStatus(t, "RemoveNode", env.Root.RemoveNode(ctx(t), &kms.RemoveClusterNodeRequest{Host: "127.0.0.1:1"}), http.StatusConflict)
		wantStatus(t, "EditCluster", env.Root.EditCluster(ctx(t), &kms.EditClusterRequest{Host: host(), Remove: []int{7}}), http.StatusConflict)
		wantStatus(t, "AddNode as unknown identity", user.AddNode(ctx(t), &kms.AddClusterNodeRequest{Host: "127.0.0.1:1"}), http.StatusForbidden)
		if hs := env.Root.Hosts(); len(hs) != 1 {
			t.Fatalf("after refused AddNode the client's hosts are %v", hs)
		}
	})
}

// TestOpsDB covers the database snapshot calls.
func TestOpsDB(t *testing.T) {
	g := newGroup(t, "ops-db")
	user := clientFor(t, newKey(t))

	g.run("ReadDB, WriteDB", func(t *testing.T) {
		resp, err := env.Root.ReadDB(ctx(t), &kms.ReadDBRequest{Host: host()})
		noErr(t, "ReadDB", err)
		snapshot, err := io.ReadAll(resp)
		resp.Close()
		noErr(t, "read snapshot", err)
		if len(snapshot) == 0 {
			t.Fatal("ReadDB: empty snapshot")
		}
		_, err = user.ReadDB(ctx(t), &kms.ReadDBRequest{Host: host()})
		wantStatus(t, "ReadDB as unknown identity", err, http.StatusForbidden)
		wantStatus(t, "WriteDB as unknown identity", user.WriteDB(ctx(t), &kms.WriteDBRequest{Host: host(), Body: strings.NewReader("x")}), http.StatusForbidden)
		if err := env.Root.WriteDB(ctx(t), &kms.WriteDBRequest{Host: host(), Body: strings.NewReader("not a snapshot")}); err == nil {
			t.Fatal("WriteDB of garbage succeeded")
		}
	})
}
