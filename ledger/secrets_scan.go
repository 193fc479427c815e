package ledger

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// SecretEntry is one message of SECRETS as ScanSecrets sees it: never
// the material, only where and when it was stored.
type SecretEntry struct {
	Seq    uint64    // stream sequence
	Ref    string    // the reference it is stored under
	Stored time.Time // when the server stored it
}

// scanBatch is the number of SECRETS messages one scan request fetches.
const scanBatch = 4096

// ScanSecrets calls fn, in stream order, for every message of SECRETS
// with sequence from (0 is read as 1) or later, up to the last at the
// time of the call. It reads headers only: the material never leaves the
// server. It returns the stream's last sequence at the time of the call
// when it reached it (messages erased meanwhile are skipped), or the
// sequence of the last message fn consumed when it stopped earlier.
//
// Its cost is the number of messages after from, not the number of
// subjects: unlike ListSecrets, it suits a stream of millions of keys.
func (s *Store) ScanSecrets(ctx context.Context, from uint64, fn func(SecretEntry) error) (last uint64, err error) {
	return s.scanSecrets(ctx, from, true, func(e SecretEntry, _ []byte) error { return fn(e) })
}

// ReadSecrets is ScanSecrets with each message's sealed material, for the
// key cache's warm-up at start (commands.WarmKeyCache): the material
// leaves the server, not the process. fn must not keep sealed.
func (s *Store) ReadSecrets(ctx context.Context, from uint64, fn func(e SecretEntry, sealed []byte) error) (last uint64, err error) {
	return s.scanSecrets(ctx, from, false, fn)
}

// scanSecrets is ScanSecrets, headers only or not.
func (s *Store) scanSecrets(ctx context.Context, from uint64, headersOnly bool, fn func(SecretEntry, []byte) error) (last uint64, err error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	from = max(from, 1)
	last = from - 1
	info, err := s.secrets.Info(ctx)
	if err != nil {
		return last, fmt.Errorf("ledger: scan secrets: %w", s.mapErr(err))
	}
	end := info.State.LastSeq
	if end < from || info.State.Msgs == 0 {
		return max(last, end), nil
	}
	r := &stallReader{s: s, st: s.secrets, cfg: jetstream.OrderedConsumerConfig{HeadersOnly: headersOnly},
		batch: scanBatch, stall: s.replayStall, what: "scan secrets"}
	defer r.close()
	pending := info.State.Msgs // an upper bound until the first message says
	for last < end && pending > 0 {
		m, err := r.next(ctx, last)
		if err != nil {
			return last, err
		}
		meta, err := m.Metadata()
		if err != nil {
			return last, fmt.Errorf("ledger: scan secrets after %d: %w", last, err)
		}
		// What is left after this message: 0 when the rest up to end
		// was erased meanwhile.
		seq := meta.Sequence.Stream
		pending = meta.NumPending
		if seq > end {
			break // stored after the call
		}
		if seq <= last {
			continue // redelivered after a consumer reset
		}
		ref, ok := strings.CutPrefix(m.Subject(), secretsPrefix)
		if !ok {
			return last, fmt.Errorf("ledger: scan secrets: seq %d has subject %q: %w", seq, m.Subject(), ErrMalformed)
		}
		var sealed []byte
		if !headersOnly {
			sealed = m.Data()
		}
		if err := fn(SecretEntry{Seq: seq, Ref: ref, Stored: meta.Timestamp}, sealed); err != nil {
			return last, err
		}
		last = seq
	}
	return max(last, end), ctx.Err()
}

// SecretsLastSeq returns the sequence of the last message ever stored in
// SECRETS (0 if none).
func (s *Store) SecretsLastSeq(ctx context.Context) (uint64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	info, err := s.secrets.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("ledger: secrets info: %w", s.mapErr(err))
	}
	return info.State.LastSeq, nil
}
