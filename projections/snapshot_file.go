package projections

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/klauspost/compress/zstd"
	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
)

// A snapshot file is
//
//	"KMSLSNAP3\n" | u32 header length | header (JSON) | chunks
//
// The header is plaintext and holds only what is public or sealed: the
// sequence and chain value the state reflects, the size of the encoded
// state, the REK sealings the node unseals the REK with before it has a
// state, and the data key sealed under the REK (associated data: the
// sequence, chain value and size). Each chunk is u32 length |
// AES-256-GCM(data key, nonce = chunk index, associated data = sequence
// | chain value | size | chunk index | last flag) of uvarint(length) |
// a zstd frame of a piece of the encoded state: at least snapChunk
// bytes (but the last), ending where an item of the state starts
// (snapshot_codec.go), so that a loader decodes each chunk once it is
// opened and never holds the whole state's bytes. Changing the sequence,
// chain value or size, dropping, reordering or cutting chunks, or another
// REK, makes opening fail; a piece whose length goes past the size, or
// whose frame does not decompress to that length, is refused before it
// is decoded.
//
// The state is compressed before it is sealed: names, identities and
// hex strings repeat, and a snapshot of a million keys takes about a
// quarter of the bytes of format 2. Nothing in a snapshot is secret from
// the node that reads it (no key material, only its references), and
// the file's size is all compression could reveal, to someone who can
// read the data directory.
//
// Format 2 ("KMSLSNAP2\n") is format 3 without the size and without
// compression; it is still read, so that the first start after an
// upgrade does not replay the whole ledger. Format 1 ("KMSLSNAP1\n")
// cut the encoded state every 1 MiB, anywhere, and is not read (the
// projection replays the whole ledger, and the next snapshot is of
// format 3).

const (
	snapChunk = 1 << 20
	// maxSnapHeader bounds the header a loader reads.
	maxSnapHeader = 1 << 20
	snapMagicV1   = "KMSLSNAP1\n"
	// maxSnapPiece bounds what one chunk of format 3 decompresses to: a
	// piece is snapChunk bytes and one item, and no item comes near it.
	maxSnapPiece = 1 << 30
)

// snapFormat is what differs between the formats a loader reads.
type snapFormat struct {
	magic      string
	aad        string // label of every associated data
	compressed bool   // chunks are zstd frames; the header has the size
	delta      bool   // a delta: the header has its base
}

var (
	snapV2 = &snapFormat{magic: "KMSLSNAP2\n", aad: "kmsledger/projection-snapshot/v2"}
	snapV3 = &snapFormat{magic: "KMSLSNAP3\n", aad: "kmsledger/projection-snapshot/v3", compressed: true}
	// snapDelta is format 3 for a delta (snapshot_delta.go).
	snapDelta = &snapFormat{magic: "KMSLDELT1\n", aad: "kmsledger/projection-snapshot/delta-v1", compressed: true, delta: true}
	// snapMagic is the magic of the format written.
	snapMagic = snapV3.magic
)

// errSnapshot reports a snapshot file that cannot be used.
var errSnapshot = errors.New("projections: unusable snapshot")

// snapHeader is a snapshot file's plaintext header.
type snapHeader struct {
	Seq       uint64        `json:"seq"`
	Chain     string        `json:"chain"`          // chain_seq of LEDGER, hex
	Size      uint64        `json:"size,omitempty"` // format 3: bytes of the encoded state
	Sealings  []snapSealing `json:"sealings"`
	SealedDEK []byte        `json:"sealed_dek"`
	Base      *snapBase     `json:"base,omitempty"` // a delta's base

	format *snapFormat // from the magic
}

// snapBase names the full snapshot a delta is based on.
type snapBase struct {
	Seq   uint64 `json:"seq"`
	Chain string `json:"chain"`
}

// snapSealing is the REK sealed under one HSM, as the ledger has it.
type snapSealing struct {
	KeyID     string `json:"key_id"`
	SealedREK []byte `json:"sealed_rek"`
}

