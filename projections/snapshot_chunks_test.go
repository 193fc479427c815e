package projections

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/ledger/ledgertest"
)

// pieces returns b cut at cuts, as a decodeChunks source.
func pieces(b []byte, cuts []int) func() ([]byte, int64, error) {
	ends := append(slices.Clone(cuts), len(b))
	i, from := 0, 0
	return func() ([]byte, int64, error) {
		if i == len(ends) {
			return nil, 0, io.EOF
		}
		p := b[from:ends[i]]
		from = ends[i]
		i++
		return p, int64(len(b) - from), nil
	}
}

// everyCut returns cuts every n bytes of a b of size size.
func everyCut(n, size int) []int {
	var cuts []int
	for c := n; c < size; c += n {
		cuts = append(cuts, c)
	}
	return cuts
}

// TestSnapshotCodecChunks: a state cut at its items, however small the
// chunks, decodes chunk by chunk to the same state; cut anywhere else it
// does not decode.
func TestSnapshotCodecChunks(t *testing.T) {
	f := newSnapFixture(t, 8, 600)
	st := f.full(t)
	whole := encodeState(nil, st)
	for _, chunk := range []int{1, 7, 64, 1000, snapChunk} {
		e := encodeChunks(nil, st, chunk)
		if !bytes.Equal(e.b, whole) {
			t.Fatalf("encodeChunks(%d) differs from encodeState", chunk)
		}
		if chunk < 1000 && len(e.cuts) < 100 {
			t.Errorf("encodeChunks(%d): %d cuts, want many", chunk, len(e.cuts))
		}
		back, err := decodeChunks(pieces(e.b, e.cuts), nil, nil)
		if err != nil {
			t.Fatalf("decodeChunks(chunk %d) err = %v", chunk, err)
		}
		sameState(t, "chunks", st, back)
	}
	for _, n := range []int{3, 5, 11} {
		if _, err := decodeChunks(pieces(whole, everyCut(n, len(whole))), nil, nil); err == nil {
			t.Errorf("decodeChunks(cut every %d bytes) err = nil, want an error", n)
		}
	}
	e := encodeChunks(nil, st, 64)
	if _, err := decodeChunks(pieces(e.b, e.cuts[:len(e.cuts)/2]), nil, nil); err != nil {
		t.Errorf("decodeChunks(some cuts) err = %v, want nil", err)
	}
	if _, err := decodeChunks(pieces(append(slices.Clone(e.b), 0), e.cuts), nil, nil); err == nil {
		t.Error("decodeChunks(a byte too many) err = nil, want an error")
	}
}

// TestCompressStateAsChunks: the pieces Snapshot seals (compressState,
// which compresses each piece as it is encoded and keeps none of the
// encoded state) are, once decompressed, the pieces encodeChunks cuts,
// for chunks small and large.
func TestCompressStateAsChunks(t *testing.T) {
	f := newSnapFixture(t, 9, 600)
	st := f.full(t)
	z, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	for _, chunk := range []int{1, 64, 1000, snapChunk} {
		e := encodeChunks(nil, st, chunk)
		want := pieces(e.b, e.cuts)
		got, size, err := compressState(st, chunk)
		if err != nil || size != uint64(len(e.b)) || len(got) != len(e.cuts)+1 {
			t.Fatalf("compressState(%d) = %d pieces, size %d, err %v; want %d pieces, size %d", chunk, len(got), size, err, len(e.cuts)+1, len(e.b))
		}
		for i, c := range got {
			n, k := binary.Uvarint(c)
			plain, err := z.DecodeAll(c[max(k, 0):], nil)
			w, _, _ := want()
			if k <= 0 || err != nil || n != uint64(len(plain)) || !bytes.Equal(plain, w) {
				t.Fatalf("compressState(%d): piece %d decodes to %d bytes (declared %d, err %v), want the %d of encodeChunks", chunk, i, len(plain), n, err, len(w))
			}
		}
	}
}

// writeChunked writes a snapshot of f's ledger at its head in chunks of
// at least chunk bytes, sealed under f's REK, and returns its path and
// state.
func writeChunked(t *testing.T, f *snapFixture, chunk int, change func(enc []byte)) (string, *State) {
	t.Helper()
	return writeSealed(t, f, chunk, change, sealSnapshot)
}

// writeSealed is writeChunked with the sealing function seal.
func writeSealed(t *testing.T, f *snapFixture, chunk int, change func(enc []byte),
	seal func(io.Writer, snapHeader, []byte, []int, *hsm.REK) error) (string, *State) {
	t.Helper()
	st := f.full(t)
	sum, err := f.store.ChainAt(context.Background(), st.Seq)
	if err != nil {
		t.Fatal(err)
	}
	h := snapHeader{Seq: st.Seq, Chain: chainHex(sum)}
	for _, id := range slices.Sorted(maps.Keys(st.HSMs)) {
		h.Sealings = append(h.Sealings, snapSealing{KeyID: id, SealedREK: st.HSMs[id].SealedREK})
	}
	e := encodeChunks(nil, st, chunk)
	if change != nil {
		change(e.b)
	}
	var buf bytes.Buffer
	if err := seal(&buf, h, e.b, e.cuts, f.rek); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(f.dir, snapName(st.Seq))
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, st
}

// chunkSpans returns the offsets of the chunks of a snapshot file.
func chunkSpans(t *testing.T, b []byte) [][2]int {
	t.Helper()
	_, rest, err := readSnapHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	var spans [][2]int
	for at := len(b) - len(rest); at < len(b); {
		n := int(binary.BigEndian.Uint32(b[at:]))
		spans = append(spans, [2]int{at, at + 4 + n})
		at += 4 + n
	}
	return spans
}

