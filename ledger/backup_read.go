package ledger

// Reading a backup (layout in backup.go): OpenBackup checks that every
// byte of the file is as written; Scan checks the structure of the lines
// while it hands out the messages; Verify recomputes the hash chains and
// checks every checkpoint, as Verify does on a store.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrBadBackup is wrapped by the errors of a file that is not a whole,
// unchanged backup in a format this version reads.
var ErrBadBackup = errors.New("ledger: not a valid backup")

// maxBackupLine bounds one line of a backup (an AUDIT message is at most
// 1 MiB; base64 and JSON add less than half).
const maxBackupLine = 4 << 20

// BackupFile is a backup whose bytes were checked by OpenBackup.
type BackupFile struct {
	r      io.ReaderAt
	size   int64 // of member 1
	Header BackupHeader
}

// OpenBackup checks the file r of size bytes: the trailer, the digest of
// every other byte, the gzip header, and reads the header line. format is
// BackupFormat, or RestFormat for the side file of a point-in-time
// restore. Any difference gives an error wrapping ErrBadBackup.
func OpenBackup(r io.ReaderAt, size int64, format string) (*BackupFile, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadBackup, fmt.Sprintf(format, args...))
	}
	ts := int64(trailerSize)
	if size < ts+int64(len(gzipHeader)) {
		return nil, bad("%d bytes is too short for a backup", size)
	}
	tr := make([]byte, ts)
	if _, err := r.ReadAt(tr, size-ts); err != nil {
		return nil, fmt.Errorf("ledger: read backup: %w", err)
	}
	at := len(gzipHeader) + 5 + len(`{"kind":"`+lineTrailer+`","sha256":"`)
	want, ok := parseSum(string(tr[at : at+2*sha256.Size]))
	if !ok || !bytes.Equal(tr, trailerMember(want)) {
		return nil, bad("the trailer (the last %d bytes) is not one this version writes: the file was cut short, extended or changed", ts)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, size-ts)); err != nil {
		return nil, fmt.Errorf("ledger: read backup: %w", err)
	}
	var got Sum
	h.Sum(got[:0])
	if got != want {
		return nil, bad("the digest of the file differs from its trailer: a byte was changed")
	}
	head := make([]byte, len(gzipHeader))
	if _, err := r.ReadAt(head, 0); err != nil || !bytes.Equal(head, gzipHeader) {
		return nil, bad("unexpected gzip header")
	}
	b := &BackupFile{r: r, size: size - ts}
	err := b.scan(func(hdr *BackupHeader) error {
		b.Header = *hdr
		if hdr.Format != format {
			return bad("format %q, want %q", hdr.Format, format)
		}
		return errStopScan
	}, nil)
	if err != nil && !errors.Is(err, errStopScan) {
		return nil, err
	}
	return b, nil
}

// errStopScan ends a scan early without an error.
var errStopScan = errors.New("stop")

// Scan calls fn for every message, in file order: LEDGER from 1, AUDIT
// from 1 (a rest file: from LedgerFrom and AuditFrom), then SECRETS. A
// line out of place, an unknown field or a count that does not match the
// end line gives an error wrapping ErrBadBackup.
func (b *BackupFile) Scan(fn func(*BackupMsg) error) (BackupStats, error) {
	return b.scanStats(fn)
}

func (b *BackupFile) scanStats(fn func(*BackupMsg) error) (BackupStats, error) {
	var st BackupStats
	err := b.scan(nil, func(m *BackupMsg) error {
		switch m.Stream {
		case ledgerStream:
			st.Ledger++
		case auditStream:
			st.Audit++
		default:
			st.Secrets++
		}
		return fn(m)
	})
	return st, err
}

