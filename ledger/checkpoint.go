// Signed checkpoints of the hash chains.
//
// Summary: a checkpoint is a system.checkpoint.v1 event on ledger._.system
// that records, for LEDGER and AUDIT, the last sequence and its chain
// value (chain.go), signed with Ed25519 (RFC 8032) by the ledger's
// signing key. The signing key is created at initialisation, sealed under
// the REK (which the HSM seals) and recorded with its public key in a
// system.signing_key.v1 event (commands/signing.go); so whoever cannot use
// the HSM can neither sign a checkpoint nor substitute a key the verifier
// would accept.
//
// Signed message (ASCII, every line ends with '\n'):
//
//	kmsledger checkpoint v1
//	key <key_id>
//	time <RFC 3339 time, UTC, nanoseconds>
//	stream LEDGER <seq> <chain, 64 hex digits>
//	stream AUDIT <seq> <chain, 64 hex digits>
//
// key_id = "ed25519:" ‖ hex(SHA-256(public key))[0:16]. The LEDGER entry
// is the sequence just before the checkpoint event itself: the Store
// writes the checkpoint under the LEDGER append lock. Every field of the
// checkpoint's envelope is derived from the payload (id and command id
// "checkpoint-<its seq>", actor "kmsledger:checkpoint", time = payload
// time), and the verifier insists on the canonical JSON encoding, so no
// byte of a checkpoint message is unsigned.
//
// Witness: after each checkpoint the Store writes <Dir>/last-checkpoint.json
// (seq, Prev and leaf of the checkpoint message), so that a LEDGER cut
// short after the last checkpoint is detected.

package ledger

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Event types of the checkpoint signing.
const (
	TypeCheckpoint = "system.checkpoint.v1"
	TypeSigningKey = "system.signing_key.v1"
)

// CheckpointActor is the actor of checkpoint events.
const CheckpointActor = "kmsledger:checkpoint"

// SigningAlgorithm is the only checkpoint signature algorithm.
const SigningAlgorithm = "Ed25519"

// Checkpoint is the payload of system.checkpoint.v1.
type Checkpoint struct {
	Time      time.Time          `json:"time"`
	KeyID     string             `json:"key_id"`
	Streams   []CheckpointStream `json:"streams"` // LEDGER, then AUDIT
	Signature []byte             `json:"signature"`
}

// CheckpointStream is the head of one stream in a checkpoint.
type CheckpointStream struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
	Chain  string `json:"chain"` // hex chain_seq; 64 zeros for seq 0
}

// SigningKey is the payload of system.signing_key.v1: the public key of
// the checkpoint signing key and its private key (the 32-byte RFC 8032
// seed) sealed with REK.Seal under aad "kmsledger/signing-key/v1".
type SigningKey struct {
	KeyID            string `json:"key_id"`
	Algorithm        string `json:"algorithm"`          // SigningAlgorithm
	PublicKey        []byte `json:"public_key"`         // 32 bytes
	SealedPrivateKey []byte `json:"sealed_private_key"` // REK.Seal(seed)
}

// KeyID returns the id of an Ed25519 public key:
// "ed25519:" + the first 16 hex digits of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return "ed25519:" + hex.EncodeToString(h[:8])
}

// SignedMessage returns the bytes a checkpoint's signature covers.
func (c *Checkpoint) SignedMessage() []byte {
	var b strings.Builder
	b.WriteString("kmsledger checkpoint v1\n")
	b.WriteString("key " + c.KeyID + "\n")
	b.WriteString("time " + c.Time.UTC().Format(time.RFC3339Nano) + "\n")
	for _, s := range c.Streams {
		b.WriteString("stream " + s.Stream + " " + strconv.FormatUint(s.Seq, 10) + " " + s.Chain + "\n")
	}
	return []byte(b.String())
}

// sign fills KeyID and Signature with signer, an Ed25519 private key.
func (c *Checkpoint) sign(signer crypto.Signer) error {
	pub, ok := signer.Public().(ed25519.PublicKey)
	if !ok {
		return fmt.Errorf("ledger: checkpoint signer is not Ed25519: %w", ErrInvalid)
	}
	c.KeyID = KeyID(pub)
	sig, err := signer.Sign(nil, c.SignedMessage(), crypto.Hash(0))
	if err != nil {
		return fmt.Errorf("ledger: sign checkpoint: %w", err)
	}
	c.Signature = sig
	return nil
}

// Verify checks the signature with the trusted public keys, by key id.
func (c *Checkpoint) Verify(keys map[string]ed25519.PublicKey) error {
	pub, ok := keys[c.KeyID]
	if !ok {
		return fmt.Errorf("ledger: checkpoint signed by untrusted key %q", c.KeyID)
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, c.SignedMessage(), c.Signature) {
		return fmt.Errorf("ledger: bad checkpoint signature (key %s)", c.KeyID)
	}
	return nil
}

// checkpointEvent is the envelope of a checkpoint at LEDGER sequence seq.
func checkpointEvent(cp *Checkpoint, seq uint64) (Event, error) {
	payload, err := json.Marshal(cp)
	if err != nil {
		return Event{}, fmt.Errorf("ledger: encode checkpoint: %w", err)
	}
	id := "checkpoint-" + strconv.FormatUint(seq, 10)
	return Event{
		Type: TypeCheckpoint, ID: id, Time: cp.Time, Actor: CheckpointActor,
		Aggregate: SystemSubject(), CommandID: id, Payload: payload,
	}, nil
}

// parseCheckpoint decodes the checkpoint message m and checks that it is
// exactly what checkpointEvent encodes for it (canonical form, derived
// envelope fields and headers).
func parseCheckpoint(m *RawMessage) (*Checkpoint, error) {
	var ev Event
	if err := json.Unmarshal(m.Body, &ev); err != nil {
		return nil, fmt.Errorf("checkpoint envelope: %w", err)
	}
	var cp Checkpoint
	if err := json.Unmarshal(ev.Payload, &cp); err != nil {
		return nil, fmt.Errorf("checkpoint payload: %w", err)
	}
	want, err := checkpointEvent(&cp, m.Seq)
	if err != nil {
		return nil, err
	}
	body, err := encodeEvent(want)
	if err != nil {
		return nil, err
	}
	switch {
	case string(body) != string(m.Body):
		return nil, fmt.Errorf("checkpoint is not in canonical form")
	case m.Subject != want.Aggregate || m.Type != want.Type || m.MsgID != want.CommandID:
		return nil, fmt.Errorf("checkpoint headers do not match its envelope")
	case len(cp.Streams) != 2 || cp.Streams[0].Stream != ledgerStream || cp.Streams[1].Stream != auditStream:
		return nil, fmt.Errorf("checkpoint does not list LEDGER and AUDIT")
	}
	for _, s := range cp.Streams {
		if _, ok := parseSum(s.Chain); !ok {
			return nil, fmt.Errorf("checkpoint chain of %s is not 64 hex digits", s.Stream)
		}
	}
	return &cp, nil
}
