package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PutSecret stores sealed key material under ref ("<enclave>.<key>.<version>",
// see SecretRef) in SECRETS. A reference holds at most one message: if it
// already holds one, PutSecret returns ErrSecretExists and writes nothing,
// and of two racing puts one succeeds. The stream enforces that for every
// writer: at most one message per subject, a new one refused
// (secretsConfig). A cluster node also sends JetStream's
// expected-last-subject-sequence 0, since a node of an earlier version
// may set the stream's configuration back; a single node does not, which
// saves the 56 bytes the server would store with each message. After
// EraseSecret the reference is free again. When PutSecret returns nil the
// material is on disk.
func (s *Store) PutSecret(ctx context.Context, ref string, sealed []byte) error {
	if s.isClosed() {
		return ErrClosed
	}
	subj := secretSubject(ref)
	if !validSubject(subj, secretsPrefix, false) {
		return fmt.Errorf("ledger: put secret %q: %w", ref, ErrInvalid)
	}
	msg := nats.NewMsg(subj)
	msg.Data = sealed
	// In a cluster a put whose outcome is unknown is sent again
	// (publishRetry); the id makes that retry of this very put (same
	// reference, same bytes) a duplicate rather than "exists". A single
	// server never sends a put twice (a put without an answer fails; what
	// it may have stored is referenced by no event, and Reconcile erases
	// it), so it needs no id. The server stores the
	// headers with the message, so they are kept short: a digest of
	// reference and bytes (before: "secret/<ref>/<digest>"), and no
	// expected-stream header (only SECRETS holds "secrets.>").
	if s.clustered {
		h := sha256.New()
		h.Write([]byte(ref))
		h.Write([]byte{0})
		h.Write(sealed)
		msg.Header.Set(jetstream.MsgIDHeader, "s:"+hex.EncodeToString(h.Sum(nil)[:16]))
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	}
	// Concurrent puts are stored at once and share the fsync
	// (durability.go).
	_, err := s.publishRetry(ctx, msg)
	switch {
	case err == nil:
		if err := s.secretsBlocks.sync(); err != nil {
			return fmt.Errorf("ledger: put secret %s: %w", ref, err)
		}
		return nil
	case isWrongLastSeq(err), isSubjectFull(err):
		return fmt.Errorf("ledger: put secret %s: %w", ref, ErrSecretExists)
	default:
		return fmt.Errorf("ledger: put secret %s: %w", ref, s.mapErr(err))
	}
}

// codeStoreFailed is JetStream's JSStreamStoreFailedF: a message the
// stream did not store, its description the store's error.
const codeStoreFailed jetstream.ErrorCode = 10077

// isSubjectFull reports whether err is JetStream's refusal of a message
// on a subject that holds its most already (secretsConfig): a store
// failure whose description is the file store's ErrMaxMsgsPerSubject.
func isSubjectFull(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == codeStoreFailed &&
		strings.Contains(apiErr.Description, "maximum messages per subject exceeded")
}

// secretLeaderWait bounds GetSecret's read from the SECRETS leader in a
// cluster before it asks any replica.
const secretLeaderWait = time.Second

// GetSecret returns the sealed material stored under ref, or
// ErrSecretNotFound.
func (s *Store) GetSecret(ctx context.Context, ref string) ([]byte, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	subj := secretSubject(ref)
	if !validSubject(subj, secretsPrefix, false) {
		return nil, fmt.Errorf("ledger: get secret %q: %w", ref, ErrInvalid)
	}
	var m *jetstream.RawStreamMsg
	var err error
	if ls, ok := s.secrets.(*leaderStream); ok {
		// The leader's answer reflects every erasure it acknowledged; a
		// replica's may not yet. Material never changes once stored (it
		// only disappears), so while the stream has no leader any
		// replica answers (a direct get), which keeps crypto going
		// during an election.
		lctx, cancel := context.WithTimeout(ctx, secretLeaderWait)
		m, err = ls.GetLastMsgForSubject(lctx, subj)
		cancel()
		if errors.Is(err, ErrUnavailable) {
			m, err = ls.Stream.GetLastMsgForSubject(ctx, subj)
		}
	} else {
		m, err = s.secrets.GetLastMsgForSubject(ctx, subj)
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("ledger: get secret %s: %w", ref, ErrSecretNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: get secret %s: %w", ref, s.mapErr(err))
	}
	return m.Data, nil
}

// EraseSecret securely erases every message stored under ref, which may be
// a wildcard filter ("enc.key.*", "enc.>"). Each message is overwritten
// with random bytes in its block file, which is rewritten, fsynced and
// renamed over the old one (JetStream's secure delete); see doc.go for
// what this does and does not guarantee. Erasing a reference that holds
// nothing is not an error.
func (s *Store) EraseSecret(ctx context.Context, ref string) error {
	if s.isClosed() {
		return ErrClosed
	}
	subj := secretSubject(ref)
	if !validSubject(subj, secretsPrefix, true) {
		return fmt.Errorf("ledger: erase secret %q: %w", ref, ErrInvalid)
	}
	var prev uint64
	for {
		m, err := s.secrets.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			if prev == 0 {
				return nil
			}
			// The server renamed the rewritten block over the old one
			// without syncing the directory; until this sync a power cut
			// could bring the old block back.
			// The tombstone appended to the last block is fsynced too.
			if s.secretsBlocks != nil {
				if err := syncDir(s.secretsBlocks.dir); err != nil {
					return fmt.Errorf("ledger: erase secret %s: %w", ref, err)
				}
				if err := s.secretsBlocks.sync(); err != nil {
					return fmt.Errorf("ledger: erase secret %s: %w", ref, err)
				}
			}
			// A cluster node's Raft log still holds the material until
			// its next snapshot: watchErasures (cluster_admin.go) takes
			// it on every node.
			return nil
		}
		if err != nil {
			return fmt.Errorf("ledger: erase secret %s: %w", ref, s.mapErr(err))
		}
		clear(m.Data)
		if m.Sequence == prev {
			return fmt.Errorf("ledger: erase secret %s: seq %d still present after erase", ref, prev)
		}
		prev = m.Sequence
		err = s.secureDelete(ctx, m.Sequence)
		if err != nil && !isSeqNotFound(err) {
			return fmt.Errorf("ledger: erase secret %s seq %d: %w", ref, m.Sequence, s.mapErr(err))
		}
	}
}

// codeSequenceNotFound is JetStream's JSSequenceNotFoundErrF: the message
// to delete does not exist (nats.go has no constant for it).
const codeSequenceNotFound jetstream.ErrorCode = 10043

// isSeqNotFound reports whether err says the message is already gone (a
// concurrent erase won the race).
func isSeqNotFound(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == codeSequenceNotFound
}

// ListSecrets returns, sorted, the references that hold material and match
// filter (a reference or wildcard filter; "" means all).
func (s *Store) ListSecrets(ctx context.Context, filter string) ([]string, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	if filter == "" {
		filter = ">"
	}
	subj := secretSubject(filter)
	if !validSubject(subj, secretsPrefix, true) {
		return nil, fmt.Errorf("ledger: list secrets %q: %w", filter, ErrInvalid)
	}
	info, err := s.secrets.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return nil, fmt.Errorf("ledger: list secrets %s: %w", filter, s.mapErr(err))
	}
	refs := make([]string, 0, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		if n > 0 {
			refs = append(refs, strings.TrimPrefix(subj, secretsPrefix))
		}
	}
	slices.Sort(refs)
	return refs, nil
}

