// Backups of the three streams.
//
// Summary: a backup is a consistent copy of LEDGER and AUDIT up to the
// heads they had when it started, and of every sealed secret SECRETS held
// then, as JSON lines inside gzip. It holds key material only as it is
// stored: sealed under the REK, which the HSM seals. Restore (restore.go)
// writes the messages back into an empty Store, with the same sequences,
// subjects, type, message id and Prev headers and bodies, so the hash
// chains and signed checkpoints verify on the restored store exactly as
// they did on the original.
//
// File layout (a valid multi-member gzip file: `gunzip -c` prints every
// line, the trailer last):
//
//	member 1 (deflate, gzip header exactly 1f 8b 08 00 00000000 00 ff):
//	    {"kind":"header","format":"kmsledger-backup/v1",...}   BackupHeader
//	    {"kind":"msg","stream":"LEDGER","seq":1,...}           BackupMsg, LEDGER 1..n
//	    {"kind":"msg","stream":"AUDIT","seq":1,...}            AUDIT 1..m
//	    {"kind":"msg","stream":"SECRETS","seq":s,...}          SECRETS, rising seq
//	    {"kind":"end","ledger":n,"audit":m,"secrets":k}
//	member 2 (one stored block, trailerSize bytes, every byte fixed but
//	          the digest):
//	    {"kind":"trailer","sha256":"<hex SHA-256 of every byte of member 1>"}
//
// The trailer makes every byte of the file count: a byte changed in
// member 1 changes its digest (even one gzip itself ignores, such as its
// header's time or the padding bits of the last deflate byte), a byte
// changed in the trailer makes it differ from the one trailer its digest
// gives. The trailer is no signature (anyone can recompute it): what
// proves the content is the hash chain and the checkpoints signed by a
// key only the HSM can unseal. A backup made through a running node first
// appends a checkpoint, so that everything in it is signed.

package ledger

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BackupFormat names the backup format in its header line. A newer
// format gets a new name; readers keep reading the old ones.
const BackupFormat = "kmsledger-backup/v1"

// RestFormat names the format of the side file a point-in-time restore
// writes: the same lines, for the messages after the cut.
const RestFormat = "kmsledger-backup-rest/v1"

// Kinds of backup lines.
const (
	lineHeader  = "header"
	lineMsg     = "msg"
	lineEnd     = "end"
	lineTrailer = "trailer"
)

// BackupHeader is the first line of a backup.
type BackupHeader struct {
	Kind      string    `json:"kind"`
	Format    string    `json:"format"`
	CreatedAt time.Time `json:"created_at"`
	// Ledger and Audit are the last sequences of LEDGER and AUDIT in the
	// backup (every message from 1 to them is in it); LedgerChain and
	// AuditChain their chain values ("" if not known). A rest file
	// (RestFormat) has the same heads and holds the last messages up to
	// them, from wherever the cut was.
	Ledger      uint64 `json:"ledger"`
	Audit       uint64 `json:"audit"`
	LedgerChain string `json:"ledger_chain"`
	AuditChain  string `json:"audit_chain"`
}

// BackupMsg is one stored message in a backup line. Type, MsgID and Prev
// are the Kmsledger-Type, Nats-Msg-Id and Kmsledger-Prev headers (""
// when absent); Time is when the stream stored it.
type BackupMsg struct {
	Kind    string    `json:"kind"`
	Stream  string    `json:"stream"`
	Seq     uint64    `json:"seq"`
	Subject string    `json:"subject"`
	Type    string    `json:"type,omitempty"`
	MsgID   string    `json:"msg_id,omitempty"`
	Prev    string    `json:"prev,omitempty"`
	Time    time.Time `json:"time"`
	Body    []byte    `json:"body"`
}

// raw returns m as the chain sees it.
func (m *BackupMsg) raw() RawMessage {
	return RawMessage{Stream: m.Stream, Seq: m.Seq, Subject: m.Subject, Type: m.Type, MsgID: m.MsgID, Prev: m.Prev, Body: m.Body}
}

