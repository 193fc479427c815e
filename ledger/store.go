package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream names.
const (
	ledgerStream  = "LEDGER"
	secretsStream = "SECRETS"
)

// duplicateWindow is how long JetStream remembers a LEDGER Nats-Msg-Id
// in a cluster (a single node: singleDuplicateWindow). It only has to
// outlast a resend of the same message (resendHorizon):
// a command id is recognised for 24 hours by Lookup, which reads the
// aggregate's own events past this window. The server keeps every id of
// the window in memory and, after a crash, reads every message of the
// window again before the stream opens, so the window is kept short
// (the server's default): with 24 hours, a million keys created that
// day cost 110 MB of memory and 2.7 s of CPU at every start after a
// crash.
const duplicateWindow = 2 * time.Minute

// singleDuplicateWindow is LEDGER's duplicates window on a single node,
// which never sends a message again: it only has to outlast a command's
// decision to its append, so that two requests with one command id
// decided at once store one event. A request lives at most 30 seconds
// (the API's request timeout); a duplicate sent later still fails its
// expectation. The server reads every message of the window again at
// every start: after kill -9 during creations at 4,000/s, 120,000
// messages rather than 480,000 (BENCHMARKS.md, "Start after a bulk").
const singleDuplicateWindow = 30 * time.Second

// resendHorizon bounds how long after its first send a message whose
// outcome is unknown (a cluster's timeout or election) is sent again
// with the same message id: half the duplicates window, so that a
// resend is always recognised as a duplicate. After it the write fails
// with ErrUnavailable, and the caller looks its event up (Lookup), as
// after any lost answer. A single server never sends a message again.
const resendHorizon = duplicateWindow / 2

// defaultStartTimeout bounds server start-up when ctx has no deadline.
const defaultStartTimeout = 30 * time.Second

// Config configures Open.
type Config struct {
	Dir    string       // data directory; the JetStream store lives in Dir/jetstream
	Listen string       // "" = no network listener; else host:port for NATS clients (port 0 = any)
	Logger *slog.Logger // nil = discard

	// ReadOnly opens existing streams without creating or updating them
	// and refuses appends (ErrReadOnly): for the audit tools, which read
	// a stopped server's data directory (chain_open.go).
	ReadOnly bool

	// Cluster, if set, makes the embedded server a node of a cluster
	// (cluster.go). External, if set, uses an existing NATS cluster and
	// starts no server. At most one of them may be set.
	Cluster  *ClusterConfig
	External *ExternalConfig
	// NoSync stores without an fsync per write: for a restore into a new
	// directory only, whose caller syncs every file after Close (backup.go).
	NoSync bool

	// DuplicateWindow is how long the server remembers a LEDGER message
	// id; 0 = duplicateWindow (2 minutes) in a cluster and
	// singleDuplicateWindow (30 seconds) on a single node. Messages are
	// sent again for at most half of it (resendHorizon). Tests shorten it
	// to see Lookup past it; it is at least 100 ms.
	DuplicateWindow time.Duration
}

// Store is the event store: an embedded NATS server with JetStream, the
// LEDGER, SECRETS and AUDIT streams, and an in-process client connection.
// A Store is safe for concurrent use.
type Store struct {
	log     *slog.Logger
	ns      *server.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	ledger  jetstream.Stream
	secrets jetstream.Stream
	audit   jetstream.Stream // AUDIT: one record per API request (audit.go)
	chains  *chains          // hash chains of LEDGER and AUDIT (chain.go)
	unlock  func() error

	clustered bool // other nodes may append: reads that must be current go to the leader
	// compress: AUDIT batches are written compressed (TypeAuditBatchZ,
	// audit_compress.go) and LEDGER events as frames (event_compress.go);
	// a single node only, so that nodes of earlier versions read on.
	compress   bool
	sole       bool          // the streams' only writer: a single node without a listener (chain_recent.go)
	replicas   int           // of every stream
	sysNC      *nats.Conn    // system account (embedded cluster only): peer removal
	node       string        // this node's name
	stopWriter func()        // stops the writer of an embedded cluster node (cluster_writer.go)
	eraseSeen  atomic.Uint64 // SECRETS deletions (+1) already compacted out of this node's Raft log

	replayStall time.Duration // a bounded read's wait for its next message before a new consumer (stallReader, read_range.go)

	dupWindow     time.Duration // LEDGER's duplicates window (Config.DuplicateWindow)
	replayWindow  time.Duration // how long Lookup recognises a command id (replayWindow; tests shorten it)
	scanMax       int           // bound of Lookup's read of one aggregate (lookupScanMax)
	resendHorizon time.Duration // no message is sent again later than this after its first send (resendHorizon)

	fsyncLane     sync.Mutex  // one fsync round at a time among the watches below and AUDIT's (durability.go)
	ledgerBlocks  *blockWatch // new LEDGER block files -> fsync of their directory
	secretsBlocks *blockWatch // same for SECRETS; also fsynced after an erase

	mu       sync.Mutex
	closed   bool
	subs     map[*subscription]struct{}
	presence *presence // the applied barrier's view of the cluster (cluster_barrier.go)
}

