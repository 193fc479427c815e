package ledger

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of CheckpointConfig.
const (
	DefaultCheckpointEvents   = 1000
	DefaultCheckpointInterval = time.Minute
)

// witnessFile is the checkpoint witness under Config.Dir.
const witnessFile = "last-checkpoint.json"

// witness identifies the last checkpoint message: a LEDGER that no
// longer holds it was cut short.
type witness struct {
	Seq  uint64 `json:"seq"`
	Prev string `json:"prev"`
	Leaf string `json:"leaf"`
}

// lastCheckpoint is what the previous checkpoint covered.
type lastCheckpoint struct {
	known  bool
	ledger uint64 // sequence of the checkpoint event itself
	audit  uint64
}

// Checkpoint appends a signed checkpoint of both chains, unless nothing
// was appended since the last one (then it returns 0, nil). signer must
// be an Ed25519 private key. It returns the checkpoint's sequence.
func (s *Store) Checkpoint(ctx context.Context, signer crypto.Signer) (uint64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	if s.chains.readOnly {
		return 0, ErrReadOnly
	}
	// The AUDIT head first, without the LEDGER chain's mutex: in a cluster
	// it is a request to AUDIT's leader, which may be in an election, and
	// every append through this node waits while the mutex is held.
	aseq, asum, err := s.auditHead(ctx)
	if err != nil {
		return 0, err
	}
	l := s.chains.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.needsLoad() {
		if err := l.load(ctx); err != nil {
			return 0, err
		}
	}
	if err := s.loadLastCheckpoint(ctx); err != nil {
		return 0, err
	}
	last := &s.chains.last
	if last.known && last.ledger == l.seq && last.audit == aseq {
		return 0, nil
	}
	cp := &Checkpoint{Time: time.Now().UTC(), Streams: []CheckpointStream{
		{Stream: ledgerStream, Seq: l.seq, Chain: l.sum.String()},
		{Stream: auditStream, Seq: aseq, Chain: asum.String()},
	}}
	if err := cp.sign(signer); err != nil {
		return 0, err
	}
	want := l.seq + 1
	ev, err := checkpointEvent(cp, want)
	if err != nil {
		return 0, err
	}
	body, err := encodeEvent(ev)
	if err != nil {
		return 0, err
	}
	msg := newMsg(ev, body)
	msg.Header.Set(jetstream.MsgIDHeader, ev.CommandID)
	msg.Header.Set(jetstream.ExpectedStreamHeader, ledgerStream)
	ack, err := l.publishLocked(ctx, s.js, msg, false)
	if err != nil {
		return 0, fmt.Errorf("ledger: append checkpoint: %w", s.mapErr(err))
	}
	if ack.Duplicate || ack.Sequence != want {
		return 0, fmt.Errorf("ledger: checkpoint at %d answered with seq %d (duplicate %v)", want, ack.Sequence, ack.Duplicate)
	}
	*last = lastCheckpoint{known: true, ledger: ack.Sequence, audit: aseq}
	if err := s.ledgerBlocks.sync(); err != nil {
		return 0, fmt.Errorf("ledger: append checkpoint: %w", err)
	}
	raw := RawMessage{Seq: ack.Sequence, Subject: msg.Subject, Type: ev.Type, MsgID: ev.CommandID, Body: body}
	w := witness{Seq: ack.Sequence, Prev: msg.Header.Get(PrevHeader), Leaf: raw.Leaf().String()}
	if err := writeWitness(s.chains.dir, w); err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// auditHead is the AUDIT chain head to checkpoint: in a cluster, where
// another node may write AUDIT, as the stream's leader has it now.
func (s *Store) auditHead(ctx context.Context) (uint64, Sum, error) {
	a := s.chains.audit
	if !s.clustered {
		seq, sum := a.head()
		return seq, sum, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.load(ctx); err != nil {
		return 0, Sum{}, err
	}
	return a.seq, a.sum, nil
}

// loadLastCheckpoint finds out, once, whether the last LEDGER message is a
// checkpoint, so that a restart does not checkpoint an unchanged ledger.
// l.mu is held.
func (s *Store) loadLastCheckpoint(ctx context.Context) error {
	last := &s.chains.last
	if last.known || s.chains.ledger.seq == 0 {
		return nil
	}
	m, err := s.ledger.GetMsg(ctx, s.chains.ledger.seq)
	if err != nil {
		return fmt.Errorf("ledger: last checkpoint: %w", err)
	}
	raw := rawFrom(ledgerStream, m)
	if raw.Type != TypeCheckpoint {
		*last = lastCheckpoint{known: true}
		return nil
	}
	cp, err := parseCheckpoint(&raw)
	if err != nil {
		return fmt.Errorf("ledger: last checkpoint at %d: %w", raw.Seq, err)
	}
	*last = lastCheckpoint{known: true, ledger: raw.Seq, audit: cp.Streams[1].Seq}
	return nil
}

// writeWitness replaces <dir>/last-checkpoint.json durably (write, fsync,
// rename, fsync of the directory).
func writeWitness(dir string, w witness) error {
	b, err := json.Marshal(w)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, witnessFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("ledger: checkpoint witness: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("ledger: checkpoint witness: %w", err)
	}
	return nil
}

// readWitness reads the witness; ok is false if there is none.
func readWitness(dir string) (w witness, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, witnessFile))
	if errors.Is(err, os.ErrNotExist) {
		return w, false, nil
	}
	if err != nil {
		return w, false, fmt.Errorf("ledger: checkpoint witness: %w", err)
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return w, false, fmt.Errorf("%w: checkpoint witness: %w", ErrTampered, err)
	}
	return w, true, nil
}

