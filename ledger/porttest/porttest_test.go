package porttest

import (
	"net"
	"strconv"
	"testing"
)

// TestPortsOutsideEphemeralRange: ports are distinct, bindable, outside
// the range the kernel hands to port-0 listeners, and reserved.
func TestPortsOutsideEphemeralRange(t *testing.T) {
	lo, hi := span()
	seen := map[int]bool{}
	for _, p := range Ports(t, 50) {
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if p < lo || p >= hi {
			t.Fatalf("port %d outside [%d, %d)", p, lo, hi)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		l.Close()
		if reserve(p) {
			t.Fatalf("port %d: a second reservation succeeded", p)
		}
	}
	// A kernel-chosen port lies outside the span (unless the ephemeral
	// range covers nearly everything, where span falls back to it all).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if k := l.Addr().(*net.TCPAddr).Port; k >= lo && k < hi && hi-lo < 60000 {
		t.Fatalf("the kernel's port %d lies in the span [%d, %d)", k, lo, hi)
	}
}

// TestPortSkipsTaken: a port something listens on, or that another
// process reserved, is skipped for the next one drawn.
func TestPortSkipsTaken(t *testing.T) {
	_, hi := span()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	b := busy.Addr().(*net.TCPAddr).Port
	others := Ports(t, 2) // reserved by this process: stands for another's
	free := Ports(t, 1)[0]
	mu.Lock()
	delete(given, others[0]) // as if this process had never drawn it
	delete(given, free)
	reserved[len(reserved)-1].Close() // free's reservation
	reserved = reserved[:len(reserved)-1]
	mu.Unlock()
	draws := []int{b, others[0], free}
	got, err := draw(0, hi, func(int) int { d := draws[0]; draws = draws[1:]; return d })
	if err != nil || got != free {
		t.Fatalf("draw = %d, %v; want %d after skipping the busy %d and the reserved %d", got, err, free, b, others[0])
	}
}
