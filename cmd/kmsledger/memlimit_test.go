package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// cgroupTree writes files under a fake root: path -> content.
func cgroupTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, s := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestMemoryLimitSources: the setting wins; then GOMEMLIMIT as the
// runtime read it; then 90% of the least cgroup limit along the
// process's cgroup path (v2), or of its v1 memory controller; else none.
func TestMemoryLimitSources(t *testing.T) {
	v2 := cgroupTree(t, map[string]string{
		"proc/self/cgroup":                         "0::/kube/pod1/ctr\n",
		"sys/fs/cgroup/kube/memory.max":            "max\n",
		"sys/fs/cgroup/kube/pod1/memory.max":       "2147483648\n",
		"sys/fs/cgroup/kube/pod1/ctr/memory.max":   "4294967296\n",
		"sys/fs/cgroup/kube/pod1/ctr/memory.other": "1\n",
	})
	v1 := cgroupTree(t, map[string]string{
		"proc/self/cgroup": "12:cpu,cpuacct:/x\n11:memory:/docker/abc\n",
		"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "1073741824\n",
		"sys/fs/cgroup/memory/memory.limit_in_bytes":            "9223372036854771712\n",
	})
	unlimited := cgroupTree(t, map[string]string{
		"proc/self/cgroup":         "0::/\n",
		"sys/fs/cgroup/memory.max": "max\n",
	})
	garbage := cgroupTree(t, map[string]string{
		"proc/self/cgroup":             "0::/a\n",
		"sys/fs/cgroup/a/memory.max":   "lots\n",
		"sys/fs/cgroup/memory.max":     "-5\n",
		"sys/fs/cgroup/a/b/memory.max": "1\n", // not on the path
	})
	tests := []struct {
		name, set, env, root string
		want                 int64
		src                  string
	}{
		{"setting", "1GiB", "", v2, 1 << 30, "setting"},
		{"setting off", "off", "", v2, -1, "setting"},
		{"cgroup v2: the least on the path", "", "", v2, 1932735283, "cgroup"},
		{"cgroup v1", "", "", v1, 966367641, "cgroup"},
		{"cgroup without a limit", "", "", unlimited, -1, ""},
		{"cgroup files that do not parse", "", "", garbage, -1, ""},
		{"no cgroup at all", "", "", t.TempDir(), -1, ""},
		{"GOMEMLIMIT=off", "", "off", v2, -1, "GOMEMLIMIT"},
	}
	for _, tc := range tests {
		got, src, err := memoryLimit(tc.set, tc.env, tc.root)
		if err != nil || got != tc.want || src != tc.src {
			t.Errorf("%s: memoryLimit = %d, %q, %v; want %d, %q", tc.name, got, src, err, tc.want, tc.src)
		}
	}
	// GOMEMLIMIT as the runtime applied it.
	prev := debug.SetMemoryLimit(768 << 20)
	defer debug.SetMemoryLimit(prev)
	if got, src, err := memoryLimit("", "768MiB", v2); err != nil || got != 768<<20 || src != "GOMEMLIMIT" {
		t.Errorf("GOMEMLIMIT=768MiB: memoryLimit = %d, %q, %v", got, src, err)
	}
	if _, _, err := memoryLimit("2GB", "", v2); err == nil {
		t.Error("memoryLimit(2GB) = nil error")
	}
}
