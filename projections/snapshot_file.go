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
	"os"
	"path/filepath"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
)

// A snapshot file is
//
//	"KMSLSNAP1\n" | u32 header length | header (JSON) | chunks
//
// The header is plaintext and holds only what is public or sealed: the
// sequence and chain value the state reflects, the REK sealings the node
// unseals the REK with before it has a state, and the data key sealed
// under the REK (associated data: the sequence and chain value). Each
// chunk is u32 length | AES-256-GCM(data key, nonce = chunk index,
// associated data = sequence | chain value | chunk index | last flag) of
// at most snapChunk bytes of the encoded state. Changing the sequence or
// chain value, dropping, reordering or cutting chunks, or another REK,
// makes opening fail.

const (
	snapMagic = "KMSLSNAP1\n"
	snapChunk = 1 << 20
	snapAAD   = "kmsledger/projection-snapshot/v1"
	// maxSnapHeader bounds the header a loader reads.
	maxSnapHeader = 1 << 20
)

// errSnapshot reports a snapshot file that cannot be used.
var errSnapshot = errors.New("projections: unusable snapshot")

// snapHeader is a snapshot file's plaintext header.
type snapHeader struct {
	Seq       uint64        `json:"seq"`
	Chain     string        `json:"chain"` // chain_seq of LEDGER, hex
	Sealings  []snapSealing `json:"sealings"`
	SealedDEK []byte        `json:"sealed_dek"`
}

// snapSealing is the REK sealed under one HSM, as the ledger has it.
type snapSealing struct {
	KeyID     string `json:"key_id"`
	SealedREK []byte `json:"sealed_rek"`
}

func (h *snapHeader) aad(chunk uint64, last bool) []byte {
	b := make([]byte, 0, len(snapAAD)+8+len(h.Chain)+9)
	b = append(b, snapAAD...)
	b = binary.BigEndian.AppendUint64(b, h.Seq)
	b = append(b, h.Chain...)
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

// sealSnapshot writes the snapshot of state (encoded) for header h (Seq,
// Chain and Sealings set), sealed under rek, to w, chunk by chunk.
func sealSnapshot(w io.Writer, h snapHeader, state []byte, rek *hsm.REK) error {
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
	buf := append([]byte(snapMagic), binary.BigEndian.AppendUint32(nil, uint32(len(hj)))...)
	if _, err := w.Write(append(buf, hj...)); err != nil {
		return err
	}
	buf = make([]byte, 0, 4+snapChunk+gcm.Overhead())
	for i := uint64(0); ; i++ {
		n := min(len(state), snapChunk)
		last := n == len(state)
		buf = binary.BigEndian.AppendUint32(buf[:0], uint32(n+gcm.Overhead()))
		buf = gcm.Seal(buf, nonce(i), state[:n], h.aad(i, last))
		if _, err := w.Write(buf); err != nil {
			return err
		}
		state = state[n:]
		if last {
			return nil
		}
	}
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
	h, err := readHeader(r)
	if err != nil {
		return h, nil, err
	}
	return h, b[len(b)-r.Len():], nil
}

// readHeader reads the magic and the header of a snapshot.
func readHeader(r io.Reader) (snapHeader, error) {
	var h snapHeader
	pre := make([]byte, len(snapMagic)+4)
	if _, err := io.ReadFull(r, pre); err != nil || string(pre[:len(snapMagic)]) != snapMagic {
		return h, fmt.Errorf("%w: not a snapshot file", errSnapshot)
	}
	n := binary.BigEndian.Uint32(pre[len(snapMagic):])
	if n > maxSnapHeader {
		return h, fmt.Errorf("%w: header too large", errSnapshot)
	}
	hj := make([]byte, n)
	if _, err := io.ReadFull(r, hj); err != nil {
		return h, fmt.Errorf("%w: cut short in the header", errSnapshot)
	}
	if err := json.Unmarshal(hj, &h); err != nil {
		return h, fmt.Errorf("%w: header: %v", errSnapshot, err)
	}
	return h, nil
}

// openSnapshot reads the chunks of a snapshot with header h from r and
// opens them under rek; sizeHint is the file's size. It returns the
// encoded state.
func openSnapshot(h snapHeader, r *bufio.Reader, rek *hsm.REK, sizeHint int64) ([]byte, error) {
	dek, err := rek.Unseal(h.SealedDEK, h.aad(^uint64(0), false), hsm.InsecureSecretAccess())
	if err != nil {
		return nil, fmt.Errorf("%w: its data key does not open under this root encryption key (another REK, or a changed header)", errSnapshot)
	}
	defer clear(dek)
	gcm, err := newGCM(dek)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errSnapshot, err)
	}
	state := make([]byte, 0, max(sizeHint, 0)) // the plaintext is shorter: Open appends in place
	ct := make([]byte, snapChunk+gcm.Overhead())
	var pre [4]byte
	for i := uint64(0); ; i++ {
		if _, err := io.ReadFull(r, pre[:]); err != nil {
			return nil, fmt.Errorf("%w: cut short before chunk %d", errSnapshot, i)
		}
		n := binary.BigEndian.Uint32(pre[:])
		if int(n) > len(ct) {
			return nil, fmt.Errorf("%w: chunk %d too large", errSnapshot, i)
		}
		if _, err := io.ReadFull(r, ct[:n]); err != nil {
			return nil, fmt.Errorf("%w: chunk %d cut short", errSnapshot, i)
		}
		_, err := r.Peek(1)
		last := errors.Is(err, io.EOF)
		if err != nil && !last {
			return nil, fmt.Errorf("%w: %v", errSnapshot, err)
		}
		state, err = gcm.Open(state, nonce(i), ct[:n], h.aad(i, last))
		if err != nil {
			return nil, fmt.Errorf("%w: chunk %d does not open (changed, cut or moved)", errSnapshot, i)
		}
		if last {
			return state, nil
		}
	}
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
