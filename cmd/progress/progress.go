// Package progress draws progress bars on standard error, only when it is
// a terminal (github.com/schollz/progressbar); elsewhere they write nothing.
package progress

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Bar is a progress bar on a terminal, or nothing.
type Bar struct {
	w    io.Writer
	desc string
	unit string // what is counted; "bytes" = bytes

	mu sync.Mutex
	pb *progressbar.ProgressBar
}

// New returns a bar drawn on w (standard error) only if it is a
// terminal; otherwise its methods do nothing. unit names what is counted
// ("bytes": a byte count).
func New(w io.Writer, desc, unit string) *Bar {
	if !IsTerminal(w) {
		return &Bar{}
	}
	return &Bar{w: w, desc: desc, unit: unit}
}

// Set moves the bar to done of total (total < 0: unknown).
func (b *Bar) Set(done, total int64) {
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

// Progress is Set for counts (it fits ledger.Progress).
func (b *Bar) Progress(done, total uint64) { b.Set(int64(done), int64(total)) }

// Done removes the bar.
func (b *Bar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pb != nil {
		b.pb.Finish()
		b.pb = nil
	}
}

// Writer counts the bytes written through it to W and shows them on Bar.
type Writer struct {
	W   io.Writer
	N   int64
	Bar *Bar
}

// Write implements io.Writer.
func (c *Writer) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.N += int64(n)
	c.Bar.Set(c.N, -1)
	return n, err
}
