package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/minio/highwayhash"
)

// How many single-byte changes the tamper tests make. Each run starts an
// embedded server on a fresh copy of a data dir (about 30 ms), except
// those refused by the block check before the server starts.
const (
	tamperRuns   = 1000 // TestRandomByteChanges
	resealedRuns = 300  // TestChainCatchesResealedChanges
)

// tamperTargets lists the files holding the history of LEDGER and AUDIT
// in a data dir, with their sizes: the message blocks and the stream
// metadata. The stream state files (msgs/index.db) are left out: they are
// a cache the server checks with its own checksum and rebuilds from the
// blocks, so a change there cannot change the history.
func tamperTargets(tb testing.TB, dir string) (files []string, sizes []int64) {
	tb.Helper()
	for _, stream := range []string{ledgerStream, auditStream} {
		root := filepath.Join(dir, "jetstream", "$G", "streams", stream)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() == "index.db" {
				return err
			}
			fi, err := d.Info()
			if err != nil || fi.Size() == 0 {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			files, sizes = append(files, rel), append(sizes, fi.Size())
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return files, sizes
}

// TestRandomByteChanges changes one random byte of the history files of a
// cleanly stopped server, a thousand times, each time in a fresh copy of
// the data dir: every change is refused by the store when it opens the
// streams or reported by Verify, never silently accepted.
func TestRandomByteChanges(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	buildChained(t, src, 9)
	if _, err := verifyDir(t, src, VerifyOptions{Keys: testKeys()}); err != nil {
		t.Fatalf("Verify of the untouched dir err = %v", err)
	}
	files, sizes := tamperTargets(t, src)
	var total int64
	for _, n := range sizes {
		total += n
	}
	rng := rand.New(rand.NewPCG(1, 2)) // fixed: a failure can be replayed
	changes := make([]change, tamperRuns)
	for i := range changes {
		off := rng.Int64N(total)
		f := 0
		for off >= sizes[f] {
			off -= sizes[f]
			f++
		}
		changes[i] = change{file: files[f], off: off, xor: byte(1 + rng.IntN(255))}
	}

	counts := runChanges(t, src, changes, func(b []byte, c change) { b[c.off] ^= c.xor })
	t.Logf("%d changes to %s (%d bytes): %s", tamperRuns, strings.Join(files, ", "), total, counts)
}

// change is one byte change: data[off] ^= xor in file (relative to the
// data dir); rec is the record holding off, for TestChainCatchesResealedChanges.
type change struct {
	file string
	off  int64
	xor  byte
	rec  *blockRecord
}

// tamperCounts classifies the outcomes of runChanges.
type tamperCounts struct {
	blocks, refused, unreadable, chain int
	same                               int // a compressed audit frame that still gives the same records
}

func (c tamperCounts) String() string {
	return fmt.Sprintf("%d refused as corrupt blocks, %d streams refused by the server, %d messages unreadable, %d detected by the chain, %d left the records as they were",
		c.blocks, c.refused, c.unreadable, c.chain, c.same)
}

// runChanges applies each change to a fresh copy of src (two at a time)
// and verifies the copy: every change must be refused or detected.
func runChanges(t *testing.T, src string, changes []change, apply func([]byte, change)) tamperCounts {
	t.Helper()
	var (
		mu     sync.Mutex
		counts tamperCounts
		wg     sync.WaitGroup
		next   = make(chan change)
	)
	for range 2 {
		wg.Go(func() {
			for c := range next {
				dir := t.TempDir()
				if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
					t.Error(err)
					continue
				}
				path := filepath.Join(dir, c.file)
				b, err := os.ReadFile(path)
				if err != nil {
					t.Error(err)
					continue
				}
				orig := bytes.Clone(b)
				apply(b, c)
				if err := os.WriteFile(path, b, 0o600); err != nil {
					t.Error(err)
					continue
				}
				_, err = verifyDir(t, dir, VerifyOptions{Keys: testKeys()})
				var te *TamperError
				mu.Lock()
				switch {
				case err == nil && sameRecords(orig, b, c):
					counts.same++
				case err == nil:
					t.Errorf("byte %d of %s ^ %#x: accepted, want refused or detected", c.off, c.file, c.xor)
				case errors.Is(err, ErrCorruptBlock):
					counts.blocks++
				case errors.As(err, &te) && te.Err != nil:
					counts.unreadable++
				case errors.Is(err, ErrTampered):
					counts.chain++
				default:
					counts.refused++
				}
				mu.Unlock()
				os.RemoveAll(dir)
			}
		})
	}
	for _, c := range changes {
		next <- c
	}
	close(next)
	wg.Wait()
	return counts
}

// blockRecord is one record of a message block, with the byte ranges the
// hash chain covers: the sequence, the subject, the values of the
// Kmsledger-Type, Nats-Msg-Id and Kmsledger-Prev headers, and the body.
type blockRecord struct {
	stream  string
	index   uint64
	start   int
	length  int
	covered [][2]int // absolute [from, to) offsets in the block
	zbody   [2]int   // the body of a compressed audit batch, else zero
}

// sameRecords reports whether a change to the body of a compressed audit
// batch left the lines it decompresses to as they were. The chain covers
// those lines, not the frame (audit_compress.go): a change to a part of
// the frame the decoder does not need (its window size, say) changes no
// record, and nothing has to detect it.
func sameRecords(orig, changed []byte, c change) bool {
	if c.rec == nil || c.off < int64(c.rec.zbody[0]) || c.off >= int64(c.rec.zbody[1]) {
		return false
	}
	a, errA := inflateAudit(orig[c.rec.zbody[0]:c.rec.zbody[1]])
	b, errB := inflateAudit(changed[c.rec.zbody[0]:c.rec.zbody[1]])
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

// blockRecords parses block 1 of stream in dir.
func blockRecords(tb testing.TB, dir, stream string) (file string, recs []*blockRecord) {
	tb.Helper()
	file = filepath.Join("jetstream", "$G", "streams", stream, "msgs", "1.blk")
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		tb.Fatal(err)
	}
	le := binary.LittleEndian
	for off := 0; off < len(b); {
		rl := int(le.Uint32(b[off:]) &^ blkHasHdrs)
		slen := int(le.Uint16(b[off+20:]))
		r := &blockRecord{stream: stream, index: 1, start: off, length: rl}
		subj := off + blkHdrSize
		r.covered = append(r.covered, [2]int{off + 4, off + 12}, [2]int{subj, subj + slen})
		hlen := int(le.Uint32(b[subj+slen:]))
		hdrs := subj + slen + 4
		for i := hdrs; i < hdrs+hlen; {
			end := i + bytes.Index(b[i:hdrs+hlen], []byte("\r\n"))
			line := string(b[i:end])
			if line == TypeHeader+": "+TypeAuditBatchZ {
				r.zbody = [2]int{hdrs + hlen, off + rl - blkHashSize}
			}
			for _, k := range []string{TypeHeader, "Nats-Msg-Id", PrevHeader} {
				if strings.HasPrefix(line, k+": ") {
					r.covered = append(r.covered, [2]int{i + len(k) + 2, end})
				}
			}
			i = end + 2
		}
		r.covered = append(r.covered, [2]int{hdrs + hlen, off + rl - blkHashSize})
		recs = append(recs, r)
		off += rl
	}
	return file, recs
}

// reseal recomputes the checksum of r after a change, as someone who
// knows the file store's format would.
func reseal(b []byte, r *blockRecord) {
	key := sha256.Sum256([]byte(r.stream + "-" + strconv.FormatUint(r.index, 10)))
	hh, _ := highwayhash.New64(key[:])
	rec := b[r.start : r.start+r.length]
	slen := int(binary.LittleEndian.Uint16(rec[20:]))
	hh.Write(rec[4:20])
	hh.Write(rec[blkHdrSize : blkHdrSize+slen])
	hh.Write(rec[blkHdrSize+slen+4 : len(rec)-blkHashSize])
	copy(rec[len(rec)-blkHashSize:], hh.Sum(nil))
}

// TestChainCatchesResealedChanges changes a random byte that the hash
// chain covers (sequence, subject, type, message id, Prev header, body)
// and recomputes the record's checksum, so that the file store accepts
// the record: the chain, its checkpoints and the witness must catch every
// one of resealedRuns such changes that changes a record. A compressed
// audit batch is covered as the lines it decompresses to, so a change to
// its frame that gives the same lines (the window size byte of the frame
// header, 0x00 -> 0x38, was one; the header's unused bit is another)
// changes no record and passes; it is counted apart.
func TestChainCatchesResealedChanges(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	buildChained(t, src, 9)
	type span struct {
		file     string
		from, to int64
		rec      *blockRecord
	}
	var (
		changes []change
		spans   []span
		total   int64
	)
	for _, stream := range []string{ledgerStream, auditStream} {
		file, recs := blockRecords(t, src, stream)
		for _, r := range recs {
			for _, c := range r.covered {
				spans = append(spans, span{file, int64(c[0]), int64(c[1]), r})
				total += int64(c[1] - c[0])
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range resealedRuns {
		off := rng.Int64N(total)
		i := 0
		for off >= spans[i].to-spans[i].from {
			off -= spans[i].to - spans[i].from
			i++
		}
		sp := spans[i]
		changes = append(changes, change{file: sp.file, off: sp.from + off, xor: byte(1 + rng.IntN(255)), rec: sp.rec})
	}
	counts := runChanges(t, src, changes, func(b []byte, c change) {
		b[c.off] ^= c.xor
		reseal(b, c.rec)
	})
	t.Logf("%d resealed changes to the %d bytes the chain covers: %s", resealedRuns, total, counts)
}

// TestSameRecords: only a frame change that decompresses to the very same
// lines counts as no change.
func TestSameRecords(t *testing.T) {
	lines := bytes.Repeat([]byte(`{"time":"2026-12-06T10:00:00Z","request":{"path":"/v1/key/create/k"}}`+"\n"), 20)
	frame := deflateAudit(lines)
	rec := &blockRecord{zbody: [2]int{0, len(frame)}}
	changed := func(off int, xor byte) []byte { b := bytes.Clone(frame); b[off] ^= xor; return b }
	// Bit 4 of the frame header descriptor is unused: decoders ignore it
	// (RFC 8878, 3.1.1.1.1.4).
	if !sameRecords(frame, changed(4, 0x10), change{off: 4, rec: rec}) {
		t.Error("the frame header's unused bit set: want the same lines")
	}
	last := len(frame) - 1
	if sameRecords(frame, changed(last, 0x01), change{off: int64(last), rec: rec}) {
		t.Error("a change at the end of the frame counted as the same lines")
	}
	if sameRecords(frame, changed(4, 0x10), change{off: 4, rec: &blockRecord{}}) {
		t.Error("a change outside any compressed body counted as the same lines")
	}
	if sameRecords(frame, changed(4, 0x10), change{off: 4}) {
		t.Error("a change without its record counted as the same lines")
	}
}
