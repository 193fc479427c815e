package projections

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"slices"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/kmsledger/kmsledger/hsm"
)

// sealWith returns a sealing function of format 3 whose chunks hold what
// frame makes of each piece of the state.
func sealWith(frame func(piece []byte) []byte) func(io.Writer, snapHeader, []byte, []int, *hsm.REK) error {
	return func(w io.Writer, h snapHeader, state []byte, cuts []int, rek *hsm.REK) error {
		return sealFormat(w, snapV3, h, state, cuts, rek, frame)
	}
}

// sealV2 seals a snapshot of format 2, as the version before wrote it.
func sealV2(w io.Writer, h snapHeader, state []byte, cuts []int, rek *hsm.REK) error {
	return sealFormat(w, snapV2, h, state, cuts, rek, nil)
}

func zstdFrame(t *testing.T, b []byte) []byte {
	t.Helper()
	z, err := zstd.NewWriter(nil, zstd.WithZeroFrames(true))
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	return z.EncodeAll(b, nil)
}

// TestSnapshotFormat2StillRead: a snapshot written by the version before
// (format 2, not compressed) is read and used, so that an upgrade does
// not replay the whole ledger; the next snapshot is of format 3, and it
// does not open relabelled as format 2.
func TestSnapshotFormat2StillRead(t *testing.T) {
	f := newSnapFixture(t, 21, 400)
	path, st := writeSealed(t, f, 512, nil, sealV2)
	b, _ := os.ReadFile(path)
	if !bytes.HasPrefix(b, []byte(snapV2.magic)) {
		t.Fatalf("file starts %q, want format 2", b[:10])
	}
	back, _, err := readSnapshot(context.Background(), path, f.cfg().Unseal, nil, nil)
	if err != nil {
		t.Fatalf("readSnapshot(format 2) err = %v", err)
	}
	sameState(t, "format 2", st, back)
	f.startsFrom(t, "format 2", st.Seq)

	f.more(t, 5)
	path = f.snapshot(t)
	b, _ = os.ReadFile(path)
	if !bytes.HasPrefix(b, []byte(snapV3.magic)) {
		t.Fatalf("new snapshot starts %q, want format 3", b[:10])
	}
	// Relabelled as format 2, a format-3 file does not open: the
	// format's label is in every associated data.
	os.WriteFile(path, append([]byte(snapV2.magic), b[len(snapV3.magic):]...), 0o600)
	if _, _, err := readSnapshot(context.Background(), path, f.cfg().Unseal, nil, nil); !errors.Is(err, errSnapshot) {
		t.Errorf("format 3 relabelled 2: readSnapshot err = %v, want errSnapshot", err)
	}
}

// TestSnapshotCompressed: a snapshot of format 3 is smaller than the same
// state in format 2 by more than half, and reads back to the same state.
func TestSnapshotCompressed(t *testing.T) {
	f := newSnapFixture(t, 22, 3000)
	v2, _ := writeSealed(t, f, snapChunk, nil, sealV2)
	b2, _ := os.ReadFile(v2)
	os.Remove(v2)
	v3, st := writeChunked(t, f, snapChunk, nil)
	b3, _ := os.ReadFile(v3)
	if len(b3)*2 > len(b2) {
		t.Errorf("format 3: %d bytes, format 2: %d; want less than half", len(b3), len(b2))
	}
	back, _, err := readSnapshot(context.Background(), v3, f.cfg().Unseal, nil, nil)
	if err != nil {
		t.Fatalf("readSnapshot err = %v", err)
	}
	sameState(t, "format 3", st, back)
	t.Logf("format 2: %d bytes, format 3: %d", len(b2), len(b3))
}

