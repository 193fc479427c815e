package ledger

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// VerifyOptions configures Verify and VerifyExport.
type VerifyOptions struct {
	// From is the first LEDGER sequence to check (0 or 1: everything).
	// The chain value before it is taken from its Prev header, and is
	// only as good as the first checkpoint after it, which checks it.
	// AUDIT is then checked from the first sequence that checkpoint
	// covers.
	From uint64
	// Keys are the trusted checkpoint public keys by KeyID. A checkpoint
	// signed by any other key fails verification.
	Keys map[string]ed25519.PublicKey
}

// VerifyReport is what a verification covered.
type VerifyReport struct {
	Ledger, Audit StreamReport
	Checkpoints   int      // checkpoints whose signature and chain values verified
	SigningKeys   []string // key ids of the system.signing_key.v1 events seen
	Witness       uint64   // LEDGER sequence of the witness checkpoint; 0 if none
}

// StreamReport is the verification of one stream.
type StreamReport struct {
	Stream string
	From   uint64 // first sequence checked
	Last   uint64 // last sequence checked (the stream's head)
	// SignedThrough is the last sequence covered by a verified
	// checkpoint. Messages after it are chained but not signed: they
	// are protected against accidents, not against someone who can
	// rewrite the data directory.
	SignedThrough uint64
}

// Verify recomputes the hash chains of LEDGER and AUDIT, checks every
// Prev header, every checkpoint (signature by a trusted key, chain values)
// and the checkpoint witness. It returns an error wrapping ErrTampered
// (a *TamperError naming the first bad sequence) if anything is wrong,
// including a message the store cannot read. Run it on a Store opened
// with Config.ReadOnly on a stopped server's directory, or on a live
// Store (it reads up to the heads it finds at the start).
func (s *Store) Verify(ctx context.Context, opts VerifyOptions) (*VerifyReport, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	rep := &VerifyReport{Ledger: StreamReport{Stream: ledgerStream}, Audit: StreamReport{Stream: auditStream}}
	// The witness first: it is written after its checkpoint is stored, so
	// on a live Store it never points past the heads read next.
	w, hasWitness, err := readWitness(s.chains.dir)
	if err != nil {
		return rep, err
	}
	lLast, err := streamLast(ctx, s.ledger)
	if err != nil {
		return rep, err
	}
	aLast, err := streamLast(ctx, s.audit)
	if err != nil {
		return rep, err
	}
	if opts.From > max(lLast, 1) {
		return rep, fmt.Errorf("ledger: verify from seq %d: LEDGER ends at %d: %w", opts.From, lLast, ErrInvalid)
	}
	v := newVerifier(opts, rep)
	if from := max(opts.From, 1); from > 1 {
		m, err := s.ledger.GetMsg(ctx, from)
		if err != nil {
			return rep, &TamperError{Stream: ledgerStream, Seq: from, Reason: "unreadable", Err: err}
		}
		if err := v.ledger.startAt(from, rawFrom(ledgerStream, m).Prev); err != nil {
			return rep, err
		}
	}
	rep.Ledger.From, rep.Ledger.Last = v.ledger.seq+1, lLast
	witnessSeen := false
	err = scanStream(ctx, s.ledger, ledgerStream, v.ledger.seq+1, lLast, func(m RawMessage) error {
		if err := v.addLedger(&m); err != nil {
			return err
		}
		if hasWitness && m.Seq == w.Seq {
			if m.Prev != w.Prev || m.Leaf().String() != w.Leaf {
				return &TamperError{Stream: ledgerStream, Seq: m.Seq, Reason: "differs from the checkpoint witness " + witnessFile}
			}
			witnessSeen = true
		}
		return nil
	})
	if err != nil {
		return rep, unreadable(err)
	}
	if err := v.finishLedger(); err != nil {
		return rep, err
	}
	switch {
	case hasWitness && !witnessSeen && w.Seq > lLast:
		return rep, &TamperError{Stream: ledgerStream, Seq: lLast + 1,
			Reason: fmt.Sprintf("LEDGER ends at seq %d, but the last checkpoint (%s) is at seq %d: cut short", lLast, witnessFile, w.Seq)}
	case hasWitness:
		rep.Witness = w.Seq
	case rep.Checkpoints > 0 && !s.clustered:
		// A cluster node keeps the witness of the checkpoints it signed
		// only: the others were signed by the LEDGER leader of the day,
		// and a cut-short stream is refused by the majority's Raft log.
		return rep, &TamperError{Stream: ledgerStream, Seq: lLast + 1,
			Reason: "the ledger has checkpoints but the witness " + witnessFile + " is missing"}
	}

	return rep, s.verifyAudit(ctx, v, rep, aLast)
}

// verifyAudit checks the AUDIT chain after the ledger, from the first
// record the checkpoints do not cover (or the start) to aLast.
func (s *Store) verifyAudit(ctx context.Context, v *verifier, rep *VerifyReport, aLast uint64) error {
	aFrom := v.auditFrom()
	if aFrom > 1 && aFrom <= aLast {
		m, err := s.audit.GetMsg(ctx, aFrom)
		if err != nil {
			return &TamperError{Stream: auditStream, Seq: aFrom, Reason: "unreadable", Err: err}
		}
		if err := v.audit.startAt(aFrom, rawFrom(auditStream, m).Prev); err != nil {
			return err
		}
	}
	if err := v.claimAudit(); err != nil {
		return err
	}
	rep.Audit.From, rep.Audit.Last = v.audit.seq+1, aLast
	err := scanStream(ctx, s.audit, auditStream, v.audit.seq+1, aLast, func(m RawMessage) error {
		return v.audit.add(m.Seq, m.Prev, m.Leaf())
	})
	if err != nil {
		return unreadable(err)
	}
	return v.finishAudit(aLast)
}

