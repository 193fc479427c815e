package ledger

// Restore: writing a backup's messages back into an empty Store, up to a
// point in time if asked, and the messages after that point into a rest
// file (RestFormat) so that nothing is lost.

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RestoreOptions configures Restore. The zero value restores everything.
type RestoreOptions struct {
	// UntilSeq, if not 0, restores LEDGER only up to this sequence.
	UntilSeq uint64
	// Until, if set, restores LEDGER only up to the last message stored
	// at or before this time.
	Until time.Time
	// Rest receives, in RestFormat, every message left out by the cut.
	// It is required when the cut leaves something out.
	Rest io.Writer
	// Progress, if set, is told how many messages were handled.
	Progress Progress
}

// RestoreReport says what Restore wrote.
type RestoreReport struct {
	Restored BackupStats // written into the Store
	Rest     BackupStats // written into RestoreOptions.Rest
	// LedgerLast and AuditLast are the heads of the restored streams;
	// LedgerTime is when the last restored LEDGER message was first
	// stored.
	LedgerLast, AuditLast uint64
	LedgerTime            time.Time
}

// secretRefField finds the secret references a LEDGER event records
// (key_events.go, json "secret_ref").
var secretRefField = regexp.MustCompile(`"secret_ref":"([^"\\]+)"`)

// Restore writes the messages of b into s, which must be empty (a Store
// just opened on a new directory): LEDGER and AUDIT with the sequences,
// subjects, types, message ids, Prev values and bodies they had (a single
// node stores type and Prev in a link frame), so that their hash chains
// and checkpoints verify as before; SECRETS with the subjects and bodies they
// had. With a cut (opts.UntilSeq, opts.Until), LEDGER stops at the cut;
// AUDIT at the last message stored by then, or later if a restored
// checkpoint signs more; SECRETS keeps the material the restored events
// refer to. The rest goes to opts.Rest. The checkpoint witness is written
// for the last restored checkpoint. Call b.Verify first: Restore checks
// the structure of b again, not the chains.
func (s *Store) Restore(ctx context.Context, b *BackupFile, opts RestoreOptions) (*RestoreReport, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	if s.chains.readOnly {
		return nil, ErrReadOnly
	}
	if b.Header.Format != BackupFormat {
		return nil, fmt.Errorf("%w: only a whole backup can be restored", ErrBadBackup)
	}
	for _, st := range []jetstream.Stream{s.ledger, s.audit, s.secrets} {
		info, err := st.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("ledger: restore: %w", err)
		}
		if info.State.LastSeq != 0 {
			return nil, fmt.Errorf("ledger: restore: stream %s is not empty: restore into a new data directory: %w",
				info.Config.Name, ErrInvalid)
		}
	}
	for _, c := range []*chainHead{s.chains.ledger, s.chains.audit} {
		c.mu.Lock()
		c.markStale() // written behind the chains until the reload below
		c.mu.Unlock()
	}
	r := &restorer{s: s, opts: opts, hdr: b.Header, refs: map[string]bool{}, rep: &RestoreReport{},
		total: b.Header.Ledger + b.Header.Audit}
	if _, err := b.Scan(func(m *BackupMsg) error { return r.add(ctx, m) }); err != nil {
		return r.rep, err
	}
	if err := r.finish(); err != nil {
		return r.rep, err
	}
	for _, c := range []*chainHead{s.chains.ledger, s.chains.audit} {
		c.mu.Lock()
		err := c.load(ctx)
		c.mu.Unlock()
		if err != nil {
			return r.rep, err
		}
	}
	s.chains.ledger.mu.Lock()
	s.chains.last = lastCheckpoint{}
	s.chains.ledger.mu.Unlock()
	return r.rep, nil
}

// restorer is the state of one Restore.
type restorer struct {
	s    *Store
	opts RestoreOptions
	hdr  BackupHeader
	rep  *RestoreReport

	cutLedger bool   // a LEDGER message was left out: the rest of LEDGER is too
	cutAudit  bool   // same for AUDIT
	signedAud uint64 // the highest AUDIT sequence a restored checkpoint signs
	refs      map[string]bool
	witness   *witness // the last restored checkpoint
	rest      *backupWriter
	done      uint64
	total     uint64
}

func (r *restorer) cut() bool { return r.opts.UntilSeq != 0 || !r.opts.Until.IsZero() }

// add restores m or sets it aside.
func (r *restorer) add(ctx context.Context, m *BackupMsg) error {
	r.done++
	if p := r.opts.Progress; p != nil && (r.done%256 == 0) {
		p(min(r.done, r.total), r.total)
	}
	switch m.Stream {
	case ledgerStream:
		if !r.cutLedger && (r.opts.UntilSeq != 0 && m.Seq > r.opts.UntilSeq || !r.opts.Until.IsZero() && m.Time.After(r.opts.Until)) {
			r.cutLedger = true
		}
		if r.cutLedger {
			return r.setAside(m)
		}
		if err := r.publish(ctx, r.s.ledger, m); err != nil {
			return err
		}
		r.rep.Restored.Ledger++
		r.rep.LedgerLast, r.rep.LedgerTime = m.Seq, m.Time
		if r.cut() {
			body, err := eventJSON(m.Body, m.Subject)
			if err != nil {
				return fmt.Errorf("%w: LEDGER seq %d: %w", ErrMalformed, m.Seq, err)
			}
			for _, sm := range secretRefField.FindAllSubmatch(body, -1) {
				r.refs[secretsPrefix+string(sm[1])] = true
			}
		}
		if m.Type == TypeCheckpoint {
			raw := m.raw()
			cp, err := parseCheckpoint(&raw)
			if err != nil {
				return &TamperError{Stream: ledgerStream, Seq: m.Seq, Reason: "bad checkpoint: " + err.Error()}
			}
			r.signedAud = max(r.signedAud, cp.Streams[1].Seq)
			r.witness = &witness{Seq: m.Seq, Prev: m.Prev, Leaf: raw.Leaf().String()}
		}
	case auditStream:
		cutTime := r.opts.Until
		if cutTime.IsZero() {
			cutTime = r.rep.LedgerTime
		}
		if !r.cutAudit && (r.cutLedger || !r.opts.Until.IsZero()) && m.Seq > r.signedAud && m.Time.After(cutTime) {
			r.cutAudit = true
		}
		if r.cutAudit {
			return r.setAside(m)
		}
		if err := r.publish(ctx, r.s.audit, m); err != nil {
			return err
		}
		r.rep.Restored.Audit++
		r.rep.AuditLast = m.Seq
	default:
		if r.cut() && !r.refs[m.Subject] {
			return r.setAside(m)
		}
		if err := r.publishSecret(ctx, m); err != nil {
			return err
		}
		r.rep.Restored.Secrets++
	}
	return nil
}

