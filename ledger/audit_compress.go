package ledger

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// TypeAuditBatchZ is the Kmsledger-Type of an AUDIT batch stored
// compressed: its body is one zstd frame of the JSON lines a
// TypeAuditBatch body holds. The hash chain covers the lines, not the
// frame (RawMessage.Plain), so checks, exports and backups see the same
// records whatever the storage; a frame that does not decompress has a
// leaf no lines have (undecodableDigest), which the chain never matches.
//
// A single node writes its batches compressed: the records of one batch
// repeat their identity, route, node and field names, and a million key
// creations took 20 MB instead of 350 MB (BENCHMARKS.md). Nodes of a
// cluster (or of an external NATS cluster) keep writing TypeAuditBatch:
// a node of an earlier version would read a compressed batch as a
// changed one and break the chain it appends to.
const TypeAuditBatchZ = "audit.batch.v2"

// auditMaxPlain bounds what a compressed batch may decompress to: every
// batch is at most auditMaxMessage bytes of lines, and the server's
// message limit is 1 MiB.
const auditMaxPlain = 1 << 20

// errAuditFrame reports a compressed batch that does not decompress
// within auditMaxPlain.
var errAuditFrame = errors.New("ledger: audit batch does not decompress")

var auditCodec = sync.OnceValues(func() (*zstd.Encoder, *zstd.Decoder) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithZeroFrames(true))
	if err != nil {
		panic(err) // only for invalid options
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(2), zstd.WithDecoderMaxMemory(auditMaxPlain),
		zstd.WithDecoderMaxWindow(auditMaxPlain))
	if err != nil {
		panic(err)
	}
	return enc, dec
})

// deflateAudit returns body (whole JSON lines) as a TypeAuditBatchZ body.
func deflateAudit(body []byte) []byte {
	enc, _ := auditCodec()
	return enc.EncodeAll(body, make([]byte, 0, len(body)/4+64))
}

// inflateAudit returns the lines of a TypeAuditBatchZ body: one or more
// frames, never nothing.
func inflateAudit(frame []byte) ([]byte, error) {
	if len(frame) == 0 {
		return nil, fmt.Errorf("%w: empty", errAuditFrame)
	}
	_, dec := auditCodec()
	plain, err := dec.DecodeAll(frame, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errAuditFrame, err)
	}
	return plain, nil
}

// undecodableDigest stands for the lines of a compressed batch or event
// that does not decompress: a digest of its stored bytes under a label
// of its own (named after the batches, which came first), so that it is
// the body digest of no lines (not even of the stored bytes read as
// lines) and the chain check reports the message.
func undecodableDigest(body []byte) Sum {
	h := sha256.New()
	h.Write([]byte("kmsledger/audit-batch-undecodable\n"))
	h.Write(body)
	var s Sum
	h.Sum(s[:0])
	return s
}

// Plain returns the body as the chain covers it: the lines of a
// compressed AUDIT batch, the JSON of a compressed event (an error
// wrapping ErrMalformed if either does not decompress), any other body
// as stored.
func (m *RawMessage) Plain() ([]byte, error) {
	var plain []byte
	var err error
	if m.Type == TypeAuditBatchZ {
		plain, err = inflateAudit(m.Body)
	} else {
		plain, err = eventJSON(m.Body, m.Subject) // a frame, or the body as stored
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s seq %d: %w", ErrMalformed, m.Stream, m.Seq, err)
	}
	return plain, nil
}

// bodySum is the body digest Leaf covers (sumOver what Plain returns).
func (m *RawMessage) bodySum() Sum { return m.sumOver(m.Plain()) }

// sumOver is the body digest of the lines Plain returned, or
// undecodableDigest if it returned an error.
func (m *RawMessage) sumOver(body []byte, err error) Sum {
	if err != nil {
		return undecodableDigest(m.Body)
	}
	return bodyDigest(body)
}
