package node

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// DefaultSchedulerInterval is how often a running node carries out the
// scheduled key deletions whose deadline has passed.
const DefaultSchedulerInterval = 30 * time.Second

// ErrClosed is returned by Serve on a closed node.
var ErrClosed = errors.New("node: closed")

// Config is what a node is made of. The zero value of a setting is its
// default.
type Config struct {
	Dir    string       // data dir: the ledger, and DIR/tls for a self-signed certificate
	HSMs   []config.HSM // the roots of trust, in order: the first initialises a new ledger
	Logger *slog.Logger // nil: nothing is logged

	// Certificate, if set, is the server certificate. Otherwise CertFile
	// and KeyFile are loaded, or, without them, a self-signed certificate
	// is kept in DIR/tls, made on first start for the names of Addr.
	Certificate       *tls.Certificate
	CertFile, KeyFile string
	Addr              string
	ClientCAFile      string // PEM: only client certificates it issued are accepted

	// Audit, if set, records every API request (nil: no auditing).
	Audit *ledger.AuditConfig
	// Checkpoints, if set, signs checkpoints of the hash chains; zero
	// fields are the ledger's defaults (nil: no checkpoints).
	Checkpoints *ledger.CheckpointConfig

	KESEnclave       string        // serve the KES API for this enclave ("" = off)
	HSMCheckInterval time.Duration // how often the HSMs are probed (0: the API's default)
	Limits           api.Limits    // connection caps (zero fields: defaults)
	Version, Commit  string        // reported by /version

	// SchedulerInterval is how often scheduled key deletions are carried
	// out (0: DefaultSchedulerInterval). Those due are always carried out
	// by Open; a negative interval runs no background scheduler, for
	// callers that move the handler's clock themselves.
	SchedulerInterval time.Duration

	// ConfigureAPI, if set, may change the API configuration last.
	ConfigureAPI func(*api.Config)

	// Cluster, if set, makes the node one of a cluster of nodes
	// (cluster.go); External, if set, keeps the ledger on an existing
	// NATS cluster instead of an embedded server. At most one is set.
	Cluster  *ClusterConfig
	External *ledger.ExternalConfig
	// Snapshots tunes the projection snapshots kept in DIR/snapshots
	// (the zero value: on, with the projections package's defaults).
	Snapshots SnapshotSettings
	// Staleness bounds how long a clustered node that cannot confirm it
	// is current with the cluster keeps serving crypto from what it has
	// (0: DefaultStaleness).
	Staleness time.Duration

	// KeyCache is the most unsealed key versions kept in memory
	// (0: projections.DefaultKeyCache).
	KeyCache int
}

// Node is an open kmsledger node. Its fields are read-only.
type Node struct {
	Store   *ledger.Store
	Proj    *projections.Projection
	Handler *commands.Handler
	Auditor *ledger.Auditor     // nil without auditing
	HSMs    []commands.NamedHSM // the configured HSMs that could be opened

	RootKey  string // the root API key; "" when this configuration cannot derive it
	RootID   string // the root identity
	Created  bool   // Open initialised the ledger
	OpenedBy string // name of the HSM that unsealed the REK

	SigningKey  ed25519.PublicKey // the checkpoint signing key; nil without checkpoints
	Certificate tls.Certificate   // the server certificate
	CAFile      string            // the self-signed certificate's file to trust ("" when configured)

	cfg     Config
	log     *slog.Logger
	fresh   freshness // a clustered node's last confirmation that it is current (cluster.go)
	rek     *hsm.REK
	signer  crypto.Signer // the checkpoint signing key; nil without checkpoints
	srv     *api.Server
	closers []func() error // in the order they were opened

	reconciled chan struct{} // closed once the first sealed-material pass ended (Reconciled)

	mu      sync.Mutex
	closed  bool
	serving []serving

	closeOnce sync.Once
	closeErr  error
}

// serving is one running Serve call.
type serving struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Open opens a node: the HSMs, the ledger and its projection, the Root
// Encryption Key (initialising a new ledger under every configured HSM),
// the command handler, the scheduler, auditing and checkpoints, and the
// API server. On an error, whatever it opened is closed again. ctx bounds
// the start-up and the scheduler.
func Open(ctx context.Context, cfg Config) (_ *Node, err error) {
	n := &Node{cfg: cfg, log: cfg.Logger, reconciled: make(chan struct{})}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if err := n.openLedger(ctx); err != nil {
		return nil, err
	}
	if err := n.startCommands(ctx); err != nil {
		return nil, err
	}
	if err := n.startAudit(ctx); err != nil {
		return nil, err
	}
	if err := n.newServer(); err != nil {
		return nil, err
	}
	return n, nil
}