// publish appends m to a chained stream at its own sequence.
func (r *restorer) publish(ctx context.Context, st jetstream.Stream, m *BackupMsg) error {
	msg := nats.NewMsg(m.Subject)
	msg.Data = m.Body
	for k, v := range map[string]string{TypeHeader: m.Type, nats.MsgIdHdr: m.MsgID, PrevHeader: m.Prev} {
		if v != "" {
			msg.Header.Set(k, v)
		}
	}
	if prev, ok := parseSum(m.Prev); ok && r.s.compress {
		msg = linkMsg(msg, prev) // as the node would have stored it
	}
	ack, err := r.s.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(m.Stream), jetstream.WithExpectLastSequence(m.Seq-1))
	if err != nil {
		return fmt.Errorf("ledger: restore %s seq %d: %w", m.Stream, m.Seq, r.s.mapErr(err))
	}
	if ack.Duplicate {
		return fmt.Errorf("ledger: restore %s seq %d: its message id %q repeats that of an earlier message within the "+
			"stream's duplicate window, so it cannot be stored again: %w", m.Stream, m.Seq, m.MsgID, ErrInvalid)
	}
	if ack.Sequence != m.Seq {
		return fmt.Errorf("ledger: restore %s seq %d: stored at seq %d", m.Stream, m.Seq, ack.Sequence)
	}
	return r.syncBlocks(m.Stream)
}

func (r *restorer) syncBlocks(stream string) error {
	var w *blockWatch
	switch stream {
	case ledgerStream:
		w = r.s.ledgerBlocks
	case auditStream:
		w = r.s.chains.auditBlocks
	default:
		w = r.s.secretsBlocks
	}
	if w == nil {
		return nil
	}
	return w.sync()
}

// publishSecret stores a SECRETS message under its subject.
func (r *restorer) publishSecret(ctx context.Context, m *BackupMsg) error {
	msg := nats.NewMsg(m.Subject)
	msg.Data = m.Body
	_, err := r.s.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(secretsStream), jetstream.WithExpectLastSequencePerSubject(0))
	if err != nil {
		return fmt.Errorf("ledger: restore secret %s: %w", strings.TrimPrefix(m.Subject, secretsPrefix), r.s.mapErr(err))
	}
	return r.syncBlocks(secretsStream)
}

// setAside writes m to the rest file.
func (r *restorer) setAside(m *BackupMsg) error {
	if r.opts.Rest == nil {
		return fmt.Errorf("ledger: restore: the cut leaves %s seq %d out, and there is no rest file: %w", m.Stream, m.Seq, ErrInvalid)
	}
	if r.rest == nil {
		r.rest = newBackupWriter(r.opts.Rest)
		hdr := BackupHeader{Kind: lineHeader, Format: RestFormat, CreatedAt: time.Now().UTC(),
			Ledger: r.hdr.Ledger, Audit: r.hdr.Audit, LedgerChain: r.hdr.LedgerChain, AuditChain: r.hdr.AuditChain}
		if err := r.rest.line(hdr); err != nil {
			return err
		}
	}
	switch m.Stream {
	case ledgerStream:
		r.rep.Rest.Ledger++
	case auditStream:
		r.rep.Rest.Audit++
	default:
		r.rep.Rest.Secrets++
	}
	return r.rest.line(m)
}

// finish ends the rest file and writes the checkpoint witness.
func (r *restorer) finish() error {
	if p := r.opts.Progress; p != nil {
		p(r.total, r.total)
	}
	if r.rest != nil {
		e := backupEnd{Kind: lineEnd, Ledger: r.rep.Rest.Ledger, Audit: r.rep.Rest.Audit, Secrets: r.rep.Rest.Secrets}
		if err := r.rest.line(e); err != nil {
			return err
		}
		if err := r.rest.close(); err != nil {
			return err
		}
	}
	if r.witness != nil {
		return writeWitness(r.s.chains.dir, *r.witness)
	}
	return nil
}

// String describes a cut for messages: "seq N" or a time.
func (o RestoreOptions) String() string {
	var parts []string
	if o.UntilSeq != 0 {
		parts = append(parts, "seq "+strconv.FormatUint(o.UntilSeq, 10))
	}
	if !o.Until.IsZero() {
		parts = append(parts, o.Until.UTC().Format(time.RFC3339))
	}
	if len(parts) == 0 {
		return "the end"
	}
	return strings.Join(parts, " and ")
}
