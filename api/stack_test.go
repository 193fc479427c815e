package api_test

import (
	"encoding/json"
	"testing"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/nodetest"
	"github.com/kmsledger/kmsledger/projections"
)

// stack is a whole kmsledger node in process (nodetest.Node) with the
// short names these tests use.
type stack struct {
	*nodetest.Node
	t      testing.TB
	dir    string
	hsmKey string
	addr   string
}

// newStack starts a node on a fresh data dir.
func newStack(t testing.TB) *stack { return fromNode(t, nodetest.Start(t, nodetest.Options{})) }

// startStack starts a node on dir with the software HSM key hsmKey.
func startStack(t testing.TB, dir, hsmKey string) *stack {
	t.Helper()
	return fromNode(t, nodetest.Start(t, nodetest.Options{Dir: dir, HSMKey: hsmKey}))
}

func fromNode(t testing.TB, n *nodetest.Node) *stack {
	return &stack{Node: n, t: t, dir: n.Dir, hsmKey: n.HSMKey, addr: n.Addr}
}

// restart stops the node and starts it again on the same data dir.
func (s *stack) restart() *stack {
	s.Stop()
	return startStack(s.t, s.dir, s.hsmKey)
}

// client returns a client authenticated with apiKey ("" = root).
func (s *stack) client(apiKey string) *client.Client { s.t.Helper(); return s.Client(s.t, apiKey) }

// stateJSON is a canonical dump of the projected state (unsealed key
// material is unexported and never part of it).
func (s *stack) stateJSON() string {
	var b []byte
	s.Proj.View(func(st *projections.State) { b, _ = json.Marshal(st) })
	return string(b)
}

// newIdentity returns a fresh API key and its identity.
func newIdentity(t testing.TB) (apiKey, id string) { return nodetest.NewIdentity(t) }
