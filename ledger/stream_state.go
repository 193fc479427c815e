package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// The server keeps each stream's state (its message counts, its blocks'
// sequences and its index of subjects) in one file beside the blocks,
// written now and then and at a clean shutdown. At start it reads the
// whole file, and only then checks that the newest block still ends with
// the record the file names; if not (any write after the file, which is
// every kill -9 during writes), it throws the state away and rebuilds it
// from the blocks. For a million keys the files are 27 MB (LEDGER) and
// 50 MB (SECRETS), and reading them for nothing took about 0.7 s of each
// start after kill -9 (BENCHMARKS.md, "Start after a bulk").
//
// dropStaleState does the server's own check first, on the file's last
// bytes alone, and removes a state file the server would throw away, so
// the server goes straight to the rebuild it would do anyway. The layout
// read is nats-server v2's: the file ends with the last block's index,
// the checksum of that block's last record (8 bytes) and the file's own
// hash (8 bytes); a record ends with its checksum (8 bytes), so a block
// file's last 8 bytes are its last record's. A block of fewer than 8
// bytes has no checksum (the server reads zeros). The check errs only
// towards keeping the file: when anything is unexpected the file stays
// and the server decides, as before.
const (
	streamStateFile = "index.db" // the server's streamStreamStateFile
	stateTail       = 16         // checksum of the last record, then the file's hash
	checksumLen     = 8
)

// dropStaleStates runs dropStaleState on every stream of a single node
// before its server starts. A file it cannot read or remove is left to
// the server, which reads it as before.
func (s *Store) dropStaleStates(dir string) {
	for _, stream := range []string{ledgerStream, secretsStream, auditStream} {
		dropped, err := dropStaleState(dir, stream)
		switch {
		case err != nil:
			s.log.Warn("stream state not checked before the start: the server reads it", "stream", stream, "err", err)
		case dropped:
			s.log.Info("stream state older than its newest block: removed, the server rebuilds it from the blocks", "stream", stream)
		}
	}
}

// dropStaleState removes the state file of stream under dir if the
// stream's newest block does not end with the record it names. It
// reports whether it removed it. No state file, or no block, is nothing
// to do; on an error nothing was removed.
func dropStaleState(dir, stream string) (bool, error) {
	msgs := msgsDir(dir, stream)
	want, err := stateChecksum(filepath.Join(msgs, streamStateFile))
	if err != nil || want == nil {
		return false, err
	}
	last, err := newestBlock(msgs)
	if err != nil || last == "" {
		return false, err
	}
	got, err := blockChecksum(last)
	if err != nil {
		return false, err
	}
	if bytes.Equal(got, want) {
		return false, nil
	}
	if err := os.Remove(filepath.Join(msgs, streamStateFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("ledger: %s: remove stale stream state: %w", stream, err)
	}
	return true, nil
}

// stateChecksum returns the last record's checksum that the state file
// fn names, or nil if there is no such file or it is too short to be one
// (the server removes those itself).
func stateChecksum(fn string) ([]byte, error) {
	b, size, err := readBeforeEnd(fn, stateTail)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("ledger: stream state: %w", err)
	case size < 32: // the server's least
		return nil, nil
	}
	return b, nil
}

// blockChecksum returns the last 8 bytes of block fn, or 8 zero bytes if
// it holds fewer.
func blockChecksum(fn string) ([]byte, error) {
	b, size, err := readBeforeEnd(fn, checksumLen)
	switch {
	case err != nil:
		return nil, fmt.Errorf("ledger: block: %w", err)
	case size < checksumLen:
		return make([]byte, checksumLen), nil
	}
	return b, nil
}

// readBeforeEnd returns the 8 bytes of file fn that start back bytes
// before its end (nil if it is shorter than back), and its size.
func readBeforeEnd(fn string, back int64) ([]byte, int64, error) {
	f, err := os.Open(fn)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if st.Size() < back {
		return nil, st.Size(), nil
	}
	b := make([]byte, checksumLen)
	if _, err := f.ReadAt(b, st.Size()-back); err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, err
	}
	return b, st.Size(), nil
}

// newestBlock returns the path of the block file of msgs with the
// highest index ("" if none).
func newestBlock(msgs string) (string, error) {
	idx, _, err := blockIndexes(msgs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("ledger: blocks: %w", err)
	case len(idx) == 0:
		return "", nil
	}
	return blockFile(msgs, idx[len(idx)-1]), nil
}
