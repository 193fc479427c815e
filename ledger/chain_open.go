package ledger

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrReadOnly reports an append to a Store opened with Config.ReadOnly.
var ErrReadOnly = errors.New("ledger: store opened read-only")

// chains holds the hash chains of LEDGER and AUDIT and what checkpoints
// need (checkpoint.go).
type chains struct {
	dir      string // Config.Dir; the checkpoint witness lives here
	readOnly bool
	ledger   *chainHead
	audit    *chainHead

	auditBlocks *blockWatch // new AUDIT block files -> fsync of their directory

	appended chan struct{}  // an append happened (for the Checkpointer)
	last     lastCheckpoint // under ledger.mu
}

// checkBeforeStart checks, for a read-only Open, the message blocks of
// LEDGER and AUDIT before the server recovers them (see checkBlocks).
func checkBeforeStart(cfg Config) error {
	if !cfg.ReadOnly {
		return nil
	}
	for _, stream := range []string{ledgerStream, auditStream} {
		if err := checkBlocks(cfg.Dir, stream); err != nil {
			return err
		}
	}
	return nil
}

// openStreams creates or updates LEDGER, SECRETS and AUDIT (or, read-only,
// finds them) and loads the chain heads. A node of an embedded cluster
// starts its writer (cluster_writer.go) as soon as the streams exist:
// the other nodes' appends wait for the node that leads a stream, and
// that node's heads may take a while to load (a stream that still
// elects its leader); the writer loads a head itself before it appends.
func (s *Store) openStreams(ctx context.Context, cfg Config) (err error) {
	s.chains = &chains{dir: cfg.Dir, readOnly: cfg.ReadOnly, appended: make(chan struct{}, 1)}
	open := func(c jetstream.StreamConfig) (jetstream.Stream, error) {
		st, err := s.openStream(ctx, c, cfg.ReadOnly)
		if err != nil {
			return nil, fmt.Errorf("ledger: open: stream %s: %w", c.Name, err)
		}
		if s.clustered {
			return &leaderStream{Stream: st, nc: s.nc, name: c.Name, log: s.log}, nil
		}
		return st, nil
	}
	if s.ledger, err = open(ledgerConfig(s.replicas, s.dupWindow)); err != nil {
		return err
	}
	if s.secrets, err = open(secretsConfig(s.replicas)); err != nil {
		return err
	}
	if s.audit, err = open(auditConfig(s.replicas)); err != nil {
		return err
	}
	if !s.clustered {
		if s.chains.auditBlocks, err = newBlockWatch(cfg.Dir, auditStream, !cfg.NoSync && !cfg.ReadOnly, &s.fsyncLane); err != nil {
			return err
		}
	}
	s.chains.ledger = &chainHead{name: ledgerStream, stream: s.ledger, log: s.log, notify: s.chains.appended, clustered: s.clustered, linked: s.compress, resend: s.resendHorizon}
	s.chains.audit = &chainHead{name: auditStream, stream: s.audit, log: s.log, notify: s.chains.appended, clustered: s.clustered, linked: s.compress, resend: s.resendHorizon}
	if s.sole {
		s.chains.ledger.sole, s.chains.audit.sole = true, true
		s.chains.ledger.recent = newRecentWrites()
	}
	if cfg.ReadOnly {
		return nil
	}
	heads := []*chainHead{s.chains.ledger, s.chains.audit}
	for _, c := range heads {
		c.startGroups(s.js)
		c.markStale() // not loaded yet
	}
	if s.clustered && s.ns != nil {
		s.startWriter()
	}
	for _, c := range heads {
		c.mu.Lock()
		err := c.loadWait(ctx)
		c.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// openStream creates or updates a stream (or, read-only, finds it). A
// cluster node waits, until ctx ends, for the cluster to be able to do
// it: a new cluster has no meta leader until every node is up (the
// nodes' meta logs are empty, and the first election then counts every
// node's vote), an existing one until a majority is.
func (s *Store) openStream(ctx context.Context, c jetstream.StreamConfig, readOnly bool) (jetstream.Stream, error) {
	waited := time.Now()
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var st jetstream.Stream
		var err error
		if readOnly {
			st, err = s.js.Stream(actx, c.Name)
		} else {
			st, err = s.ensureStream(actx, c)
		}
		cancel()
		if err == nil || !s.clustered || ctx.Err() != nil {
			return st, err
		}
		if attempt%20 == 0 {
			s.log.Info("waiting for the cluster (a new one needs every node up, then a majority)", "stream", c.Name,
				"waited", time.Since(waited).Round(time.Second), "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (waited %s for the cluster)", err, time.Since(waited).Round(time.Second))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ensureStream creates stream c, or updates it if its configuration
// differs from c. An update that would change nothing is not sent: it
// costs a meta proposal at every start of every node, and it clears the
// preferred member of a new stream group, the one member that answers
// a stream info while the group has not elected its first leader (the
// others drop the request).
func (s *Store) ensureStream(ctx context.Context, c jetstream.StreamConfig) (jetstream.Stream, error) {
	st, err := s.js.Stream(ctx, c.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		// Another node's identical create may come first: that is no
		// error. A different stream of the same name is updated.
		st, err = s.js.CreateStream(ctx, c)
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return st, err
		}
	case err != nil:
		return nil, err
	case sameStreamConfig(st.CachedInfo().Config, c):
		return st, nil
	}
	return s.js.UpdateStream(ctx, c)
}

// sameStreamConfig reports whether the server's configuration cur of a
// stream is want, once what the server fills in itself is left aside:
// its metadata (API level, server version) and a duplicates window want
// leaves to the server's default. When in doubt it answers false, and
// the stream is updated.
func sameStreamConfig(cur, want jetstream.StreamConfig) bool {
	want.Metadata = cur.Metadata
	if want.Duplicates == 0 {
		want.Duplicates = cur.Duplicates
	}
	return reflect.DeepEqual(cur, want)
}

// publishLedger appends msg to LEDGER as the next link of its chain.
func (s *Store) publishLedger(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	if s.chains.readOnly {
		return nil, ErrReadOnly
	}
	return s.chains.ledger.publish(ctx, s.js, msg)
}

// ChainHead returns the last sequence of LEDGER (stream "LEDGER") or
// AUDIT ("AUDIT") and its chain value, as this Store appended them.
func (s *Store) ChainHead(stream string) (uint64, Sum, error) {
	switch stream {
	case ledgerStream:
		seq, sum := s.chains.ledger.head()
		return seq, sum, nil
	case auditStream:
		seq, sum := s.chains.audit.head()
		return seq, sum, nil
	}
	return 0, Sum{}, fmt.Errorf("ledger: chain head of %q: %w", stream, ErrInvalid)
}