// fileStream is the part every stream shares: file storage, one replica,
// and no limit of any kind (a limit would delete data behind our back).
func fileStream(name, description, prefix string, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              name,
		Description:       description,
		Subjects:          []string{prefix + ">"},
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		MaxConsumers:      -1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgsPerSubject: -1,
		MaxMsgSize:        -1,
		Discard:           jetstream.DiscardNew,
		Replicas:          max(replicas, 1),
		AllowDirect:       true,
	}
}

// ledgerConfig is the LEDGER stream: every fact, kept forever. No limits
// (a limit would delete history), no delete, no purge, no rollup.
func ledgerConfig(replicas int, window time.Duration) jetstream.StreamConfig {
	c := fileStream(ledgerStream, "kmsledger events; append-only", ledgerPrefix, replicas)
	c.Duplicates = window
	c.DenyDelete, c.DenyPurge, c.AllowRollup = true, true, false
	c.AllowAtomicPublish = true
	return c
}

// secretsConfig is the SECRETS stream: sealed key material, erasable
// message by message, one message per reference (secrets.go, PutSecret).
// Purge stays denied so that material only disappears through EraseSecret.
func secretsConfig(replicas int) jetstream.StreamConfig {
	c := fileStream(secretsStream, "kmsledger sealed key material; erasable", secretsPrefix, replicas)
	c.DenyPurge, c.MaxMsgsPerSubject, c.DiscardNewPerSubject = true, 1, true
	return c
}

