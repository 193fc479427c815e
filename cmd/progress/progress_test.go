package progress

import (
	"bytes"
	"testing"
)

// TestBarOnlyOnTerminal: a bar writes nothing to what is not a terminal,
// and the Writer still counts.
func TestBarOnlyOnTerminal(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "backup", "messages")
	b.Progress(5, 10)
	b.Set(7, -1)
	b.Done()
	w := &Writer{W: &bytes.Buffer{}, Bar: New(&buf, "backup", "bytes")}
	w.Write([]byte("abc"))
	if buf.Len() != 0 || w.N != 3 || IsTerminal(&buf) {
		t.Errorf("bar wrote %q to a buffer (counted %d bytes), want nothing (and 3)", buf.String(), w.N)
	}
}
