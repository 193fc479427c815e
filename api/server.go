package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/kmsledger/kmsledger/api/metrics"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
	"github.com/kmsledger/kmsledger/projections/keys"
)

// Limits of the kms endpoint.
const (
	// MaxBody bounds a request body. A batch of 1000 GenerateKey frames is
	// about 60 KiB; 1 MiB leaves room for Encrypt of small secrets.
	MaxBody = 1 << 20
	// MaxDataKey is the largest data key GenerateKey returns (spec §2.4).
	MaxDataKey = 1024
	// hsmCheckInterval is how often the configured HSMs are probed.
	hsmCheckInterval = 30 * time.Second
)

// Config configures a Server.
type Config struct {
	Handler     *commands.Handler
	Projection  *projections.Projection
	Certificate tls.Certificate // server certificate
	Version     string          // release version reported by /version
	Commit      string
	Logger      *slog.Logger
	// HSMs are the configured, opened HSMs of this node: add-hsm seals
	// the REK under one of them; their health is checked periodically.
	HSMs []commands.NamedHSM
	// HSMCheckInterval is how often HSMs are probed (0 = 30 s).
	HSMCheckInterval time.Duration
	// ClientCAs, if set, restricts clients to certificates issued by one
	// of these CAs (validity dates are still not enforced: MinIO's
	// client certificates expire after 90 days and are never renewed).
	// The identity stays the hash of the leaf's public key.
	ClientCAs *x509.CertPool
	// KESEnclave, if set, serves the KES HTTP API (api/kes.go) on the same
	// listener, with KES clients authorised in this enclave.
	KESEnclave string
	// TransitMounts, if set, serves the Vault Transit API (api/transit.go)
	// on the same listener: mount path (e.g. "transit") to enclave.
	TransitMounts map[string]string
	// TransitDisableUpsert: encrypting to a missing key never creates it
	// over Transit (Vault's config/keys disable_upsert).
	TransitDisableUpsert bool
	// TransitTokenTTL is the lifetime of the tokens Transit logins issue
	// unless their AppRole role says otherwise (0 =
	// DefaultTransitTokenTTL). Clients that never renew (SeaweedFS) need
	// it long.
	TransitTokenTTL time.Duration
	// Audit, if set, records every request in the AUDIT stream (audit.go);
	// nil turns auditing off.
	Audit *ledger.Auditor
	// Limits bound connections, headers and deadlines (limits.go); the
	// zero value takes the defaults.
	Limits Limits
	// MaxResponse bounds the answer of one kms read request, all frames
	// together (0 = DefaultMaxResponse); a larger answer fails with 413.
	MaxResponse int
	// Cluster, if set, is this node's view of its cluster (cluster.go).
	Cluster *ClusterView
	// Verify, if set, verifies this node's ledger (GET /v1/ledger/verify).
	Verify func(context.Context) (*Verification, error)
	// LogTee, if set, is the fan-out of Logger, made by TeeLogger: the
	// log streams then carry the records of every logger teed with it.
	// Nil: Logger is teed here, and the streams carry the API's records.
	LogTee *LogTee
	// Restart, if set, restarts the node after POST /v1/debug/restart has
	// been answered; self is the request's ?self (only this node, not
	// its peers). Nil answers that route 503.
	Restart func(self bool)
	// DB, if set, serves /v1/db: backups (db.go).
	DB *DBConfig
}

// Server serves the kms API over HTTPS with client certificates.
type Server struct {
	h     *commands.Handler
	proj  *projections.Projection
	keys  *keys.Service // reads and crypto (projections/keys)
	cfg   Config
	log   *slog.Logger
	host  string
	start time.Time // when New ran: the node's up time

	health  hsmHealth
	prof    profiling        // debug.go
	logs    *logHub          // logtee.go
	metrics *metrics.Metrics // observe.go

	// streamsEnd is closed when a Serve of the server shuts down: the log
	// streams end then, instead of holding up the graceful shutdown.
	streamsEnd     chan struct{}
	streamsEndOnce sync.Once
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var hub *logHub // the log streams (logtee.go)
	if cfg.LogTee != nil {
		hub = cfg.LogTee.hub // Logger is already teed, with the rest of the process
	} else {
		var tee *LogTee
		log, tee = TeeLogger(log)
		hub = tee.hub
	}
	host, _ := os.Hostname()
	s := &Server{h: cfg.Handler, proj: cfg.Projection, keys: keys.New(cfg.Projection), cfg: cfg, log: log, host: host,
		start: time.Now(), logs: hub, health: hsmHealth{status: map[string]string{}}, streamsEnd: make(chan struct{})}
	s.metrics = metrics.New(s.snapshot)
	return s
}

// TLSConfig returns the server's TLS configuration: client certificates
// are requested but not chain-verified (the identity is the hash of the
// certificate's public key; the handshake proves possession), their
// validity dates are not enforced, and only HTTP/1.1 is offered, which
// the kms-go client serves about twice as fast as HTTP/2.
// TLS 1.2 and 1.3 only, and TLS 1.2 with ECDHE and AEAD suites only.
func (s *Server) TLSConfig() *tls.Config {
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: tls12Suites,
		Certificates: []tls.Certificate{s.cfg.Certificate},
		ClientAuth:   tls.RequestClientCert,
		NextProtos:   []string{"http/1.1"},
	}
	if pool := s.cfg.ClientCAs; pool != nil {
		c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyClientChain(raw, pool)
		}
	}
	return c
}