// CheckpointConfig configures a Checkpointer.
type CheckpointConfig struct {
	Events   int           // checkpoint after this many new events (LEDGER + AUDIT); 0 = DefaultCheckpointEvents
	Interval time.Duration // and at least this often if anything is new; 0 = DefaultCheckpointInterval
	Logger   *slog.Logger  // nil = discard
}

// Checkpointer appends checkpoints in the background.
type Checkpointer struct {
	s      *Store
	signer crypto.Signer
	cfg    CheckpointConfig
	log    *slog.Logger
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	err    error
}

// StartCheckpoints appends a checkpoint whenever cfg.Events events were
// appended since the last one, and every cfg.Interval if anything was.
// Close it before the Store (and after the Auditor, so that the last
// audit records are covered).
func (s *Store) StartCheckpoints(signer crypto.Signer, cfg CheckpointConfig) *Checkpointer {
	if cfg.Events <= 0 {
		cfg.Events = DefaultCheckpointEvents
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultCheckpointInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Checkpointer{s: s, signer: signer, cfg: cfg, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *Checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.checkpoint()
		case <-c.s.chains.appended:
			if c.newEvents() >= uint64(c.cfg.Events) {
				c.checkpoint()
			}
		}
	}
}

// newEventsWait bounds newEvents' request for the last checkpoint, made
// with the LEDGER chain's mutex held.
const newEventsWait = 5 * time.Second

// newEvents counts the events appended since the last checkpoint.
//
// Only the node that checkpoints counts: elsewhere the count would take
// the LEDGER chain's mutex to ask the leader for the last checkpoint,
// which holds up this node's appends, and its taking over as writer,
// while the stream has no leader.
func (c *Checkpointer) newEvents() uint64 {
	if !c.s.IsLeader() {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), newEventsWait)
	defer cancel()
	l := c.s.chains.ledger
	l.mu.Lock()
	err := c.s.loadLastCheckpoint(ctx)
	last, seq := c.s.chains.last, l.seq
	l.mu.Unlock()
	if err != nil {
		c.log.Error("checkpoint", "err", err)
		return 0
	}
	aseq, _ := c.s.chains.audit.head()
	return (seq - last.ledger) + (aseq - last.audit)
}

func (c *Checkpointer) checkpoint() {
	if !c.s.IsLeader() {
		return // in a cluster, the node that writes LEDGER checkpoints
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seq, err := c.s.Checkpoint(ctx, c.signer)
	switch {
	case err != nil:
		c.log.Error("checkpoint failed", "err", err)
	case seq != 0:
		c.log.Debug("checkpoint", "seq", seq)
	}
}

// Close stops the Checkpointer and appends a last checkpoint if anything
// is new, so that a cleanly stopped ledger ends with a checkpoint.
func (c *Checkpointer) Close() error {
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		if !c.s.IsLeader() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, c.err = c.s.Checkpoint(ctx, c.signer)
	})
	return c.err
}

// SigningKeys returns the payloads of the system.signing_key.v1 events,
// oldest first. It reads the system subject, which also holds the
// checkpoints: its cost grows with the ledger (the server reads every
// block that holds one).
func (s *Store) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	return s.signingKeys(ctx, false)
}

// FirstSigningKey returns the payload of the first system.signing_key.v1
// event, or nil if there is none. It stops there: at the start of the
// ledger, whatever its length.
func (s *Store) FirstSigningKey(ctx context.Context) (*SigningKey, error) {
	keys, err := s.signingKeys(ctx, true)
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	return &keys[0], nil
}

func (s *Store) signingKeys(ctx context.Context, first bool) ([]SigningKey, error) {
	last, err := s.LastSeq(ctx, SystemSubject())
	if err != nil || last == 0 {
		return nil, err
	}
	r := &stallReader{s: s, st: s.ledger, cfg: jetstream.OrderedConsumerConfig{FilterSubjects: []string{SystemSubject()}},
		batch: replayBatch, stall: s.replayStall, what: "signing keys"}
	var keys []SigningKey
	_, err = s.readEvents(ctx, r, 1, last, func(_ jetstream.Msg, ev Event) error {
		if ev.Type != TypeSigningKey {
			return nil
		}
		var k SigningKey
		if err := json.Unmarshal(ev.Payload, &k); err != nil {
			return fmt.Errorf("%w: %s at seq %d: %w", ErrMalformed, ev.Type, ev.Seq, err)
		}
		keys = append(keys, k)
		if first {
			return errStopRead
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}