// TestSnapshotFileChunks: a snapshot of many chunks is used; without a
// chunk, with two swapped or one repeated, or cut at a chunk's end, it is
// not.
func TestSnapshotFileChunks(t *testing.T) {
	f := newSnapFixture(t, 9, 500)
	path, st := writeChunked(t, f, 256, nil)
	back, _, err := readSnapshot(context.Background(), path, f.cfg().Unseal, nil, nil)
	if err != nil {
		t.Fatalf("readSnapshot err = %v", err)
	}
	sameState(t, "many chunks", st, back)
	f.startsFrom(t, "many chunks", st.Seq)

	orig, _ := os.ReadFile(path)
	spans := chunkSpans(t, orig)
	if len(spans) < 10 {
		t.Fatalf("%d chunks, want many", len(spans))
	}
	chunk := func(i int) []byte { return orig[spans[i][0]:spans[i][1]] }
	head := orig[:spans[0][0]]
	join := func(parts ...[]byte) []byte { return bytes.Join(append([][]byte{head}, parts...), nil) }
	cases := map[string][]byte{
		"second chunk dropped":   join(chunk(0), orig[spans[2][0]:]),
		"last chunk dropped":     orig[:spans[len(spans)-1][0]],
		"chunks 1 and 2 swapped": join(chunk(0), chunk(2), chunk(1), orig[spans[3][0]:]),
		"chunk 1 repeated":       join(chunk(0), chunk(1), orig[spans[1][0]:]),
		"cut inside chunk 3":     orig[:spans[3][0]+40],
	}
	for what, b := range cases {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := readSnapshot(context.Background(), path, f.cfg().Unseal, nil, nil); !errors.Is(err, errSnapshot) {
			t.Errorf("%s: readSnapshot err = %v, want errSnapshot", what, err)
		}
		f.startsFrom(t, what, 0)
	}
}

// TestSnapshotOldFormat: a file of snapshot format 1, and a state of an
// earlier codec version, are detected and not used: the projection
// replays the whole ledger.
func TestSnapshotOldFormat(t *testing.T) {
	f := newSnapFixture(t, 10, 300)
	path := f.snapshot(t)
	b, _ := os.ReadFile(path)
	old := append([]byte(snapMagicV1), b[len(snapMagic):]...)
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readSnapshot(context.Background(), path, f.cfg().Unseal, nil, nil); !errors.Is(err, errSnapshot) {
		t.Errorf("format 1: readSnapshot err = %v, want errSnapshot", err)
	}
	f.startsFrom(t, "format 1", 0)

	path, _ = writeChunked(t, f, 512, func(enc []byte) { enc[0] = codecVersion - 1 })
	if _, _, err := readSnapshot(context.Background(), path, f.cfg().Unseal, nil, nil); !errors.Is(err, errCodec) {
		t.Errorf("codec %d: readSnapshot err = %v, want errCodec", codecVersion-1, err)
	}
	f.startsFrom(t, "an earlier codec", 0)
}

// TestSnapshotPreloadFallsBack: a preloaded snapshot that is not of this
// ledger (its chain value differs) is not used, and the older one is;
// a preload stopped before it read anything leaves OpenWith to read the
// files.
func TestSnapshotPreloadFallsBack(t *testing.T) {
	f := newSnapFixture(t, 11, 300)
	newer := f.snapshot(t)
	b, _ := os.ReadFile(newer)
	os.Remove(newer)

	// Another ledger under the same HSM key, with a snapshot before the
	// sequence of f's, and then more events than f.
	other := &snapFixture{store: ledgertest.Open(t), w: f.w, g: newGen(12), dir: f.dir}
	init, rek := other.g.init(t, f.w)
	other.rek = rek
	appendAll(t, other.store, []ledger.Event{init})
	other.more(t, 100)
	older := other.snapshot(t)
	other.more(t, 400)
	if err := os.WriteFile(newer, b, 0o600); err != nil {
		t.Fatal(err)
	}
	other.startsFrom(t, "the newest snapshot is of another ledger", fileSeq(t, older))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pre := PreloadSnapshot(ctx, other.cfg(), nil)
	p, err := OpenWith(context.Background(), other.store, other.rek, nil, Options{Snapshots: other.cfg(), Preloaded: pre})
	if err != nil {
		t.Fatal(err)
	}
	defer p.crash()
	if got, want := p.StartedFrom(), fileSeq(t, older); got != want {
		t.Errorf("preload stopped: StartedFrom() = %d, want %d", got, want)
	}
}

// FuzzDecodeChunks: any bytes, cut anywhere, decode to a state or fail;
// they never panic, and a state that decodes encodes to bytes that decode
// to the same state.
func FuzzDecodeChunks(f *testing.F) {
	g := newGen(13)
	st := NewState()
	for range 200 {
		if err := st.Apply(g.next(f)); err != nil {
			continue
		}
	}
	e := encodeChunks(nil, st, 64)
	f.Add(e.b, uint16(64))
	f.Add(e.b[:len(e.b)/2], uint16(7))
	f.Fuzz(func(t *testing.T, b []byte, every16 uint16) {
		n := int(every16)%512 + 1
		back, err := decodeChunks(pieces(b, everyCut(n, len(b))), nil, nil)
		if err != nil {
			return
		}
		again, err := decodeState(encodeState(nil, back), nil)
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		sameState(t, "re-encoded", back, again)
	})
}