// backupEnd is the last line of member 1: how many messages of each
// stream precede it, so that a backup cut short is refused.
type backupEnd struct {
	Kind    string `json:"kind"`
	Ledger  uint64 `json:"ledger"`
	Audit   uint64 `json:"audit"`
	Secrets uint64 `json:"secrets"`
}

// BackupStats counts what a backup or a restore holds.
type BackupStats struct {
	Ledger, Audit, Secrets uint64
}

// Progress is told how many messages were handled out of total. It may
// be nil.
type Progress func(done, total uint64)

// Backup writes a backup of LEDGER and AUDIT up to their heads when it
// is called and of the secrets SECRETS holds, to w (see the file
// layout above). A secret erased while the backup runs may be missing
// from it (its key version then restores as shredded).
func (s *Store) Backup(ctx context.Context, w io.Writer, progress Progress) (BackupStats, error) {
	if s.isClosed() {
		return BackupStats{}, ErrClosed
	}
	lLast, err := streamLast(ctx, s.ledger)
	if err != nil {
		return BackupStats{}, err
	}
	aLast, err := streamLast(ctx, s.audit)
	if err != nil {
		return BackupStats{}, err
	}
	return s.backupUpTo(ctx, w, progress, lLast, aLast)
}

// BackupSigned appends a checkpoint with signer (unless the last message
// already is one that covers both heads) and writes a backup of LEDGER
// and AUDIT up to what that checkpoint signs, so that every message of
// the backup is signed. Messages appended meanwhile go to the next backup.
func (s *Store) BackupSigned(ctx context.Context, w io.Writer, signer crypto.Signer, progress Progress) (BackupStats, error) {
	if _, err := s.Checkpoint(ctx, signer); err != nil {
		return BackupStats{}, err
	}
	l := s.chains.ledger
	l.mu.Lock()
	last := s.chains.last
	l.mu.Unlock()
	if !last.known || last.ledger == 0 {
		return BackupStats{}, fmt.Errorf("ledger: backup: no checkpoint to back up to")
	}
	return s.backupUpTo(ctx, w, progress, last.ledger, last.audit)
}

// backupUpTo writes a backup of LEDGER up to lLast, AUDIT up to aLast and
// the secrets SECRETS holds.
func (s *Store) backupUpTo(ctx context.Context, w io.Writer, progress Progress, lLast, aLast uint64) (BackupStats, error) {
	var st BackupStats
	sinfo, err := s.secrets.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("ledger: backup: %w", err)
	}
	total := lLast + aLast + sinfo.State.Msgs
	bw := newBackupWriter(w)
	hdr := BackupHeader{Kind: lineHeader, Format: BackupFormat, CreatedAt: time.Now().UTC(), Ledger: lLast, Audit: aLast}
	// The chain values of the heads, when the Store's heads are there (a
	// restore checks them against the recomputed chains).
	hdr.LedgerChain, hdr.AuditChain = s.headChain(ledgerStream, lLast), s.headChain(auditStream, aLast)
	if err := bw.line(hdr); err != nil {
		return st, err
	}
	var done uint64
	tick := func() {
		done++
		if progress != nil && (done%256 == 0 || done == total) {
			progress(done, total)
		}
	}
	for _, x := range []struct {
		st   jetstream.Stream
		name string
		last uint64
		n    *uint64
	}{{s.ledger, ledgerStream, lLast, &st.Ledger}, {s.audit, auditStream, aLast, &st.Audit}} {
		err := scanStreamMsgs(ctx, x.st, x.name, 1, x.last, func(m *BackupMsg) error {
			*x.n++
			tick()
			return bw.line(m)
		})
		if err != nil {
			return st, err
		}
	}
	for seq := sinfo.State.FirstSeq; seq > 0 && seq <= sinfo.State.LastSeq; seq++ {
		m, err := s.secrets.GetMsg(ctx, seq)
		if isSeqNotFound(err) || errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // erased
		}
		if err != nil {
			return st, &ReadError{Stream: secretsStream, Seq: seq, Err: err}
		}
		st.Secrets++
		tick()
		if err := bw.line(backupMsgFrom(secretsStream, m)); err != nil {
			return st, err
		}
	}
	if err := bw.line(backupEnd{Kind: lineEnd, Ledger: st.Ledger, Audit: st.Audit, Secrets: st.Secrets}); err != nil {
		return st, err
	}
	if progress != nil {
		progress(total, total)
	}
	return st, bw.close()
}