func (h *snapHeader) aad(chunk uint64, last bool) []byte {
	b := make([]byte, 0, len(h.format.aad)+8+len(h.Chain)+8+9)
	b = append(b, h.format.aad...)
	b = binary.BigEndian.AppendUint64(b, h.Seq)
	b = append(b, h.Chain...)
	if h.format.compressed {
		b = binary.BigEndian.AppendUint64(b, h.Size)
	}
	if h.format.delta && h.Base != nil {
		b = binary.BigEndian.AppendUint64(b, h.Base.Seq)
		b = append(b, h.Base.Chain...)
	}
	if chunk == ^uint64(0) {
		return b // the data key's
	}
	b = binary.BigEndian.AppendUint64(b, chunk)
	if last {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return b
}

// compressState encodes s and compresses each piece (cut as encodeChunks
// cuts) as soon as it is encoded, into what a chunk of format 3 seals:
// the whole encoded state (280 MB for a million keys) is never held, only
// one piece of it and the compressed pieces (a quarter of it). size is
// the encoded state's length.
func compressState(s *State, chunk int) (pieces [][]byte, size uint64, err error) {
	return compressItems(s, chunk, (*encoder).items)
}

// compressItems is compressState for the state that items writes after
// the global part.
func compressItems(s *State, chunk int, items func(*encoder, *State)) (pieces [][]byte, size uint64, err error) {
	c, err := newPieceCompressor()
	if err != nil {
		return nil, 0, err
	}
	defer c.close()
	// A second goroutine compresses each piece while the encoder, which
	// holds the projection's read lock, goes on to the next: writers wait
	// for the encoding, not for the encoding and the compression in turn.
	// The encoder reuses its piece, so the compressor gets a copy; copies
	// come back to be filled again, and at most pipeDepth wait.
	work, free, done := make(chan []byte, pipeDepth), make(chan []byte, pipeDepth), make(chan struct{})
	go func() {
		defer close(done)
		for piece := range work {
			pieces = append(pieces, c.compress(make([]byte, 0, len(piece)/3), piece))
			select {
			case free <- piece[:0]:
			default: // enough copies to fill already
			}
		}
	}()
	encodePieces(s, chunk, items, func(piece []byte) {
		size += uint64(len(piece))
		var buf []byte
		select {
		case buf = <-free:
		default:
		}
		work <- append(buf, piece...)
	})
	close(work)
	<-done
	return pieces, size, nil
}

// pipeDepth is how many encoded pieces may wait for the compressor.
const pipeDepth = 2

// pieceCompressor turns a piece of the encoded state into what a chunk
// of format 3 seals: uvarint(length of the piece) | a zstd frame of it.
type pieceCompressor struct{ z *zstd.Encoder }

func newPieceCompressor() (*pieceCompressor, error) {
	z, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
	if err != nil {
		return nil, err
	}
	return &pieceCompressor{z: z}, nil
}

// compress appends piece's chunk form to dst.
func (c *pieceCompressor) compress(dst, piece []byte) []byte {
	return c.z.EncodeAll(piece, binary.AppendUvarint(dst, uint64(len(piece))))
}

func (c *pieceCompressor) close() { c.z.Close() }

// sealPieces writes a snapshot in format f whose chunks seal pieces as
// they are (compressed already in format 3, h.Size set).
func sealPieces(w io.Writer, f *snapFormat, h snapHeader, pieces [][]byte, rek *hsm.REK) error {
	h.format = f
	dek := make([]byte, 32)
	defer clear(dek)
	if _, err := rand.Read(dek); err != nil {
		return err
	}
	var err error
	if h.SealedDEK, err = rek.Seal(dek, h.aad(^uint64(0), false)); err != nil {
		return err
	}
	gcm, err := newGCM(dek)
	if err != nil {
		return err
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return err
	}
	buf := append([]byte(f.magic), binary.BigEndian.AppendUint32(nil, uint32(len(hj)))...)
	if _, err := w.Write(append(buf, hj...)); err != nil {
		return err
	}
	for i, piece := range pieces {
		if uint64(len(piece)+gcm.Overhead()) > math.MaxUint32 {
			return errors.New("projections: snapshot item too large")
		}
		buf = binary.BigEndian.AppendUint32(buf[:0], uint32(len(piece)+gcm.Overhead()))
		buf = gcm.Seal(buf, nonce(uint64(i)), piece, h.aad(uint64(i), i == len(pieces)-1))
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func nonce(i uint64) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n[4:], i)
	return n
}

// readSnapHeader reads the header of a snapshot file and returns it with
// the rest of the file.
func readSnapHeader(b []byte) (snapHeader, []byte, error) {
	r := bytes.NewReader(b)
	h, _, err := readHeader(r)
	if err != nil {
		return h, nil, err
	}
	return h, b[len(b)-r.Len():], nil
}

// readHeader reads the magic and the header of a snapshot and returns the
// header and the bytes read.
func readHeader(r io.Reader) (snapHeader, int64, error) {
	var h snapHeader
	pre := make([]byte, len(snapMagic)+4)
	if _, err := io.ReadFull(r, pre); err != nil {
		return h, 0, fmt.Errorf("%w: not a snapshot file", errSnapshot)
	}
	switch string(pre[:len(snapMagic)]) {
	case snapV3.magic:
		h.format = snapV3
	case snapDelta.magic:
		h.format = snapDelta
	case snapV2.magic:
		h.format = snapV2
	case snapMagicV1:
		return h, 0, fmt.Errorf("%w: format 1, from an earlier version", errSnapshot)
	default:
		return h, 0, fmt.Errorf("%w: not a snapshot file", errSnapshot)
	}
	n := binary.BigEndian.Uint32(pre[len(snapMagic):])
	if n > maxSnapHeader {
		return h, 0, fmt.Errorf("%w: header too large", errSnapshot)
	}
	hj := make([]byte, n)
	if _, err := io.ReadFull(r, hj); err != nil {
		return h, 0, fmt.Errorf("%w: cut short in the header", errSnapshot)
	}
	if err := json.Unmarshal(hj, &h); err != nil {
		return h, 0, fmt.Errorf("%w: header: %v", errSnapshot, err)
	}
	if (h.Base != nil) != h.format.delta || (h.Base != nil && h.Base.Seq >= h.Seq) {
		return h, 0, fmt.Errorf("%w: header: a base must be named by a delta, and only by one, and come before it", errSnapshot)
	}
	return h, int64(len(pre)) + int64(n), nil
}

// chunkReader opens the chunks of a snapshot one at a time, into one
// buffer: each chunk's plaintext is valid until the next call of next.
type chunkReader struct {
	h           *snapHeader
	r           *bufio.Reader
	gcm         cipher.AEAD
	z           *zstd.Decoder // format 3
	left        int64         // bytes of the file after what was read
	size        uint64        // format 3: bytes of the state after what was returned
	i           uint64
	last        bool // the last chunk was opened
	ct, pt, raw []byte
}

// openSnapshot returns the reader of the chunks of a snapshot with header
// h, read from r under rek; left is the size of the file after the
// header. The caller closes it.
func openSnapshot(h *snapHeader, r *bufio.Reader, rek *hsm.REK, left int64) (*chunkReader, error) {
	dek, err := rek.Unseal(h.SealedDEK, h.aad(^uint64(0), false), hsm.InsecureSecretAccess())
	if err != nil {
		return nil, fmt.Errorf("%w: its data key does not open under this root encryption key (another REK, or a changed header)", errSnapshot)
	}
	defer clear(dek)
	gcm, err := newGCM(dek)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errSnapshot, err)
	}
	c := &chunkReader{h: h, r: r, gcm: gcm, left: left, size: h.Size}
	if h.format.compressed {
		// DecodeAll never writes past the capacity it is given: the
		// piece's declared length, checked against the state's first.
		if c.z, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecodeAllCapLimit(true)); err != nil {
			return nil, fmt.Errorf("%w: %v", errSnapshot, err)
		}
	}
	return c, nil
}