// Open starts the embedded NATS server on cfg.Dir (no signal handlers, no
// network listener unless cfg.Listen is set, JetStream file store synced
// on every write), connects to it in process, creates or updates the
// LEDGER, SECRETS and AUDIT streams and loads the heads of the hash chains
// (chain_open.go). Only one Store may have a directory open at a time
// (ErrLocked).
func Open(ctx context.Context, cfg Config) (_ *Store, err error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("ledger: open: empty data directory: %w", ErrInvalid)
	}
	if cfg.DuplicateWindow != 0 && cfg.DuplicateWindow < 100*time.Millisecond {
		return nil, fmt.Errorf("ledger: open: duplicates window %s is under 100ms: %w", cfg.DuplicateWindow, ErrInvalid)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("ledger: open: %w", err)
	}
	unlock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: %w", cfg.Dir, err)
	}
	s := &Store{log: log, unlock: unlock, subs: make(map[*subscription]struct{}), replayStall: defaultReplayStall,
		dupWindow: duplicateWindow, replayWindow: replayWindow, scanMax: lookupScanMax, resendHorizon: resendHorizon}
	if cfg.DuplicateWindow != 0 {
		s.dupWindow, s.resendHorizon = cfg.DuplicateWindow, cfg.DuplicateWindow/2
	} else if cfg.Cluster == nil && cfg.External == nil {
		s.dupWindow = singleDuplicateWindow
	}
	defer func() {
		if err != nil {
			if s.stopWriter != nil {
				s.stopWriter()
			}
			s.shutdown()
		}
	}()

	if cfg.Cluster != nil && cfg.External != nil {
		return nil, fmt.Errorf("ledger: open: a cluster node and an external NATS cluster at once: %w", ErrInvalid)
	}
	if cfg.External != nil {
		err = s.connectExternal(cfg.External)
	} else {
		err = s.startServer(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	s.compress = !s.clustered
	s.sole = !s.clustered && cfg.Listen == ""
	if s.js, err = jetstream.New(s.nc); err != nil {
		return nil, fmt.Errorf("ledger: open: %w", err)
	}
	if err := s.openStreams(ctx, cfg); err != nil { // LEDGER, SECRETS, AUDIT; writer; chain heads
		return nil, err
	}
	if !s.clustered {
		// Replicated streams are durable through their Raft logs (doc.go).
		if s.ledgerBlocks, err = newBlockWatch(cfg.Dir, ledgerStream, !cfg.NoSync && !cfg.ReadOnly, &s.fsyncLane); err != nil {
			return nil, err
		}
		if s.secretsBlocks, err = newBlockWatch(cfg.Dir, secretsStream, !cfg.NoSync && !cfg.ReadOnly, &s.fsyncLane); err != nil {
			return nil, err
		}
	}
	log.Info("ledger open", "dir", cfg.Dir, "listen", s.ClientURL())
	return s, nil
}

// startServer starts the embedded server (a cluster node with
// cfg.Cluster) and connects to it in process.
func (s *Store) startServer(ctx context.Context, cfg Config) error {
	if err := checkBeforeStart(cfg); err != nil { // read-only: refuse corrupt blocks (chain_open.go)
		return err
	}
	if cfg.Cluster == nil && !cfg.ReadOnly {
		s.dropStaleStates(cfg.Dir) // stream_state.go
	}
	opts, err := serverOptions(cfg)
	if err != nil {
		return err
	}
	var cred *clusterCred
	s.replicas = 1
	if cc := cfg.Cluster; cc != nil {
		if cred, err = clusterOptions(opts, cc, cfg.Listen); err != nil {
			return err
		}
		if s.replicas, err = replicas(cc.Replicas, cc.ClusterSize()); err != nil {
			return err
		}
		s.clustered, s.node = true, cc.Node
	}
	if s.ns, err = server.NewServer(opts); err != nil {
		return fmt.Errorf("ledger: open: new server: %w", err)
	}
	// The server's own debug lines (Raft elections, catch-ups) follow the
	// node's log level: they are what explains a slow failover.
	fatal := make(chan string, 1)
	s.ns.SetLoggerV2(natsLogger{l: s.log, fatal: fatal}, s.log.Enabled(ctx, slog.LevelDebug), false, false)
	s.ns.Start()
	deadline := time.Now().Add(defaultStartTimeout)
	if d, ok := ctx.Deadline(); ok {
		deadline = d
	}
	if err := s.waitReady(deadline, fatal); err != nil {
		return err
	}
	if !s.ns.JetStreamEnabled() {
		return errors.New("ledger: open: jetstream did not start")
	}
	// An in-process connection has no network that could fail: its
	// handshake is only slow when the machine is. nats.go's 2 s for it
	// ran out on a loaded machine, and a node of a new cluster that
	// fails then leaves the others without the majority that the first
	// meta leader needs (a new meta group counts every node's vote), so
	// the handshake gets the rest of the start-up's time.
	connTimeout := nats.Timeout(max(time.Until(deadline), time.Second))
	connOpts := []nats.Option{nats.InProcessServer(s.ns), nats.Name("kmsledger-ledger"), connTimeout,
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { s.log.Debug("nats client", "err", err) })}
	if cred != nil {
		connOpts = append(connOpts, nats.UserInfo(clientUser, cred.clientPassword))
	}
	if s.nc, err = nats.Connect("", connOpts...); err != nil {
		return fmt.Errorf("ledger: open: connect: %w", err)
	}
	if cred != nil {
		if s.sysNC, err = nats.Connect("", nats.InProcessServer(s.ns), nats.Name("kmsledger-system"), connTimeout,
			nats.UserInfo(systemUser, cred.systemPassword)); err != nil {
			return fmt.Errorf("ledger: open: connect to the system account: %w", err)
		}
	}
	return nil
}

// connectExternal connects to an existing NATS cluster.
func (s *Store) connectExternal(x *ExternalConfig) error {
	if len(x.URLs) == 0 {
		return fmt.Errorf("ledger: open: no NATS URL: %w", ErrInvalid)
	}
	r, err := replicas(x.Replicas, 0)
	if err != nil {
		return err
	}
	if x.Replicas == 0 {
		r = 3
	}
	s.replicas, s.clustered = r, true
	opts := []nats.Option{nats.Name("kmsledger-ledger"), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { s.log.Debug("nats client", "err", err) })}
	if x.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(x.CredsFile))
	}
	if x.User != "" {
		opts = append(opts, nats.UserInfo(x.User, x.Password))
	}
	if x.CAFile != "" {
		opts = append(opts, nats.RootCAs(x.CAFile))
	}
	if x.CertFile != "" || x.KeyFile != "" {
		opts = append(opts, nats.ClientCert(x.CertFile, x.KeyFile))
	}
	if s.nc, err = nats.Connect(strings.Join(x.URLs, ","), opts...); err != nil {
		return fmt.Errorf("ledger: open: connect to %s: %w", strings.Join(x.URLs, ","), err)
	}
	return nil
}