// TestSnapshotHostileFrames: chunks that open under the data key but lie
// about their piece (a length past the header's size, a frame that
// decodes to more or fewer bytes than declared, a cut frame, no frame,
// two frames, no length) are refused before anything is decoded from
// them, and the projection replays the ledger instead; so is a header
// whose size was changed.
func TestSnapshotHostileFrames(t *testing.T) {
	f := newSnapFixture(t, 23, 500)
	noise := make([]byte, 64)
	crand.Read(noise)
	at := func(n int, frame []byte) []byte { return append(binary.AppendUvarint(nil, uint64(n)), frame...) }
	cases := map[string]func([]byte) []byte{
		"length past the state":       func(p []byte) []byte { return at(len(p)+1<<30, zstdFrame(t, p)) },
		"frame larger than declared":  func(p []byte) []byte { return at(len(p), zstdFrame(t, append(bytes.Clone(p), 1, 2, 3))) },
		"frame smaller than declared": func(p []byte) []byte { return at(len(p), zstdFrame(t, p[:len(p)-1])) },
		"frame cut":                   func(p []byte) []byte { fr := zstdFrame(t, p); return at(len(p), fr[:len(fr)-4]) },
		"not a frame":                 func(p []byte) []byte { return at(len(p), noise) },
		"two frames":                  func(p []byte) []byte { return at(len(p), append(zstdFrame(t, p), zstdFrame(t, p)...)) },
		"no length":                   func([]byte) []byte { return nil },
	}
	for what, frame := range cases {
		path, _ := writeSealed(t, f, 256, nil, sealWith(frame))
		if _, _, err := readSnapshot(context.Background(), path, f.cfg().Unseal, nil, nil); !errors.Is(err, errSnapshot) {
			t.Errorf("%s: readSnapshot err = %v, want errSnapshot", what, err)
		}
		f.startsFrom(t, what, 0)
		os.Remove(path)
	}

	// The honest frame, and then its header's size changed.
	path, st := writeSealed(t, f, 256, nil, sealWith(func(p []byte) []byte { return at(len(p), zstdFrame(t, p)) }))
	f.startsFrom(t, "honest frames", st.Seq)
	for _, d := range []int{-1, 1} {
		orig, _ := os.ReadFile(path)
		rewriteHeader(t, path, func(h *snapHeader) { h.Size = uint64(int(h.Size) + d) })
		if _, _, err := readSnapshot(context.Background(), path, f.cfg().Unseal, nil, nil); !errors.Is(err, errSnapshot) {
			t.Errorf("size %+d: readSnapshot err = %v, want errSnapshot", d, err)
		}
		f.startsFrom(t, "size changed", 0)
		os.WriteFile(path, orig, 0o600)
	}
}

// sealSnapshot writes the snapshot of state (encoded, cut at cuts: see
// encodeChunks) for header h (Seq, Chain and Sealings set), sealed under
// rek, to w, chunk by chunk, in the format written (3), as
// Snapshot does from the pieces compressState makes.
func sealSnapshot(w io.Writer, h snapHeader, state []byte, cuts []int, rek *hsm.REK) error {
	c, err := newPieceCompressor()
	if err != nil {
		return err
	}
	defer c.close()
	return sealFormat(w, snapV3, h, state, cuts, rek, func(piece []byte) []byte { return c.compress(nil, piece) })
}

// sealFormat writes a snapshot of state, cut at cuts, in format f;
// compress (format 3) turns a piece of the state into what its chunk
// seals.
func sealFormat(w io.Writer, f *snapFormat, h snapHeader, state []byte, cuts []int, rek *hsm.REK,
	compress func([]byte) []byte) error {
	h.Size = 0
	if f.compressed {
		h.Size = uint64(len(state))
	}
	ends := append(cuts[:len(cuts):len(cuts)], len(state))
	pieces := make([][]byte, 0, len(ends))
	from := 0
	for _, end := range ends {
		piece := state[from:end]
		if f.compressed {
			piece = slices.Clone(compress(piece))
		}
		pieces = append(pieces, piece)
		from = end
	}
	return sealPieces(w, f, h, pieces, rek)
}