// onClose registers f to be called by Close, before what was opened
// earlier.
func (n *Node) onClose(f func() error) { n.closers = append(n.closers, f) }

// untilClose runs f in a goroutine with a context that ends when the
// node closes (or parent ends); Close waits for f to return.
func (n *Node) untilClose(parent context.Context, f func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(parent)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(ctx)
	}()
	n.onClose(func() error { cancel(); <-done; return nil })
}

// openLedger opens the HSMs, the ledger and its projection, and unseals
// (or creates) the REK.
func (n *Node) openLedger(ctx context.Context) error {
	hsms, errs := OpenHSMs(ctx, n.cfg.HSMs, n.log)
	n.onClose(func() error { hsms.Close(); return nil })
	if len(hsms.List) == 0 {
		return fmt.Errorf("no HSM could be opened (nothing was changed): %w", errors.Join(errs...))
	}
	n.HSMs = hsms.List
	lcfg, err := n.ledgerConfig(ctx)
	if err != nil {
		return err
	}
	// The newest snapshot is read and decoded while the ledger opens;
	// OpenWith checks it against the ledger (projections.Preload).
	snaps := n.snapshotConfig()
	pctx, stopPreload := context.WithCancel(ctx)
	defer stopPreload()
	pre := projections.PreloadSnapshot(pctx, snaps, n.log)
	store, err := ledger.Open(ctx, lcfg)
	if err != nil {
		return err
	}
	n.Store = store
	n.onClose(func() error {
		if err := store.Close(); err != nil {
			n.log.Error("close the ledger", "err", err)
		}
		return nil
	})
	popts := projections.Options{KeyCache: n.cfg.KeyCache, Snapshots: snaps, Preloaded: pre}
	if n.Proj, err = projections.OpenWith(ctx, store, nil, n.log, popts); err != nil {
		return err
	}
	n.onClose(func() error { n.Proj.Close(); return nil })
	return n.unseal(ctx, errs)
}

// unseal opens the REK with the first HSM it is sealed under, or
// initialises the ledger, and sets the root API key and identity. errs
// are the HSMs that could not be opened: a new ledger is not initialised
// without them.
func (n *Node) unseal(ctx context.Context, errs []error) error {
	rootKey, rootID, sealed, err := newRootKey(n.HSMs)
	if err != nil {
		return err
	}
	if !isInitialized(n.Proj) && len(errs) > 0 {
		// A new ledger is sealed under every configured HSM: one that is
		// not there now would silently be left out.
		return fmt.Errorf("%s: not initialising the ledger while configured HSMs are unavailable (nothing was written): %w", n.cfg.Dir, errors.Join(errs...))
	}
	params := commands.InitParams{RootIdentity: rootID, DefaultType: string(hsm.AES256)}
	if sealed {
		params.RootKey = rootKey
	}
	rek, unsealed, err := commands.Unseal(ctx, n.Store, n.Proj, n.HSMs, params)
	if errors.Is(err, ledger.ErrConflict) && n.Store.Clustered() {
		// Another node of a new cluster initialised it first: use its REK.
		rek, unsealed, err = commands.Unseal(ctx, n.Store, n.Proj, n.HSMs, params)
	}
	if err != nil {
		if len(errs) > 0 {
			err = fmt.Errorf("%w; HSMs that could not be opened: %w", err, errors.Join(errs...))
		}
		return fmt.Errorf("%s: %w (nothing was changed)", n.cfg.Dir, err)
	}
	n.log.Info("root encryption key unsealed", "hsm", unsealed.OpenedBy)
	n.rek, n.Created, n.OpenedBy = rek, unsealed.Created, unsealed.OpenedBy
	if !unsealed.Created {
		if key, err := commands.RootKey(rek, unsealed.Init, hsm.InsecureSecretAccess()); err == nil && key != "" {
			rootKey = key
		} else if unsealed.Init.RootIdentity != rootID {
			rootKey = "" // not derivable from this configuration
		}
		rootID = unsealed.Init.RootIdentity
	}
	n.RootKey, n.RootID = rootKey, rootID
	return nil
}

