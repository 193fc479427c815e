package projections

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"slices"
)

// The spill file keeps the encoded states of the time-travel index
// (asof_index.go) on disk, so that RAM holds only where they are. It is a
// pure cache that lives as long as the process: it is created (0600) in
// the projection's directory and unlinked at once, so the kernel frees it
// when the process ends and nothing ever needs cleaning.
//
// It holds the snapshot codec's encoding of past States (snapshot_codec.go):
// enclaves, keys with the secret references and fingerprints of their
// versions, identities, policies, the hashes of Transit secret ids and
// tokens, and the REK and root key sealed under the HSMs and the REK. These
// are the facts the LEDGER's own files hold. No key material: a State holds
// references to sealed material in SECRETS, never the material (state.go,
// key.go; unsealed keys live only in the Projection's cache, cache.go).
//
// Layout: blocks appended one after another, each
//
//	sum (4 bytes, big endian) ‖ payload
//
// where sum is the CRC-32C of kind ‖ seq ‖ name ‖ payload: kind is 'g' for
// the global part of a state and 'e' for an enclave, seq (8 bytes, big
// endian) the sequence of the state, name the enclave's ("" for 'g'). The
// payload's length is kept in RAM. Since the sum binds what the block is
// and where it belongs, a block that is cut, changed or read at the wrong
// place fails the check instead of decoding into a wrong state.

// errSpill marks a failure of the spill file (I/O, a block that does not
// check or decode): the index is rebuilt, and the query answered by a
// full replay meanwhile, never from the block.
var errSpill = errors.New("projections: time-travel spill file")

// errIndexClosed: the Projection is closed, its index with it; queries
// replay the ledger.
var errIndexClosed = fmt.Errorf("%w: closed", errSpill)

// Kinds of block.
const (
	blockGlobal  = 'g'
	blockEnclave = 'e'
	blockHeader  = 4 // the sum
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// asofLoc is where a block's payload is: n bytes after the header at off;
// n == 0 is no block (an enclave that does not exist).
type asofLoc struct {
	off int64
	n   uint32
}

// spillFile is one spill file; a query reading it holds a reference, so
// that a file replaced (compacted, rebuilt) is closed only after them.
type spillFile struct {
	f       *os.File
	size    int64 // bytes written
	refs    int   // queries reading it (under asofIndex.mu)
	retired bool  // replaced: closed when refs drops to 0
}

// createSpill creates an unlinked spill file in dir (created if missing),
// or else in the temporary directory.
func createSpill(dir string) (*spillFile, error) {
	var errs []error
	for _, d := range slices.Compact([]string{dir, os.TempDir()}) {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			errs = append(errs, err)
			continue
		}
		f, err := os.CreateTemp(d, "kmsledger-timetravel-*.spill")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Remove(f.Name()); err != nil {
			// Not unlinked (not a POSIX file system?): do not use a file
			// that would outlive the process.
			f.Close()
			errs = append(errs, err)
			continue
		}
		return &spillFile{f: f}, nil
	}
	return nil, fmt.Errorf("%w: create: %w", errSpill, errors.Join(errs...))
}

// blockSum is the sum of a block (see the layout above).
func blockSum(kind byte, seq uint64, name string, payload []byte) uint32 {
	var h [9]byte
	h[0] = kind
	binary.BigEndian.PutUint64(h[1:], seq)
	sum := crc32.Update(0, castagnoli, h[:])
	sum = crc32.Update(sum, castagnoli, []byte(name))
	return crc32.Update(sum, castagnoli, payload)
}

// newBlock returns an empty block to append a payload to.
func newBlock() []byte { return make([]byte, blockHeader, 256) }

// append writes block, whose first blockHeader bytes are reserved for the
// sum (newBlock), at the end of the file.
func (s *spillFile) append(kind byte, seq uint64, name string, block []byte) (asofLoc, error) {
	n := len(block) - blockHeader
	if n <= 0 || n > math.MaxUint32 {
		return asofLoc{}, fmt.Errorf("%w: block of %d bytes", errSpill, n)
	}
	binary.BigEndian.PutUint32(block, blockSum(kind, seq, name, block[blockHeader:]))
	return s.appendRaw(block)
}

// appendRaw writes a block whose sum is set.
func (s *spillFile) appendRaw(block []byte) (asofLoc, error) {
	if _, err := s.f.WriteAt(block, s.size); err != nil {
		return asofLoc{}, fmt.Errorf("%w: write: %w", errSpill, err)
	}
	loc := asofLoc{off: s.size, n: uint32(len(block) - blockHeader)}
	s.size += int64(len(block))
	return loc, nil
}

// read returns the payload of the block at loc, checked, in buf's memory
// (grown if needed).
func (s *spillFile) read(loc asofLoc, kind byte, seq uint64, name string, buf []byte) ([]byte, error) {
	b, err := s.readRaw(loc, kind, seq, name, buf)
	if err != nil {
		return nil, err
	}
	return b[blockHeader:], nil
}

// readRaw returns the block at loc, header included, checked.
func (s *spillFile) readRaw(loc asofLoc, kind byte, seq uint64, name string, buf []byte) ([]byte, error) {
	if loc.n == 0 {
		return nil, fmt.Errorf("%w: no block", errSpill)
	}
	need := blockHeader + int(loc.n)
	buf = slices.Grow(buf[:0], need)[:need]
	if n, err := s.f.ReadAt(buf, loc.off); n < need {
		return nil, fmt.Errorf("%w: read %d bytes at %d: %w", errSpill, need, loc.off, err)
	}
	if binary.BigEndian.Uint32(buf) != blockSum(kind, seq, name, buf[blockHeader:]) {
		return nil, fmt.Errorf("%w: the block at %d (%c %q at %d) does not check", errSpill, loc.off, kind, name, seq)
	}
	return buf, nil
}

// retire marks s replaced and closes it once no query reads it; under
// asofIndex.mu.
func (s *spillFile) retire() {
	if s == nil || s.retired {
		return
	}
	s.retired = true
	if s.refs == 0 {
		s.f.Close()
	}
}

// release ends a query's reading of s; under asofIndex.mu.
func (s *spillFile) release() {
	s.refs--
	if s.retired && s.refs == 0 {
		s.f.Close()
	}
}
