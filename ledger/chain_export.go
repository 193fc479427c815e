package ledger

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// ExportFormat names the export format in its header line.
const ExportFormat = "kmsledger-audit-export/v1"

// ExportFilter selects what an export discloses. Zero values select
// everything.
type ExportFilter struct {
	Since   time.Time `json:"since,omitzero"`    // events and records at or after
	Until   time.Time `json:"until,omitzero"`    // events and records before
	Enclave string    `json:"enclave,omitempty"` // only this enclave
}

// ExportLine is one line of an export (JSON lines). The first line is the
// header (Kind "header"); then every LEDGER message from seq 1, in order,
// then every AUDIT message from seq 1:
//
//   - "event": a LEDGER message in full (Body, base64);
//   - "audit": an AUDIT batch with some records disclosed (Lines: a record
//     as it is stored, or the SHA-256 of a record's line that is not);
//   - "leaf": a message not disclosed, only its leaf_n (chain.go).
//
// Every message line has its Prev header and the chain value after it.
// Checkpoints are always disclosed; events that hold sealed material
// (system.initialized, HSM and signing key events) never are.
type ExportLine struct {
	Kind    string            `json:"kind"`
	Stream  string            `json:"stream,omitempty"`
	Seq     uint64            `json:"seq,omitempty"`
	Subject string            `json:"subject,omitempty"`
	Type    string            `json:"type,omitempty"`
	MsgID   string            `json:"msg_id,omitempty"`
	Prev    string            `json:"prev,omitempty"`
	Body    []byte            `json:"body,omitempty"`
	Lines   []ExportAuditLine `json:"lines,omitempty"`
	Leaf    string            `json:"leaf,omitempty"`
	Chain   string            `json:"chain,omitempty"`

	// Header only.
	Format     string        `json:"format,omitempty"`
	LedgerLast uint64        `json:"ledger_last,omitempty"`
	AuditLast  uint64        `json:"audit_last,omitempty"`
	Filter     *ExportFilter `json:"filter,omitempty"`
	ExportedAt time.Time     `json:"exported_at,omitzero"`
}

// ExportAuditLine is one record of an exported AUDIT batch: Record as
// stored (its line is Record followed by '\n'), or the hex SHA-256 of the
// line of a record that is not disclosed.
type ExportAuditLine struct {
	Record json.RawMessage `json:"record,omitempty"`
	SHA256 string          `json:"sha256,omitempty"`
}

// holdsSealed reports whether events of type t hold sealed material; they
// are exported as leaves only.
func holdsSealed(t string) bool {
	switch t {
	case TypeSystemInitialized, TypeSigningKey, TypeHSMAdded, TypeHSMRemoved:
		return true
	}
	return false
}

