package main

// Progress bars on standard error, drawn only when it is a terminal.

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// bar is a progress bar on a terminal, or nothing.
type bar struct {
	w    io.Writer
	desc string
	unit string // "" = a count of items; "bytes" = bytes

	mu sync.Mutex
	pb *progressbar.ProgressBar
}

// newBar returns a bar drawn on w (standard error) only if it is a
// terminal; otherwise its methods do nothing.
func newBar(w io.Writer, desc, unit string) *bar {
	if !isTerminal(w) {
		return &bar{}
	}
	return &bar{w: w, desc: desc, unit: unit}
}

// set moves the bar to done of total (total < 0: unknown).
func (b *bar) set(done, total int64) {
	if b.w == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pb == nil {
		opts := []progressbar.Option{
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetDescription(b.desc),
			progressbar.OptionThrottle(100 * time.Millisecond),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSetPredictTime(total > 0),
		}
		if b.unit == "bytes" {
			opts = append(opts, progressbar.OptionShowBytes(true))
		} else {
			opts = append(opts, progressbar.OptionSetItsString(b.unit), progressbar.OptionShowIts())
		}
		b.pb = progressbar.NewOptions64(total, opts...)
	}
	if total > 0 && b.pb.GetMax64() != total {
		b.pb.ChangeMax64(total)
	}
	b.pb.Set64(done)
}

// progress adapts the bar to ledger.Progress.
func (b *bar) progress(done, total uint64) { b.set(int64(done), int64(total)) }

// done removes the bar.
func (b *bar) done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pb != nil {
		b.pb.Finish()
		b.pb = nil
	}
}

// countingWriter counts the bytes written through it and shows them on
// a bar.
type countingWriter struct {
	w   io.Writer
	n   int64
	bar *bar
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.bar.set(c.n, -1)
	return n, err
}
