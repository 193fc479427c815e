package api

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound what clients can hold of a server. A zero field takes its
// default; MaxConns and MaxConnsPerIP below zero mean no limit. Route
// body limits and deadlines are in the route table (routes.go).
type Limits struct {
	// MaxConns bounds the open connections in all (default 4096).
	MaxConns int
	// MaxConnsPerIP bounds the open connections from one IP address
	// (default 256). Behind a load balancer or NAT, every client shares
	// one address: raise it, or turn it off with -1.
	MaxConnsPerIP int
	// MaxHeaderBytes bounds a request's line and headers (default 32 KiB).
	MaxHeaderBytes int
	// HeaderTimeout bounds the TLS handshake and the reception of a
	// request's headers (default 10 s).
	HeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle that long (default 90 s).
	IdleTimeout time.Duration
	// RequestTimeout, if set, caps every route's deadline (which covers
	// reading the body and answering; 30 s for the kms, admin and
	// time-travel APIs, 15 s for KES, 10 s for health and version).
	RequestTimeout time.Duration
}

// Defaults of Limits.
const (
	DefaultMaxConns       = 4096
	DefaultMaxConnsPerIP  = 256
	DefaultMaxHeaderBytes = 32 << 10
	DefaultHeaderTimeout  = 10 * time.Second
	DefaultIdleTimeout    = 90 * time.Second
)

// withDefaults returns l with its zero fields set to the defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxConns == 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.MaxConnsPerIP == 0 {
		l.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.HeaderTimeout <= 0 {
		l.HeaderTimeout = DefaultHeaderTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	return l
}

// connLimiter is a listener that closes, as soon as it accepts them, the
// connections beyond MaxConns in all or MaxConnsPerIP from one address,
// before any TLS work is spent on them.
type connLimiter struct {
	net.Listener
	max, perIP int // < 0: no limit
	log        *slog.Logger

	mu      sync.Mutex
	total   int
	byAddr  map[netip.Addr]int
	refused atomic.Uint64
}

func newConnLimiter(ln net.Listener, l Limits, log *slog.Logger) *connLimiter {
	return &connLimiter{Listener: ln, max: l.MaxConns, perIP: l.MaxConnsPerIP, log: log, byAddr: map[netip.Addr]int{}}
}

// Accept returns the next connection within the limits.
func (c *connLimiter) Accept() (net.Conn, error) {
	for {
		conn, err := c.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := remoteAddr(conn)
		if c.acquire(addr) {
			return &limitedConn{Conn: conn, l: c, addr: addr}, nil
		}
		conn.Close()
		if n := c.refused.Add(1); n&(n-1) == 0 { // 1st, 2nd, 4th, 8th, ...: no log flood
			c.log.Warn("connection refused: too many open connections", "remote", conn.RemoteAddr().String(),
				"max_conns", c.max, "max_conns_per_ip", c.perIP, "refused_so_far", n)
		}
	}
}

func (c *connLimiter) acquire(addr netip.Addr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max >= 0 && c.total >= c.max {
		return false
	}
	if c.perIP >= 0 && c.byAddr[addr] >= c.perIP {
		return false
	}
	c.total++
	c.byAddr[addr]++
	return true
}

func (c *connLimiter) release(addr netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if n := c.byAddr[addr] - 1; n > 0 {
		c.byAddr[addr] = n
	} else {
		delete(c.byAddr, addr)
	}
}

// remoteAddr returns the IP address of the connection's peer (the zero
// address if it is not an IP connection: all of those share one count).
func remoteAddr(conn net.Conn) netip.Addr {
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// limitedConn gives its place back when it is closed (once).
type limitedConn struct {
	net.Conn
	l      *connLimiter
	addr   netip.Addr
	closed atomic.Bool
}

func (c *limitedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c.addr)
	}
	return c.Conn.Close()
}
