package harness

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// FreeAddr returns a loopback address whose port nothing else will take
// before the test binds it.
//
// A port found by binding port 0 and closing lies in the kernel's
// ephemeral range: any process's next port-0 listener may take it first
// (a cluster node once found its route port held by another node's NATS
// client listener). So the port is drawn from outside that range, is
// reserved against the machine's other test processes with an abstract
// Unix socket name held until this process exits (Linux), is checked
// free, and is never handed out twice. The main module's tests draw
// theirs the same way (ledger/porttest), under the same names.
func FreeAddr() (string, error) {
	freeMu.Lock()
	defer freeMu.Unlock()
	lo, hi := portSpan()
	for range 1000 {
		p := lo + rand.IntN(hi-lo)
		if freeGiven[p] || !reservePort(p) {
			continue
		}
		freeGiven[p] = true
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue // held by something that does not reserve
		}
		l.Close()
		return addr, nil
	}
	return "", fmt.Errorf("harness: no free port in [%d, %d)", lo, hi)
}

var (
	freeMu       sync.Mutex
	freeGiven    = map[int]bool{}
	freeReserved []net.Listener
)

// portSpan is below the ephemeral range, or above it if too little lies
// below.
func portSpan() (lo, hi int) {
	eLo, eHi := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			a, err1 := strconv.Atoi(f[0])
			z, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && a <= z {
				eLo, eHi = a, z
			}
		}
	}
	const floor = 10000
	switch {
	case eLo-floor >= 2000:
		return floor, eLo
	case 65536-(eHi+1) >= 2000:
		return eHi + 1, 65536
	}
	return floor, 65536
}

// reservePort claims p against other processes (Linux only).
func reservePort(p int) bool {
	if runtime.GOOS != "linux" {
		return true
	}
	l, err := net.Listen("unix", "@kmsledger-test-port-"+strconv.Itoa(p))
	if err != nil {
		return false
	}
	freeReserved = append(freeReserved, l)
	return true
}