// Serve accepts HTTPS connections on ln until ctx ends, then shuts down
// gracefully. Connections beyond the limits are closed when accepted;
// the read and write deadlines of a request are its route's (routes.go),
// and the server's own (ReadTimeout, WriteTimeout) bound what no route
// serves (unknown paths).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	lim := s.cfg.Limits.withDefaults()
	srv := &http.Server{
		Handler:           s.routes(true), // WriteTimeout below is the write deadline of the longest routes
		ReadHeaderTimeout: lim.HeaderTimeout,
		ReadTimeout:       lim.HeaderTimeout + requestTimeout,
		WriteTimeout:      requestTimeout + writeGrace,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ConnContext:       connContext,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){}, // no HTTP/2
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	srv.RegisterOnShutdown(func() { s.streamsEndOnce.Do(func() { close(s.streamsEnd) }) })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(newConnLimiter(ln, lim, s.log), s.TLSConfig())) }()
	if len(s.cfg.HSMs) > 0 {
		interval := s.cfg.HSMCheckInterval
		if interval <= 0 {
			interval = hsmCheckInterval
		}
		go s.runHSMHealth(ctx, interval)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
			err = e
		}
		return err
	}
}

// handleVersionNoAuth serves GET /version: protobuf when the client asks
// for exactly application/octet-stream, JSON otherwise.
func (s *Server) handleVersionNoAuth(w http.ResponseWriter, r *http.Request, _ routeReq) {
	v := &wire.VersionResponse{Version: s.cfg.Version, Commit: s.cfg.Commit, APIVersion: "v1", Host: s.host}
	if r.Header.Get("Accept") == "application/octet-stream" {
		writeBody(w, "application/octet-stream", v.MarshalProto())
		return
	}
	b, _ := json.Marshal(v)
	writeBody(w, "application/json", b)
}

func (s *Server) handleLiveNoAuth(w http.ResponseWriter, r *http.Request, _ routeReq) {
	writeBody(w, "text/plain", nil)
}

// handleReadyNoAuth answers 200 once the projection has caught up with
// the ledger, 503 before. Anyone may ask, so the answer says no more
// than that ({"status":"ready"}); only to the root identity does it add
// the configured HSMs and their health (an HSM's error names endpoints
// and keys).
func (s *Server) handleReadyNoAuth(w http.ResponseWriter, r *http.Request, in routeReq) {
	ctx, cancel := context.WithTimeout(in.ctx, 5*time.Second)
	defer cancel()
	if err := s.proj.CatchUp(ctx); err != nil {
		s.log.Warn("not ready", "err", err)
		writeError(w, r, s.log, &statusError{http.StatusServiceUnavailable, "not ready"})
		return
	}
	if c := s.cfg.Cluster; c != nil && r.URL.Query().Has("write") && c.WriteReady != nil {
		// ?write: ready only when a write would be stored now.
		if err := c.WriteReady(ctx); err != nil {
			s.log.Warn("not ready for writes", "err", err)
			writeError(w, r, s.log, &statusError{http.StatusServiceUnavailable, "not ready for writes"})
			return
		}
	}
	if c := s.cfg.Cluster; c != nil && r.URL.Query().Has("replicas") && c.ReplicasCurrent != nil {
		// ?replicas: this node's stream replicas are current, so that the
		// cluster tolerates losing another node (a rolling restart waits
		// for it before restarting the next node).
		if err := c.ReplicasCurrent(ctx); err != nil {
			s.log.Warn("replicas not current", "err", err)
			writeError(w, r, s.log, &statusError{http.StatusServiceUnavailable, "replicas not current"})
			return
		}
	}
	// Ready means "serves crypto", which an HSM outage does not stop (the
	// REK is unsealed): the HSMs' health is reported, not gating.
	status := map[string]any{"status": "ready"}
	if len(s.cfg.HSMs) > 0 && s.isRoot(in.identity) {
		hs := map[string]string{}
		for _, c := range s.cfg.HSMs {
			hs[c.Name] = s.health.statusOf(c.Name)
		}
		status["hsm"] = hs
	}
	b, _ := json.Marshal(status)
	writeBody(w, "application/json", b)
}

// isRoot reports whether id is the root identity.
func (s *Server) isRoot(id string) bool {
	var ok bool
	s.proj.View(func(st *projections.State) { ok = id != "" && id == st.RootIdentity })
	return ok
}

// verifyClientChain checks that a presented client certificate chains to
// one of the client CAs, at a time inside the leaf's validity (expiry is
// deliberately not enforced). No certificate is fine here: routes that
// need one refuse the request.
func verifyClientChain(raw [][]byte, pool *x509.CertPool) error {
	if len(raw) == 0 {
		return nil
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return fmt.Errorf("api: client certificate: %w", err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	leaf := certs[0]
	_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
		CurrentTime: leaf.NotBefore.Add(time.Second), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return fmt.Errorf("api: client certificate not issued by a configured client CA: %w", err)
	}
	return nil
}

// writeBody writes a 200 response with an exact Content-Length (kms-go
// rejects responses without one) and no compression.
func writeBody(w http.ResponseWriter, contentType string, b []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}