// Export writes LEDGER and AUDIT, up to their heads when called, as JSON
// lines that VerifyExport checks without the data directory or the HSM.
// It returns the number of LEDGER events and audit records disclosed.
func (s *Store) Export(ctx context.Context, w io.Writer, f ExportFilter) (events, records int, err error) {
	if s.isClosed() {
		return 0, 0, ErrClosed
	}
	lLast, err := streamLast(ctx, s.ledger)
	if err != nil {
		return 0, 0, err
	}
	aLast, err := streamLast(ctx, s.audit)
	if err != nil {
		return 0, 0, err
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	hdr := ExportLine{Kind: "header", Format: ExportFormat, LedgerLast: lLast, AuditLast: aLast, ExportedAt: time.Now().UTC()}
	if f != (ExportFilter{}) {
		hdr.Filter = &f
	}
	if err := enc.Encode(hdr); err != nil {
		return 0, 0, err
	}
	var sum Sum
	emit := func(l ExportLine, leaf Sum) error {
		sum = chainNext(sum, leaf)
		l.Chain = sum.String()
		return enc.Encode(l)
	}
	err = scanStream(ctx, s.ledger, ledgerStream, 1, lLast, func(m RawMessage) error {
		body, err := m.Plain() // an event's JSON, however it is stored
		leaf := m.leafOver(body, err)
		if err != nil || !f.discloses(&m, body) {
			return emit(leafLine(&m, leaf), leaf)
		}
		events++
		return emit(ExportLine{Kind: "event", Stream: m.Stream, Seq: m.Seq, Subject: m.Subject, Type: m.Type, MsgID: m.MsgID,
			Prev: m.Prev, Body: body}, leaf)
	})
	if err != nil {
		return events, records, err
	}
	sum = Sum{}
	err = scanStream(ctx, s.audit, auditStream, 1, aLast, func(m RawMessage) error {
		body, err := m.Plain() // decompressed once, for the leaf and the lines
		if err != nil {
			return err
		}
		leaf := m.leafOver(body, nil)
		lines, n := f.auditLines(body)
		if n == 0 {
			return emit(leafLine(&m, leaf), leaf)
		}
		records += n
		return emit(ExportLine{Kind: "audit", Stream: m.Stream, Seq: m.Seq, Subject: m.Subject, Type: m.Type, MsgID: m.MsgID,
			Prev: m.Prev, Lines: lines}, leaf)
	})
	if err != nil {
		return events, records, err
	}
	return events, records, bw.Flush()
}

func leafLine(m *RawMessage, leaf Sum) ExportLine {
	return ExportLine{Kind: "leaf", Stream: m.Stream, Seq: m.Seq, Prev: m.Prev, Leaf: leaf.String()}
}

// discloses reports whether a LEDGER message, whose JSON is body, is
// exported in full.
func (f ExportFilter) discloses(m *RawMessage, body []byte) bool {
	if m.Type == TypeCheckpoint {
		return true
	}
	if holdsSealed(m.Type) {
		return false
	}
	var ev Event
	if json.Unmarshal(body, &ev) != nil {
		return false
	}
	return f.match(ev.Time, ev.Enclave == f.Enclave || ev.Aggregate == EnclaveSubject(f.Enclave))
}

func (f ExportFilter) match(t time.Time, enclave bool) bool {
	return (f.Enclave == "" || enclave) && (f.Since.IsZero() || !t.Before(f.Since)) && (f.Until.IsZero() || t.Before(f.Until))
}

// auditLines splits an AUDIT body into disclosed records and digests; n
// is the number disclosed. Only a line that is a compact JSON record
// ending in '\n' can be disclosed (its Record must hash back to it).
func (f ExportFilter) auditLines(body []byte) (lines []ExportAuditLine, n int) {
	eachLine(body, func(line []byte) error {
		rec, ok := bytes.CutSuffix(line, []byte("\n"))
		var r AuditRecord
		var buf bytes.Buffer
		if ok && json.Unmarshal(rec, &r) == nil && json.Compact(&buf, rec) == nil && bytes.Equal(buf.Bytes(), rec) &&
			f.match(r.Time, r.Enclave == f.Enclave) {
			lines = append(lines, ExportAuditLine{Record: rec})
			n++
			return nil
		}
		d := sha256.Sum256(line)
		lines = append(lines, ExportAuditLine{SHA256: hex.EncodeToString(d[:])})
		return nil
	})
	return lines, n
}

// maxExportLine bounds one line of an export (an AUDIT message is at
// most 1 MiB; base64 and JSON escaping add less than half).
const maxExportLine = 4 << 20

// VerifyExport checks an export made by Export: the chains of both
// streams over every line (disclosed messages are hashed, leaves taken as
// given), every Prev header and chain value, every checkpoint's signature
// with opts.Keys, and that the export reaches the heads its header names.
// opts.From is ignored: an export always starts at seq 1. It returns an
// error wrapping ErrTampered naming the first bad sequence.
//
// A filtered export proves that the disclosed events and records are, in
// the positions shown, part of the history the checkpoints sign. It says
// nothing about what the leaves hide, and, like any export, nothing about
// events after the last checkpoint beyond their chain.
func VerifyExport(r io.Reader, opts VerifyOptions) (*VerifyReport, error) {
	rep := &VerifyReport{Ledger: StreamReport{Stream: ledgerStream, From: 1}, Audit: StreamReport{Stream: auditStream, From: 1}}
	v := newVerifier(VerifyOptions{Keys: opts.Keys}, rep)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxExportLine)
	var hdr ExportLine
	if !sc.Scan() || json.Unmarshal(sc.Bytes(), &hdr) != nil || hdr.Kind != "header" || hdr.Format != ExportFormat {
		return rep, fmt.Errorf("%w: not a %s export (bad header line)", ErrInvalid, ExportFormat)
	}
	inAudit := false
	for sc.Scan() {
		var l ExportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return rep, fmt.Errorf("%w: export line: %w", ErrInvalid, err)
		}
		switch {
		case l.Stream == auditStream && !inAudit:
			inAudit = true
			if err := v.endExportedLedger(hdr.LedgerLast); err != nil {
				return rep, err
			}
		case l.Stream == ledgerStream && inAudit, l.Stream != ledgerStream && l.Stream != auditStream:
			return rep, fmt.Errorf("%w: export line for %q out of place", ErrInvalid, l.Stream)
		}
		if err := v.addExported(&l); err != nil {
			return rep, err
		}
	}
	if err := sc.Err(); err != nil {
		return rep, fmt.Errorf("ledger: read export: %w", err)
	}
	if !inAudit {
		if err := v.endExportedLedger(hdr.LedgerLast); err != nil {
			return rep, err
		}
	}
	if v.audit.seq != hdr.AuditLast {
		return rep, &TamperError{Stream: auditStream, Seq: v.audit.seq + 1,
			Reason: fmt.Sprintf("export ends at seq %d, its header says %d", v.audit.seq, hdr.AuditLast)}
	}
	rep.Audit.Last = v.audit.seq
	return rep, v.finishAudit(v.audit.seq)
}