func (c *chunkReader) close() {
	if c.z != nil {
		c.z.Close()
	}
}

// next opens the next chunk and returns its plaintext and at least the
// bytes of the state after it (format 2: the file's bytes after it;
// format 3: exactly the state's bytes after it); io.EOF after the last
// chunk.
func (c *chunkReader) next() ([]byte, int64, error) {
	if c.last {
		return nil, 0, io.EOF
	}
	var pre [4]byte
	if _, err := io.ReadFull(c.r, pre[:]); err != nil {
		return nil, 0, fmt.Errorf("%w: cut short before chunk %d", errSnapshot, c.i)
	}
	n := int64(binary.BigEndian.Uint32(pre[:]))
	if c.left -= 4; n > c.left {
		return nil, 0, fmt.Errorf("%w: chunk %d cut short", errSnapshot, c.i)
	}
	c.ct = slices.Grow(c.ct[:0], int(n))[:n]
	if _, err := io.ReadFull(c.r, c.ct); err != nil {
		return nil, 0, fmt.Errorf("%w: chunk %d cut short", errSnapshot, c.i)
	}
	c.left -= n
	_, err := c.r.Peek(1)
	last := errors.Is(err, io.EOF)
	if err != nil && !last {
		return nil, 0, fmt.Errorf("%w: %v", errSnapshot, err)
	}
	c.pt, err = c.gcm.Open(c.pt[:0], nonce(c.i), c.ct, c.h.aad(c.i, last))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: chunk %d does not open (changed, cut or moved)", errSnapshot, c.i)
	}
	c.i++
	c.last = last
	if c.z == nil {
		return c.pt, max(c.left, 0), nil
	}
	return c.decompress()
}

// decompress returns the piece of the state in c.pt (format 3), whose
// declared length must fit in what is left of the state and which must
// decode to exactly that length; the last chunk ends the state.
func (c *chunkReader) decompress() ([]byte, int64, error) {
	i := c.i - 1
	n, k := binary.Uvarint(c.pt)
	if k <= 0 || n > c.size || n > maxSnapPiece {
		return nil, 0, fmt.Errorf("%w: chunk %d declares more than the %d bytes left of the state (or than %d)", errSnapshot, i, c.size, maxSnapPiece)
	}
	c.raw = slices.Grow(c.raw[:0], int(n))
	out, err := c.z.DecodeAll(c.pt[k:], c.raw[:0:n])
	if err != nil || uint64(len(out)) != n {
		return nil, 0, fmt.Errorf("%w: chunk %d does not decompress to its declared %d bytes", errSnapshot, i, n)
	}
	c.size -= n
	if c.last && c.size != 0 {
		return nil, 0, fmt.Errorf("%w: the state ends %d bytes short of its size", errSnapshot, c.size)
	}
	return out, int64(min(c.size, math.MaxInt64)), nil
}

// writeFileAtomic writes what write writes to path: a temporary file in
// the same directory, synced, renamed over path, and the directory
// synced.
func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err = write(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// chainHex is the text form of a chain value in a header.
func chainHex(s ledger.Sum) string { return s.String() }
