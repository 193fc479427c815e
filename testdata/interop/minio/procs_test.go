package minio

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
)

// Time limits of the commands the test runs, and how much of each server log
// a failed test prints. Processes are started and stopped by the shared
// harness, with its limits.
const (
	cmdTimeout = 2 * time.Minute
	logTail    = 6 << 10
)

// requireBinary returns the executable named by the environment variable, or
// fails the test saying how to get it.
func requireBinary(t *testing.T, envVar string) string {
	t.Helper()
	path := os.Getenv(envVar)
	if path == "" {
		t.Fatalf("%s is not set: run testdata/interop/run.sh, which installs the pinned MinIO and mc with .ci/minio-bins.sh and sets it", envVar)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("%s=%s is not an executable file (%v): run .ci/minio-bins.sh", envVar, path, err)
	}
	return path
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := harness.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// baseEnv is the test's environment without any MINIO_, MC_ or KMSLEDGER_
// variable, so that child processes see only what a step sets.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MINIO_") || strings.HasPrefix(kv, "MC_") || strings.HasPrefix(kv, "KMSLEDGER_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// startProc starts a server process whose output the test's redactor
// cleans, and stops it (SIGTERM, then SIGKILL to its group) when the
// top-level test ends.
func (h *e2e) startProc(c harness.ProcConfig) (*harness.Proc, error) {
	c.Red = h.red
	p, err := harness.Start(c)
	if err != nil {
		return nil, err
	}
	h.t.Cleanup(p.Stop)
	return p, nil
}
