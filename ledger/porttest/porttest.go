package porttest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Ports returns n distinct TCP ports free on 127.0.0.1 now.
func Ports(tb testing.TB, n int) []int {
	tb.Helper()
	ports := make([]int, 0, n)
	for range n {
		p, err := Port()
		if err != nil {
			tb.Fatal(err)
		}
		ports = append(ports, p)
	}
	return ports
}

// Addr returns 127.0.0.1:port with a port from Ports.
func Addr(tb testing.TB) string {
	tb.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Ports(tb, 1)[0]))
}

var (
	mu       sync.Mutex
	given    = map[int]bool{}
	reserved []net.Listener // held until the process exits
)

// Port returns a port outside the kernel's ephemeral range that is free
// on 127.0.0.1 now, was not returned before in this process, and is
// reserved against other processes that use this package.
func Port() (int, error) {
	lo, hi := span()
	return draw(lo, hi, rand.IntN)
}

// draw tries ports lo+next(hi-lo) until one is new, reserved and free.
func draw(lo, hi int, next func(int) int) (int, error) {
	mu.Lock()
	defer mu.Unlock()
	for range 1000 {
		p := lo + next(hi-lo)
		if given[p] || !reserve(p) {
			continue
		}
		given[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue // in use by something that does not reserve
		}
		l.Close()
		return p, nil
	}
	return 0, fmt.Errorf("porttest: no free port in [%d, %d)", lo, hi)
}

// span is the range ports are drawn from: below the ephemeral range, or
// above it if too little lies below.
func span() (lo, hi int) {
	eLo, eHi := 32768, 60999 // Linux's default
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			a, err1 := strconv.Atoi(f[0])
			z, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && a <= z {
				eLo, eHi = a, z
			}
		}
	}
	const floor = 10000 // above the well-known and common service ports
	switch {
	case eLo-floor >= 2000:
		return floor, eLo
	case 65536-(eHi+1) >= 2000:
		return eHi + 1, 65536
	}
	return floor, 65536 // the ephemeral range covers nearly everything
}

// reserve claims p against other processes with an abstract Unix socket
// name, which the kernel frees when the process exits. Only Linux has
// them; elsewhere nothing is claimed.
func reserve(p int) bool {
	if runtime.GOOS != "linux" {
		return true
	}
	l, err := net.Listen("unix", "@kmsledger-test-port-"+strconv.Itoa(p))
	if err != nil {
		return false // another process holds it
	}
	reserved = append(reserved, l)
	return true
}
