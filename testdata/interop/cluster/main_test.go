package cluster

import (
	"fmt"
	"os"
	"testing"

	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
)

// bin is the kmsledger binary every test runs; TestMain builds it once.
var bin string

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "kmsledger-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
	bin, err = harness.BuildKMSLedger(tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster: build kmsledger:", err)
		os.RemoveAll(tmp)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}
