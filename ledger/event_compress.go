package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/klauspost/compress/s2"
)

// A single node stores the body of a LEDGER event as a frame: eventMagic,
// then one S2 block of its JSON envelope compressed against eventDict,
// the field names, the event types and the subject prefixes every event
// repeats. A key creation's 516 bytes of JSON take about 290
// (BENCHMARKS.md); S2 and not zstd, which took 240 but cost 15 µs an
// event against S2's 2, on the path of every creation. The hash chain
// covers the JSON, not the frame (RawMessage.Plain), so checks, exports,
// backups and every reader see the same event whatever the storage, and
// a frame that does not decompress is reported as a changed message
// (undecodableDigest).
//
// eventMagic cannot start JSON. Nodes of a cluster (or of an external
// NATS cluster) keep writing JSON, as they keep writing TypeAuditBatch: a
// node of an earlier version would read a frame as a malformed event.

// eventMagic starts every frame: a NUL, 'e', and the version of eventDict.
// A new dictionary gets a new version, and the old one stays readable.
const eventMagic = "\x00e\x01"

// eventDict is the dictionary of eventMagic's version: an envelope and
// the payload keys, types and values that recur (a key creation last, the
// most frequent event). It must never change: the frames on disk need it
// as it is.
const eventDict = `{"type":"enclave.created.v1","id":"","time":"","actor":"h1:","enclave":"","aggregate":"ledger._sys.enclave.",` +
	`"command_id":"","payload":{"name":""}}` +
	`{"type":"identity.created.v1","aggregate":"ledger..identity.h1:","payload":{"identity":"h1:","privilege":"admin",` +
	`"privilege":"user","service_account":true,"parent":"h1:","tags":{}}}` +
	`{"type":"identity.deleted.v1","payload":{"identity":"h1:","service_accounts":["h1:"]}}` +
	`{"type":"identity.policy_assigned.v1","payload":{"identity":"h1:","policy":""}}` +
	`{"type":"policy.created.v1","aggregate":"ledger..policy.","payload":{"name":"","allow":{},"deny":{}}}` +
	`{"type":"key.disabled.v1","type":"key.enabled.v1","type":"key.deletion_scheduled.v1","type":"key.restored.v1",` +
	`"type":"key.name_released.v1","type":"key.transit_configured.v1","payload":{"reason":""}}` +
	`{"type":"key.version_deleted.v1","payload":{"name":"","version":1,"fingerprint":""}}` +
	`{"type":"key.deleted.v1","payload":{"name":"","versions":[1],"fingerprints":[""]}}` +
	`{"type":"key.imported.v1","payload":{"source":{"kind":"api","kind":"kes-fs","kind":"kes-vault","location":"","name":"",` +
	`"created_at":"","created_by":"h1:","format":""},"replaced":true}}` +
	`{"type":"key.created.v1","id":"","time":"2026-01-01T00:00:00.000000000Z","actor":"h1:","enclave":"",` +
	`"aggregate":"ledger..key.","command_id":"","payload":{"name":"","version":1,"type":"ChaCha20","type":"AES256",` +
	`"secret_ref":"","fingerprint":""}}`

// eventMaxPlain bounds what an event frame may decompress to, and which
// events are compressed: the server's message limit is 1 MiB.
const eventMaxPlain = 1 << 20

// errEventFrame reports an event frame that does not decompress within
// eventMaxPlain.
var errEventFrame = errors.New("ledger: event frame does not decompress")

// eventCodec is eventDict as S2 uses it; a frame's first repeat offset
// is the start of the key creation.
var eventCodec = sync.OnceValue(func() *s2.Dict {
	repeat := strings.LastIndex(eventDict, `{"type":"key.created.v1"`)
	d := s2.NewDict(append(binary.AppendUvarint(nil, uint64(repeat)), eventDict...))
	if d == nil {
		panic("ledger: the event dictionary is not one") // only if eventDict were edited badly
	}
	return d
})

// isEventFrame reports whether a stored body is a frame: it starts with a
// NUL, which JSON cannot. A frame of a kind this version does not know is
// malformed (inflateEvent).
func isEventFrame(body []byte) bool { return len(body) > 0 && body[0] == 0 }

// deflateEvent returns the stored form of an event's JSON body published
// on subject: a key frame if it has one (event_keyframe.go), else an S2
// frame when that is shorter, else the JSON itself.
func deflateEvent(body []byte, subject string) []byte {
	if len(body) > eventMaxPlain {
		return body
	}
	if f, ok := keyFrameOf(body, subject); ok {
		return f
	}
	buf := make([]byte, len(eventMagic)+s2.MaxEncodedLen(len(body)))
	block := eventCodec().Encode(buf[len(eventMagic):], body)
	if len(eventMagic)+len(block) >= len(body) {
		return body
	}
	copy(buf, eventMagic)
	return append(buf[:len(eventMagic)], block...) // Encode wrote block in place: a copy onto itself
}

// inflateEvent returns the JSON of an event frame stored on subject.
func inflateEvent(frame []byte, subject string) ([]byte, error) {
	switch {
	case isKeyFrame(frame):
		return inflateKeyFrame(frame, subject)
	case !strings.HasPrefix(string(frame), eventMagic):
		return nil, fmt.Errorf("%w: unknown frame %q", errEventFrame, frame[:min(len(frame), 3)])
	}
	block := frame[len(eventMagic):]
	n, err := s2.DecodedLen(block)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %v", errEventFrame, err)
	case n > eventMaxPlain:
		return nil, fmt.Errorf("%w: %d bytes, more than %d", errEventFrame, n, eventMaxPlain)
	}
	plain, err := eventCodec().Decode(make([]byte, n), block)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errEventFrame, err)
	}
	if len(plain) == 0 || plain[0] != '{' {
		return nil, fmt.Errorf("%w: not an event", errEventFrame)
	}
	return plain, nil
}

// eventJSON returns the JSON of a LEDGER body stored on subject, as
// stored or inflated.
func eventJSON(body []byte, subject string) ([]byte, error) {
	if isEventFrame(body) {
		return inflateEvent(body, subject)
	}
	return body, nil
}