// streamLast returns the last sequence of a stream.
func streamLast(ctx context.Context, st jetstream.Stream) (uint64, error) {
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("ledger: verify: %w", err)
	}
	return info.State.LastSeq, nil
}

// unreadable turns a read error into a TamperError.
func unreadable(err error) error {
	var re *ReadError
	if errors.As(err, &re) {
		return &TamperError{Stream: re.Stream, Seq: re.Seq, Reason: "unreadable: the store refuses it", Err: re.Err}
	}
	return err
}

// startAt begins the checker at from with the Prev of that message (its
// header or its link frame).
func (c *linkChecker) startAt(from uint64, prevHex string) error {
	prev, ok := parseSum(prevHex)
	if !ok {
		return c.bad(from, "cannot start here: no valid %s header", PrevHeader)
	}
	c.start(from-1, prev)
	return nil
}

// verifier checks LEDGER, then AUDIT, with the checkpoints found in
// LEDGER; it serves Verify and VerifyExport.
type verifier struct {
	opts   VerifyOptions
	rep    *VerifyReport
	ledger *linkChecker
	audit  *linkChecker
	claims []CheckpointStream // AUDIT heads signed by checkpoints, in order
}

func newVerifier(opts VerifyOptions, rep *VerifyReport) *verifier {
	return &verifier{opts: opts, rep: rep, ledger: newLinkChecker(ledgerStream), audit: newLinkChecker(auditStream)}
}

// addLedger checks one LEDGER message, and the checkpoint it may be.
func (v *verifier) addLedger(m *RawMessage) error {
	if err := v.ledger.add(m.Seq, m.Prev, m.Leaf()); err != nil {
		return err
	}
	switch m.Type {
	case TypeSigningKey:
		var ev Event
		var k SigningKey
		if body, err := m.Plain(); err == nil && json.Unmarshal(body, &ev) == nil && json.Unmarshal(ev.Payload, &k) == nil {
			v.rep.SigningKeys = append(v.rep.SigningKeys, k.KeyID)
		}
	case TypeCheckpoint:
		return v.checkpoint(m)
	}
	return nil
}

// checkpoint checks a checkpoint message at m.Seq: form, signature, and
// the LEDGER chain value it signs (the sequence just before it).
func (v *verifier) checkpoint(m *RawMessage) error {
	bad := func(format string, args ...any) error {
		return &TamperError{Stream: ledgerStream, Seq: m.Seq, Reason: fmt.Sprintf(format, args...)}
	}
	cp, err := parseCheckpoint(m)
	if err != nil {
		return bad("bad checkpoint: %v", err)
	}
	if err := cp.Verify(v.opts.Keys); err != nil {
		return bad("%v", err)
	}
	if cp.Streams[0].Seq != m.Seq-1 {
		return bad("checkpoint signs LEDGER seq %d, want %d", cp.Streams[0].Seq, m.Seq-1)
	}
	if err := v.ledger.checkPrevious(cp.Streams[0].Chain); err != nil {
		return err
	}
	if n := len(v.claims); n > 0 && cp.Streams[1].Seq < v.claims[n-1].Seq {
		return bad("checkpoint signs AUDIT seq %d, below an earlier checkpoint's %d", cp.Streams[1].Seq, v.claims[n-1].Seq)
	}
	v.claims = append(v.claims, cp.Streams[1])
	v.rep.Checkpoints++
	v.rep.Ledger.SignedThrough = m.Seq // its own bytes are signed or derived
	return nil
}

func (v *verifier) finishLedger() error {
	return v.ledger.finish()
}

// auditFrom is where AUDIT checking starts: 1, or with VerifyOptions.From
// the first AUDIT sequence the first checked checkpoint signs.
func (v *verifier) auditFrom() uint64 {
	if v.opts.From <= 1 || len(v.claims) == 0 {
		return 1
	}
	return max(v.claims[0].Seq, 1)
}

// claimAudit hands the signed AUDIT heads to the AUDIT checker.
func (v *verifier) claimAudit() error {
	for _, c := range v.claims {
		if c.Seq <= v.audit.seq {
			continue // before the start (VerifyOptions.From)
		}
		if err := v.audit.expect(c.Seq, c.Chain); err != nil {
			return err
		}
	}
	return nil
}

// finishAudit checks that AUDIT reaches every signed head.
func (v *verifier) finishAudit(last uint64) error {
	if err := v.audit.finish(); err != nil {
		return err
	}
	if m := v.audit.maxClaim(); m > last {
		return &TamperError{Stream: auditStream, Seq: last + 1,
			Reason: fmt.Sprintf("AUDIT ends at seq %d, but a checkpoint signs seq %d: cut short", last, m)}
	}
	v.rep.Audit.SignedThrough = v.audit.signedThrough
	return nil
}
