package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The AUDIT stream holds one record per API request, batched: one message
// per batch, a JSON record per line (see Auditor), compressed on a single
// node (TypeAuditBatchZ).
const (
	auditStream = "AUDIT"
	auditPrefix = "audit."
	// auditSubject is the subject of every batch. The node that wrote a
	// record is in the record.
	auditSubject = auditPrefix + "records"
	// TypeAuditBatch is the Kmsledger-Type header of an AUDIT message.
	TypeAuditBatch = "audit.batch.v1"
	// auditDuplicateWindow is how long a batch id is remembered: longer
	// than any retry of a batch.
	auditDuplicateWindow = 10 * time.Minute
)

// Stream names for ChainHead and RawMessage.Stream.
const (
	StreamLedger = ledgerStream
	StreamAudit  = auditStream
)

// auditConfig is the AUDIT stream: kept forever, no delete, no purge, no
// rollup, like LEDGER.
func auditConfig(replicas int) jetstream.StreamConfig {
	c := fileStream(auditStream, "kmsledger audit records, one per API request; append-only", auditPrefix, replicas)
	c.Duplicates = auditDuplicateWindow
	c.DenyDelete, c.DenyPurge = true, true
	return c
}

// AuditRecord is one API request. It never holds associated data, a
// plaintext, a ciphertext or key material: only SHA-256 digests of the
// associated data. Records are contracts: fields are only ever added.
//
// Every string a client can influence is cut so that the record's JSON
// line never exceeds MaxAuditRecord bytes, whatever the request (see
// audit_encode.go); what was cut is listed in Truncated.
type AuditRecord struct {
	Time     time.Time   `json:"time"`               // when the request arrived (UTC)
	Node     string      `json:"node"`               // host name of the node that served it
	Identity string      `json:"identity,omitempty"` // h1: identity of the client certificate
	Enclave  string      `json:"enclave,omitempty"`
	Method   string      `json:"method"`
	Path     string      `json:"path"`            // URL path (names, never secrets)
	Route    string      `json:"route,omitempty"` // matched route pattern; "" if none
	Items    []AuditItem `json:"items,omitempty"` // one per kms frame, or the key of another route
	Status   int         `json:"status"`          // HTTP status of the answer
	Error    string      `json:"error,omitempty"` // message sent to the client on failure
	Duration int64       `json:"duration_us"`     // time to the answer, microseconds
	Client   string      `json:"client"`          // client address (host:port)
	// Truncated lists the fields that were cut to keep the record within
	// MaxAuditRecord, each with its original size (see AuditCut). Absent
	// when nothing was cut, and in records written before it existed.
	Truncated []AuditCut `json:"truncated,omitempty"`
	// Dropped is set on a marker record that stands for a record the
	// stream refused: it keeps the refused record's small fields and says
	// why it was dropped (see Auditor).
	Dropped *AuditDrop `json:"dropped,omitempty"`
}

// AuditCut says that a field of a record was cut, and how large it was.
// Field is a field's JSON name ("path", "identity", "error", …); "items"
// means items were left out and Len is how many there were in all;
// "items.command" and "items.ad_sha256" mean that field was cut in at
// least one item and Len is the largest original size. A cut key says so
// in its own item (AuditItem.KeyLen).
type AuditCut struct {
	Field string `json:"field"`
	Len   int    `json:"len"` // bytes (a count for "items")
}

// AuditDrop describes a record the stream refused.
type AuditDrop struct {
	Bytes  int    `json:"bytes"`  // size of the refused record's JSON line
	Reason string `json:"reason"` // the stream's answer
}

// AuditItem is one command of a request: for the kms API one frame of the
// batch.
type AuditItem struct {
	Command  string `json:"command"` // e.g. "KEY:DECRYPT"
	Key      string `json:"key,omitempty"`
	Version  uint32 `json:"version,omitempty"`   // key version used (or asked for); 0 = latest/unknown
	ADSHA256 string `json:"ad_sha256,omitempty"` // hex SHA-256 of the associated data, if any
	KeyLen   int    `json:"key_len,omitempty"`   // original size of Key in bytes, if Key was cut
}

// appendAudit stores one batch (JSON lines) as the next AUDIT message,
// compressed on a single node (TypeAuditBatchZ). id is its Nats-Msg-Id,
// so that a retried batch is stored once.
func (s *Store) appendAudit(ctx context.Context, id string, body []byte) (uint64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	if s.chains.readOnly {
		return 0, ErrReadOnly
	}
	data, typ := body, TypeAuditBatch
	if s.compress {
		data, typ = deflateAudit(body), TypeAuditBatchZ
	}
	msg := nats.NewMsg(auditSubject)
	msg.Data = data
	msg.Header.Set(TypeHeader, typ)
	msg.Header.Set(jetstream.MsgIDHeader, id)
	msg.Header.Set(jetstream.ExpectedStreamHeader, auditStream)
	ack, err := s.chains.audit.publish(ctx, s.js, msg)
	if err != nil {
		return 0, fmt.Errorf("ledger: append audit batch: %w", s.mapErr(err))
	}
	if !ack.Duplicate {
		if err := s.chains.auditBlocks.sync(); err != nil {
			return 0, fmt.Errorf("ledger: append audit batch: %w", err)
		}
	}
	return ack.Sequence, nil
}

// AuditRecords calls fn for every record in AUDIT messages [from, to]
// (to 0 = the head when called), in order, with the sequence of the
// message that holds it.
func (s *Store) AuditRecords(ctx context.Context, from, to uint64, fn func(seq uint64, r AuditRecord) error) error {
	if s.isClosed() {
		return ErrClosed
	}
	if to == 0 {
		info, err := s.audit.Info(ctx)
		if err != nil {
			return fmt.Errorf("ledger: audit records: %w", s.mapErr(err))
		}
		to = info.State.LastSeq
	}
	return scanStream(ctx, s.audit, auditStream, from, to, func(m RawMessage) error {
		body, err := m.Plain()
		if err != nil {
			return err
		}
		return eachLine(body, func(line []byte) error {
			var r AuditRecord
			if err := json.Unmarshal(line, &r); err != nil {
				return fmt.Errorf("%w: AUDIT seq %d: %w", ErrMalformed, m.Seq, err)
			}
			return fn(m.Seq, r)
		})
	})
}

// eachLine calls fn for every line of body (with its '\n'), the split
// the chain's body digest uses.
func eachLine(body []byte, fn func([]byte) error) error {
	for len(body) > 0 {
		n := bytes.IndexByte(body, '\n') + 1
		if n == 0 {
			n = len(body)
		}
		if err := fn(body[:n]); err != nil {
			return err
		}
		body = body[n:]
	}
	return nil
}