// serverOptions turns cfg into embedded server options.
func serverOptions(cfg Config) (*server.Options, error) {
	opts := &server.Options{
		ServerName: "kmsledger",
		JetStream:  true,
		StoreDir:   cfg.Dir, // the server appends "jetstream"
		NoSigs:     true,
		DontListen: cfg.Listen == "",
	}
	// A cluster node fsyncs every Raft log write before it answers. A
	// single server writes every record before the ack and the Store
	// fsyncs the blocks before it reports the write, one fsync for all
	// the writes acknowledged meanwhile (durability.go, doc.go).
	// Config.NoSync (restore staging only) fsyncs neither.
	opts.SyncAlways = cfg.Cluster != nil && !cfg.NoSync
	if cfg.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("ledger: listen %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("ledger: listen %q: bad port: %w", cfg.Listen, ErrInvalid)
		}
		if p == 0 {
			p = server.RANDOM_PORT // 0 would mean the default 4222
		}
		opts.Host, opts.Port = host, p
	}
	return opts, nil
}

// ClientURL returns the nats:// URL NATS clients can connect to, or "" if
// the Store has no network listener.
func (s *Store) ClientURL() string {
	if s.ns == nil || s.ns.Addr() == nil {
		return ""
	}
	return s.ns.ClientURL()
}

// Close stops every subscription, drains the client connection and shuts
// the embedded server down, flushing the stores. Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	subs := make([]*subscription, 0, len(s.subs))
	for sub := range s.subs {
		subs = append(subs, sub)
	}
	s.mu.Unlock()
	for _, sub := range subs {
		sub.stop()
	}
	if s.stopWriter != nil {
		s.stopWriter()
	}
	return s.shutdown()
}

// shutdown releases whatever Open managed to acquire.
func (s *Store) shutdown() error {
	var errs []error
	if s.sysNC != nil {
		s.sysNC.Close()
	}
	if s.nc != nil {
		if err := drain(s.nc); err != nil {
			errs = append(errs, fmt.Errorf("ledger: close: drain: %w", err))
		}
	}
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	}
	if s.unlock != nil {
		if err := s.unlock(); err != nil {
			errs = append(errs, fmt.Errorf("ledger: close: unlock: %w", err))
		}
	}
	return errors.Join(errs...)
}

// drain drains nc and waits until it is closed.
func drain(nc *nats.Conn) error {
	done := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(done) })
	if err := nc.Drain(); err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			return nil
		}
		return err
	}
	<-done
	return nil
}

// isClosed reports whether Close has been called.
func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// waitReady waits until the embedded server listens on every port it was
// given. A listener it cannot open (a port in use) fails the start at
// once with the server's reason; without that the server would only stop
// being ready, and the node would learn why from its log at the deadline.
func (s *Store) waitReady(deadline time.Time, fatal <-chan string) error {
	start := time.Now()
	for {
		ready := s.ns.ReadyForConnections(100 * time.Millisecond)
		select {
		case msg := <-fatal:
			return fmt.Errorf("ledger: open: embedded NATS server: %s", msg)
		default:
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ledger: open: server not ready after %s", time.Since(start).Round(time.Millisecond))
		}
	}
}

// natsLogger forwards the embedded server's log lines to slog. Notices
// (the start-up banner, configuration) go to Debug; traces are dropped.
// The first fatal line also goes to fatal, for the start to report.
type natsLogger struct {
	l     *slog.Logger
	fatal chan<- string
}

func (n natsLogger) Noticef(format string, v ...any) {
	n.l.Debug(fmt.Sprintf(format, v...), "src", "nats")
}
func (n natsLogger) Warnf(format string, v ...any) {
	n.l.Warn(fmt.Sprintf(format, v...), "src", "nats")
}
func (n natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	n.l.Error(msg, "src", "nats")
	select {
	case n.fatal <- msg:
	default:
	}
}
func (n natsLogger) Errorf(format string, v ...any) {
	n.l.Error(fmt.Sprintf(format, v...), "src", "nats")
}
func (n natsLogger) Debugf(format string, v ...any) {
	n.l.Debug(fmt.Sprintf(format, v...), "src", "nats")
}
func (n natsLogger) Tracef(format string, v ...any) {}
