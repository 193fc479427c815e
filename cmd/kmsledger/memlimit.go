package main

import (
	"bufio"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/kmsledger/kmsledger/cmd/config"
)

// cgroupShare is the part of a cgroup's memory limit that becomes the
// Go runtime's soft limit when none is set: the rest is for what the
// runtime does not count (a PKCS#11 module's own memory, the kernel's
// page tables) and for the runtime's own overshoot.
const cgroupShare = 0.9

// memoryLimit decides the Go runtime's soft memory limit: set is
// memory.limit or --memory-limit ("" if neither); env is GOMEMLIMIT,
// which the runtime has already applied; root is "/" but in tests. It
// returns the limit (-1: none) and where it came from ("" when the
// runtime's own setting stands).
func memoryLimit(set, env, root string) (int64, string, error) {
	if set != "" {
		n, err := config.ParseMemoryLimit(set)
		return n, "setting", err
	}
	if env != "" {
		if n := debug.SetMemoryLimit(-1); n != math.MaxInt64 {
			return n, "GOMEMLIMIT", nil
		}
		return -1, "GOMEMLIMIT", nil
	}
	if n, ok := cgroupMemoryMax(root); ok {
		return int64(float64(n) * cgroupShare), "cgroup", nil
	}
	return -1, "", nil
}

// applyMemoryLimit sets and logs the limit memoryLimit decides.
func applyMemoryLimit(set string, log *slog.Logger) error {
	n, src, err := memoryLimit(set, os.Getenv("GOMEMLIMIT"), "/")
	if err != nil {
		return err
	}
	if n < 0 {
		debug.SetMemoryLimit(math.MaxInt64)
		if src != "" {
			log.Info("no memory limit", "source", src)
		}
		return nil
	}
	debug.SetMemoryLimit(n)
	log.Info("memory limit", "bytes", n, "source", src)
	return nil
}

// cgroupMemoryMax returns the memory limit of the process's cgroup (v2),
// the least along its path, or of its v1 memory controller; false if
// there is none.
func cgroupMemoryMax(root string) (int64, bool) {
	f, err := os.Open(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	least, found := int64(math.MaxInt64), false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var file, dir string
		switch {
		case parts[0] == "0" && parts[1] == "": // v2
			file, dir = "memory.max", filepath.Join(root, "sys/fs/cgroup", parts[2])
		case strings.Contains(","+parts[1]+",", ",memory,"): // v1
			file, dir = "memory.limit_in_bytes", filepath.Join(root, "sys/fs/cgroup/memory", parts[2])
		default:
			continue
		}
		for base := filepath.Join(root, "sys/fs/cgroup"); strings.HasPrefix(dir, base); dir = filepath.Dir(dir) {
			if n, ok := readLimit(filepath.Join(dir, file)); ok && n < least {
				least, found = n, true
			}
		}
	}
	return least, found
}

// readLimit reads a cgroup limit file: a number of bytes; "max" (v2) or
// a value near 2^63 (v1) is none.
func readLimit(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 || n >= 1<<62 {
		return 0, false
	}
	return n, true
}