// startCommands makes the command handler, seals the REK under the
// configured HSMs without a sealing, erases unreferenced sealed material,
// carries out the key deletions that fell due while the node was
// stopped, and starts the scheduler.
func (n *Node) startCommands(ctx context.Context) error {
	h := commands.NewHandler(n.Store, n.Proj, n.rek, n.log)
	n.Handler = h
	// Configured HSMs without a sealing get one now (as minkms does),
	// unless removed with rm-hsm; a failure leaves the node running.
	sealedNow, err := h.SealConfigured(ctx, n.RootID, n.HSMs)
	for _, name := range sealedNow {
		n.log.Info("sealed the root encryption key under a configured HSM", "hsm", name)
	}
	if err != nil {
		n.log.Error("could not seal the root encryption key under a configured HSM (it cannot start this node alone; see ls-hsm)", "err", err)
	}
	// The first sealed-material pass runs beside serving on a single node,
	// before it on a cluster node (reconcile.go).
	first := n.reconcileStart(ctx)
	if n.Store.Clustered() {
		first.from, first.ran = n.firstReconcile(ctx, first), true
	}
	// Scheduled deletions whose deadline passed while the server was
	// down are carried out before serving; then every interval.
	if c, err := h.DestroyDue(ctx); errors.Is(err, ledger.ErrUnavailable) {
		n.log.Warn("scheduled deletions are carried out in the background: the cluster is not available yet", "err", err)
	} else if err != nil {
		return fmt.Errorf("scheduled deletions: %w", err)
	} else if c > 0 {
		n.log.Info("carried out scheduled key deletions whose deadline passed while stopped", "count", c)
	}
	n.startScheduler(ctx)
	n.startReconcile(first, n.cfg.SchedulerInterval >= 0) // < 0: the first pass only
	n.startWarmUp()
	n.startCluster()
	return nil
}

// startWarmUp fills the key cache from SECRETS in the background
// (commands.WarmKeyCache), until it is full or the node closes. It waits
// for the projection to catch up (what /v1/health/ready waits for) and
// for the first sealed-material pass, so as not to slow either.
func (n *Node) startWarmUp() {
	n.untilClose(context.Background(), func(ctx context.Context) {
		if err := n.Proj.CatchUp(ctx); err != nil {
			if ctx.Err() == nil {
				n.log.Warn("key cache not warmed up: the projection did not catch up; keys are unsealed at their first use", "err", err)
			}
			return
		}
		select {
		case <-n.reconciled:
		case <-ctx.Done():
			return
		}
		start := time.Now()
		cached, err := n.Handler.WarmKeyCache(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			n.log.Warn("key cache warm-up stopped; the other keys are unsealed at their first use", "cached", cached, "err", err)
		case cached > 0:
			n.log.Info("key cache warmed up", "cached", cached, "took", time.Since(start).Round(time.Millisecond))
		}
	})
}

// startScheduler runs the handler's scheduler until ctx ends or the node
// is closed.
func (n *Node) startScheduler(ctx context.Context) {
	interval := n.cfg.SchedulerInterval
	if interval < 0 {
		return
	}
	if interval == 0 {
		interval = DefaultSchedulerInterval
	}
	n.untilClose(ctx, func(ctx context.Context) { n.Handler.RunScheduler(ctx, interval) })
}

// newServer loads the certificate and makes the API server.
func (n *Node) newServer() error {
	cert, caFile, err := n.certificate()
	if err != nil {
		return err
	}
	n.Certificate, n.CAFile = cert, caFile
	clientCAs, err := clientCAs(n.cfg.ClientCAFile)
	if err != nil {
		return err
	}
	cfg := api.Config{Handler: n.Handler, Projection: n.Proj, Certificate: cert, Version: n.cfg.Version, Commit: n.cfg.Commit,
		Logger: n.log, KESEnclave: n.cfg.KESEnclave, HSMs: n.HSMs, ClientCAs: clientCAs,
		HSMCheckInterval: n.cfg.HSMCheckInterval, Limits: n.cfg.Limits, Cluster: n.clusterView(), Verify: n.verify}
	if n.Auditor != nil {
		cfg.Audit = n.Auditor
	}
	cfg.DB = n.dbConfig() // backup.go
	if n.cfg.ConfigureAPI != nil {
		n.cfg.ConfigureAPI(&cfg)
	}
	n.srv = api.New(cfg)
	return nil
}

// Serve serves the API on ln until ctx ends or the node is closed, then
// shuts the server down gracefully. It may be called more than once, on
// different listeners.
func (n *Node) Serve(ctx context.Context, ln net.Listener) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	s := serving{cancel: cancel, done: make(chan struct{})}
	n.serving = append(n.serving, s)
	n.mu.Unlock()
	defer close(s.done)
	defer cancel()
	err := n.srv.Serve(ctx, ln)
	n.log.Info("server stopped")
	return err
}

// Close closes the node in the order shutdown needs: it stops serving
// (waiting for every Serve to return) and the scheduler, then closes the
// Auditor (storing every accepted record), the checkpoints (writing a
// last one that covers them), the projection, the ledger and the HSMs.
// It returns the errors of the Auditor and the checkpoints. Only the
// first call does anything.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		srv := n.serving
		n.mu.Unlock()
		for _, s := range srv {
			s.cancel()
			<-s.done
		}
		var errs []error
		for i := len(n.closers) - 1; i >= 0; i-- {
			errs = append(errs, n.closers[i]())
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}