// endExportedLedger closes the LEDGER part of an export.
func (v *verifier) endExportedLedger(last uint64) error {
	if err := v.finishLedger(); err != nil {
		return err
	}
	if v.ledger.seq != last {
		return &TamperError{Stream: ledgerStream, Seq: v.ledger.seq + 1,
			Reason: fmt.Sprintf("export ends at seq %d, its header says %d", v.ledger.seq, last)}
	}
	v.rep.Ledger.Last = last
	return v.claimAudit()
}

// addExported checks one message line of an export.
func (v *verifier) addExported(l *ExportLine) error {
	c := v.ledger
	if l.Stream == auditStream {
		c = v.audit
	}
	bad := func(reason string) error { return &TamperError{Stream: l.Stream, Seq: l.Seq, Reason: reason} }
	var err error
	switch l.Kind {
	case "event":
		m := RawMessage{Stream: l.Stream, Seq: l.Seq, Subject: l.Subject, Type: l.Type, MsgID: l.MsgID, Prev: l.Prev, Body: l.Body}
		if l.Stream == ledgerStream {
			err = v.addLedger(&m)
		} else {
			err = c.add(m.Seq, m.Prev, m.Leaf())
		}
	case "audit":
		digest, derr := exportedDigest(l.Lines)
		if derr != nil {
			return bad(derr.Error())
		}
		err = c.add(l.Seq, l.Prev, leafHash(l.Seq, l.Subject, l.Type, l.MsgID, digest))
	case "leaf":
		leaf, ok := parseSum(l.Leaf)
		if !ok {
			return bad("leaf is not 64 hex digits")
		}
		err = c.add(l.Seq, l.Prev, leaf)
	default:
		return bad(fmt.Sprintf("unknown line kind %q", l.Kind))
	}
	if err != nil {
		return err
	}
	if c.sum.String() != l.Chain {
		return bad("the chain value in the export is not the recomputed one")
	}
	return nil
}

// exportedDigest is the body digest of an exported AUDIT batch.
func exportedDigest(lines []ExportAuditLine) (Sum, error) {
	outer := sha256.New()
	for _, l := range lines {
		switch {
		case l.Record != nil && l.SHA256 == "":
			d := sha256.Sum256(append(append([]byte(nil), l.Record...), '\n'))
			outer.Write(d[:])
		case l.Record == nil:
			d, ok := parseSum(l.SHA256)
			if !ok {
				return Sum{}, errors.New("record digest is not 64 hex digits")
			}
			outer.Write(d[:])
		default:
			return Sum{}, errors.New("a record line has both a record and a digest")
		}
	}
	var s Sum
	outer.Sum(s[:0])
	return s, nil
}