// scan reads member 1 line by line, checking its structure.
func (b *BackupFile) scan(onHeader func(*BackupHeader) error, onMsg func(*BackupMsg) error) error {
	br := bufio.NewReader(io.NewSectionReader(b.r, 0, b.size))
	gz, err := gzip.NewReader(br)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadBackup, err)
	}
	gz.Multistream(false)
	sc := bufio.NewScanner(gz)
	sc.Buffer(make([]byte, 64<<10), maxBackupLine)
	ls := &lineScanner{onHeader: onHeader, onMsg: onMsg, counts: map[string]uint64{}}
	for sc.Scan() {
		if err := ls.line(sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadBackup, err)
	}
	if !ls.gotEnd {
		return fmt.Errorf("%w: no end line: the backup was cut short", ErrBadBackup)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: bytes after the first gzip member", ErrBadBackup)
	}
	return nil
}

// lineScanner checks the lines of member 1 one by one.
type lineScanner struct {
	onHeader func(*BackupHeader) error
	onMsg    func(*BackupMsg) error

	n      int // lines so far
	hdr    BackupHeader
	pl     *placer
	counts map[string]uint64
	gotEnd bool
}

func (ls *lineScanner) bad(format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrBadBackup, ls.n, fmt.Sprintf(format, args...))
}