// publishRetry publishes msg (outside the hash chains); in a cluster a
// publish whose outcome is unknown is retried with the same message id
// until ctx ends or resendHorizon has passed (the message must carry an
// id).
func (s *Store) publishRetry(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if !s.clustered {
		return s.js.PublishMsg(ctx, msg, opts...)
	}
	backoff := 50 * time.Millisecond
	first := time.Now()
	for {
		var ack *jetstream.PubAck
		publish := func(ctx context.Context) (err error) {
			ack, err = s.js.PublishMsg(ctx, msg, opts...)
			return err
		}
		// A publish in flight to a leader that died is sent again as soon
		// as SECRETS has elected a new one.
		err := s.chains.ledger.w.untilElected(ctx, secretsStream, publishAttempt, publish)
		if err == nil || (!errors.Is(err, errNewLeader) && !isUnknownOutcome(err)) {
			return ack, err
		}
		if !resendable(first, s.resendHorizon) {
			return nil, fmt.Errorf("%w: no answer within %s: %w", ErrUnavailable, s.resendHorizon, err)
		}
		if errors.Is(err, errNewLeader) {
			backoff = 50 * time.Millisecond
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// secureDelete erases message seq of SECRETS; in a cluster it retries an
// unknown outcome until ctx ends (an erase is idempotent: a second one
// finds nothing, which the caller accepts).
func (s *Store) secureDelete(ctx context.Context, seq uint64) error {
	backoff := 50 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, publishAttempt)
		err := s.secrets.SecureDeleteMsg(actx, seq)
		cancel()
		if err == nil || !s.clustered || !isUnknownOutcome(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// SecretStored returns where and when the material under ref was stored.
func (s *Store) SecretStored(ctx context.Context, ref string) (SecretEntry, error) {
	subj := secretSubject(ref)
	if !validSubject(subj, secretsPrefix, false) {
		return SecretEntry{}, fmt.Errorf("ledger: secret time %q: %w", ref, ErrInvalid)
	}
	m, err := s.secrets.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return SecretEntry{}, fmt.Errorf("ledger: secret time %s: %w", ref, ErrSecretNotFound)
	}
	if err != nil {
		return SecretEntry{}, fmt.Errorf("ledger: secret time %s: %w", ref, s.mapErr(err))
	}
	clear(m.Data)
	return SecretEntry{Seq: m.Sequence, Ref: ref, Stored: m.Time}, nil
}
