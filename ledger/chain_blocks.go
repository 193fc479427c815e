package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/minio/highwayhash"
)

// ErrCorruptBlock reports a LEDGER or AUDIT block file that a read-only
// Open refuses before the server loads it.
var ErrCorruptBlock = errors.New("ledger: corrupt message block")

// Record layout of a nats-server v2 file store message block
// (server/filestore.go writeMsgRecord), all integers little-endian:
//
//	rl uint32 (bit 31: has headers) | seq uint64 (bit 63: erased, bit 62:
//	tombstone) | ts int64 | slen uint16 | subject | [hlen uint32 | headers]
//	| body | checksum [8]byte
//
// rl is the whole record's length. checksum = HighwayHash-64, keyed with
// SHA-256("<stream>-<block index>"), over seq ‖ ts ‖ subject ‖ headers ‖
// body.
const (
	blkHdrSize   = 22
	blkHashSize  = 8
	blkHasHdrs   = 1 << 31
	blkErased    = 1 << 63
	blkTombstone = 1 << 62
	blkMaxRecord = 32 << 20 // larger than any record the server accepts
)

// checkBlocks reads every message block of stream under dir and checks
// each record's framing and checksum, and that the sequences run from 1
// without gaps. A last record cut short (a write torn by a crash) is
// tolerated: the server drops it, and the chain checks find the loss.
//
// A read-only Open runs it before the server recovers the streams: the
// server's recovery trusts a record's sequence field and can exhaust
// memory on a corrupted one, and it may drop damaged records silently.
func checkBlocks(dir, stream string) error {
	msgs := msgsDir(dir, stream)
	idx, bad, err := blockIndexes(msgs)
	if err != nil {
		return fmt.Errorf("ledger: %s blocks: %w", stream, err)
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s/%s: unexpected file", ErrCorruptBlock, stream, bad[0])
	}
	next := uint64(1)
	for k, i := range idx {
		b, err := os.ReadFile(blockFile(msgs, i))
		if err != nil {
			return fmt.Errorf("ledger: %s blocks: %w", stream, err)
		}
		if next, err = checkBlock(b, stream, i, next, k == len(idx)-1); err != nil {
			return err
		}
	}
	return nil
}

// checkBlock checks the records of one block, whose first sequence must
// be next; it returns the sequence after its last record.
func checkBlock(b []byte, stream string, index, next uint64, lastBlock bool) (uint64, error) {
	key := sha256.Sum256([]byte(stream + "-" + strconv.FormatUint(index, 10)))
	hh, err := highwayhash.New64(key[:])
	if err != nil {
		return 0, err
	}
	le := binary.LittleEndian
	bad := func(off int, format string, args ...any) error {
		return fmt.Errorf("%w: %s block %d offset %d: %s", ErrCorruptBlock, stream, index, off, fmt.Sprintf(format, args...))
	}
	for off := 0; off < len(b); {
		rest := len(b) - off
		if rest < blkHdrSize {
			if lastBlock {
				return next, nil // torn last write
			}
			return 0, bad(off, "truncated record header")
		}
		h := b[off : off+blkHdrSize]
		rl, seq, slen := le.Uint32(h[0:]), le.Uint64(h[4:]), int(le.Uint16(h[20:]))
		hasHdrs := rl&blkHasHdrs != 0
		rl &^= blkHasHdrs
		if int(rl) > rest && lastBlock && rl <= blkMaxRecord {
			return next, nil // torn last write
		}
		shlen := slen
		if hasHdrs {
			shlen += 4
		}
		if rl < blkHdrSize+blkHashSize || int(rl) > rest || rl > blkMaxRecord || blkHdrSize+shlen > int(rl)-blkHashSize {
			return 0, bad(off, "bad record length %d", rl)
		}
		rec := b[off : off+int(rl)]
		data := rec[blkHdrSize : len(rec)-blkHashSize]
		hh.Reset()
		hh.Write(h[4:20])
		hh.Write(data[:slen])
		if hasHdrs {
			hlen := int(le.Uint32(data[slen:]))
			if slen+4+hlen > len(data) {
				return 0, bad(off, "bad header length %d", hlen)
			}
			hh.Write(data[slen+4:])
		} else {
			hh.Write(data[slen:])
		}
		if string(hh.Sum(nil)) != string(rec[len(rec)-blkHashSize:]) {
			return 0, bad(off, "checksum mismatch")
		}
		switch {
		case seq&blkTombstone != 0:
			// A deletion marker: the deleted sequence will be missing.
		case seq&blkErased != 0:
			return 0, bad(off, "erased message %d in an append-only stream", seq&^(blkErased|blkTombstone))
		case seq != next:
			return 0, bad(off, "sequence %d, want %d", seq, next)
		default:
			next++
		}
		off += int(rl)
	}
	return next, nil
}