// strict decodes line into v, refusing unknown fields.
func strict(line []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// line checks one line and hands on the header or the message.
func (ls *lineScanner) line(line []byte) error {
	ls.n++
	if ls.gotEnd {
		return ls.bad("a line after the end line")
	}
	var decoded struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(line, &decoded); err != nil {
		return ls.bad("not JSON: %v", err)
	}
	switch {
	case ls.n == 1:
		if decoded.Kind != lineHeader || strict(line, &ls.hdr) != nil {
			return ls.bad("not a backup header")
		}
		ls.pl = newPlacer(&ls.hdr)
		if ls.onHeader != nil {
			return ls.onHeader(&ls.hdr)
		}
	case decoded.Kind == lineMsg:
		var m BackupMsg
		if err := strict(line, &m); err != nil {
			return ls.bad("bad message line: %v", err)
		}
		if err := ls.pl.place(&m); err != nil {
			return ls.bad("%v", err)
		}
		ls.counts[m.Stream]++
		if ls.onMsg != nil {
			return ls.onMsg(&m)
		}
	case decoded.Kind == lineEnd:
		var e backupEnd
		if err := strict(line, &e); err != nil {
			return ls.bad("bad end line: %v", err)
		}
		if err := ls.pl.end(); err != nil {
			return ls.bad("%v", err)
		}
		c := ls.counts
		if e.Ledger != c[ledgerStream] || e.Audit != c[auditStream] || e.Secrets != c[secretsStream] {
			return ls.bad("the end line counts %d/%d/%d messages, the file has %d/%d/%d", e.Ledger, e.Audit, e.Secrets,
				c[ledgerStream], c[auditStream], c[secretsStream])
		}
		ls.gotEnd = true
	default:
		return ls.bad("unknown line kind %q", decoded.Kind)
	}
	return nil
}

// placer checks that every message comes where it belongs: LEDGER, then
// AUDIT, in sequence up to the header's heads (from 1 in a backup, from
// wherever the cut was in a rest file), then SECRETS in rising sequence;
// each stream's subjects under its prefix.
type placer struct {
	hdr    *BackupHeader
	rest   bool
	stream int    // index in placeOrder
	next   uint64 // next LEDGER or AUDIT sequence; last SECRETS sequence
	seen   bool   // the current stream had a message
}

var placeOrder = []struct{ stream, prefix string }{
	{ledgerStream, ledgerPrefix}, {auditStream, auditPrefix}, {secretsStream, secretsPrefix},
}

func newPlacer(hdr *BackupHeader) *placer {
	return &placer{hdr: hdr, rest: hdr.Format == RestFormat, next: 1}
}

// endStream checks that the current stream reached its head and moves on.
func (p *placer) endStream() error {
	if p.stream < 2 {
		name := placeOrder[p.stream].stream
		last := p.hdr.Ledger
		if name == auditStream {
			last = p.hdr.Audit
		}
		if (!p.rest || p.seen) && p.next != last+1 {
			return fmt.Errorf("%s ends at seq %d, the header says %d", name, p.next-1, last)
		}
	}
	p.stream++
	p.next, p.seen = 1, false
	if p.stream == 2 {
		p.next = 0
	}
	return nil
}

// end is called at the end line.
func (p *placer) end() error {
	for p.stream < len(placeOrder) {
		if err := p.endStream(); err != nil {
			return err
		}
	}
	return nil
}

func (p *placer) place(m *BackupMsg) error {
	o := -1
	for i, x := range placeOrder {
		if x.stream == m.Stream {
			o = i
		}
	}
	switch {
	case o < 0:
		return fmt.Errorf("unknown stream %q", m.Stream)
	case o < p.stream:
		return fmt.Errorf("%s message after %s messages", m.Stream, placeOrder[p.stream].stream)
	}
	for o > p.stream {
		if err := p.endStream(); err != nil {
			return err
		}
	}
	if !validSubject(m.Subject, placeOrder[o].prefix, false) {
		return fmt.Errorf("%s seq %d: subject %q is not one of the stream's", m.Stream, m.Seq, m.Subject)
	}
	if m.Stream == secretsStream {
		if m.Seq <= p.next {
			return fmt.Errorf("SECRETS seq %d after seq %d", m.Seq, p.next)
		}
		p.next = m.Seq
		return nil
	}
	if p.rest && !p.seen && m.Seq > 0 {
		p.next = m.Seq
	}
	p.seen = true
	if m.Seq != p.next {
		return fmt.Errorf("%s seq %d where seq %d belongs", m.Stream, m.Seq, p.next)
	}
	p.next++
	return nil
}

// Verify recomputes the hash chains of the backup, checks every Prev
// header and every checkpoint's signature with keys (by key id), and the
// chain values the header states. It returns an error wrapping
// ErrTampered naming the first bad sequence, or ErrBadBackup.
func (b *BackupFile) Verify(keys map[string]ed25519.PublicKey) (*VerifyReport, error) {
	if b.Header.Format != BackupFormat {
		return nil, fmt.Errorf("%w: only a whole backup can be verified", ErrBadBackup)
	}
	rep := &VerifyReport{Ledger: StreamReport{Stream: ledgerStream, From: 1}, Audit: StreamReport{Stream: auditStream, From: 1}}
	v := newVerifier(VerifyOptions{Keys: keys}, rep)
	inAudit := false
	endLedger := func() error {
		inAudit = true
		if err := v.finishLedger(); err != nil {
			return err
		}
		rep.Ledger.Last = v.ledger.seq
		return v.claimAudit()
	}
	_, err := b.Scan(func(m *BackupMsg) error {
		if m.Stream != ledgerStream && !inAudit {
			if err := endLedger(); err != nil {
				return err
			}
		}
		raw := m.raw()
		switch m.Stream {
		case ledgerStream:
			return v.addLedger(&raw)
		case auditStream:
			return v.audit.add(raw.Seq, raw.Prev, raw.Leaf())
		}
		return nil
	})
	if err == nil && !inAudit {
		err = endLedger()
	}
	if err != nil {
		return rep, err
	}
	rep.Audit.Last = v.audit.seq
	if err := v.finishAudit(v.audit.seq); err != nil {
		return rep, err
	}
	for _, x := range []struct {
		stream, want string
		got          Sum
		seq          uint64
	}{{ledgerStream, b.Header.LedgerChain, v.ledger.sum, v.ledger.seq}, {auditStream, b.Header.AuditChain, v.audit.sum, v.audit.seq}} {
		if x.want != "" && x.want != x.got.String() {
			return rep, &TamperError{Stream: x.stream, Seq: x.seq, Reason: "the chain value differs from the one in the backup's header"}
		}
	}
	return rep, nil
}