// headChain returns the chain value of stream at seq if the Store's head
// is there ("" otherwise: the backup then states no chain value).
func (s *Store) headChain(stream string, seq uint64) string {
	hs, sum, err := s.ChainHead(stream)
	if err != nil || hs != seq || s.chains.readOnly {
		return ""
	}
	return sum.String()
}

// scanStreamMsgs is scanStream for backup lines.
func scanStreamMsgs(ctx context.Context, st jetstream.Stream, name string, from, to uint64, fn func(*BackupMsg) error) error {
	for seq := max(from, 1); seq <= to; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			return &ReadError{Stream: name, Seq: seq, Err: err}
		}
		if m.Sequence != seq {
			return &ReadError{Stream: name, Seq: seq, Err: fmt.Errorf("store answered with seq %d", m.Sequence)}
		}
		if err := fn(backupMsgFrom(name, m)); err != nil {
			return err
		}
	}
	return nil
}

func backupMsgFrom(stream string, m *jetstream.RawStreamMsg) *BackupMsg {
	r := rawFrom(stream, m)
	return &BackupMsg{Kind: lineMsg, Stream: stream, Seq: r.Seq, Subject: r.Subject, Type: r.Type, MsgID: r.MsgID,
		Prev: r.Prev, Time: m.Time.UTC(), Body: r.Body}
}

// backupWriter writes the lines of member 1 and, on close, the trailer.
type backupWriter struct {
	dst io.Writer
	sum hash.Hash // over every byte of member 1
	gz  *gzip.Writer
	buf *bufio.Writer
	enc *json.Encoder
}

func newBackupWriter(dst io.Writer) *backupWriter {
	b := &backupWriter{dst: dst, sum: sha256.New()}
	b.gz = gzip.NewWriter(io.MultiWriter(dst, b.sum)) // zero Header: the fixed gzip header
	b.buf = bufio.NewWriterSize(b.gz, 64<<10)
	b.enc = json.NewEncoder(b.buf)
	b.enc.SetEscapeHTML(false)
	return b
}

func (b *backupWriter) line(v any) error {
	if err := b.enc.Encode(v); err != nil {
		return fmt.Errorf("ledger: write backup: %w", err)
	}
	return nil
}

// close ends member 1 and writes the trailer member.
func (b *backupWriter) close() error {
	if err := b.buf.Flush(); err != nil {
		return fmt.Errorf("ledger: write backup: %w", err)
	}
	if err := b.gz.Close(); err != nil {
		return fmt.Errorf("ledger: write backup: %w", err)
	}
	var d Sum
	b.sum.Sum(d[:0])
	if _, err := b.dst.Write(trailerMember(d)); err != nil {
		return fmt.Errorf("ledger: write backup: %w", err)
	}
	return nil
}

// gzipHeader is the only gzip member header a backup has: no flags, no
// time, no extra flags, OS "unknown" (RFC 1952 §2.3).
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

// trailerLine is the uncompressed trailer for the digest d.
func trailerLine(d Sum) []byte {
	return []byte(`{"kind":"` + lineTrailer + `","sha256":"` + d.String() + "\"}\n")
}

// trailerSize is the size of the trailer member.
var trailerSize = len(trailerMember(Sum{}))

// trailerMember is the gzip member holding trailerLine(d) in one stored
// deflate block (RFC 1951 §3.2.4): BFINAL=1, BTYPE=00, LEN, NLEN, the
// bytes; then CRC-32 and ISIZE, little-endian (RFC 1952 §2.3.1).
func trailerMember(d Sum) []byte {
	data := trailerLine(d)
	n := len(data)
	b := append([]byte(nil), gzipHeader...)
	b = append(b, 0x01, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
	b = append(b, data...)
	c := crc32.ChecksumIEEE(data)
	b = append(b, byte(c), byte(c>>8), byte(c>>16), byte(c>>24))
	return append(b, byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
}
