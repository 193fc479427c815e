package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/kmsledger/kmsledger/commands"
)

// The sealed material nothing references (a crash between storing it and
// appending its event, or during an erasure) is erased by
// commands.Handler.Reconcile: at start, before serving, and then in the
// background. Each pass checks only what came after the previous one (its
// mark, kept in the data directory), so a start after kill -9 with a
// million keys does not read them all again.
const (
	markFile = "reconciled.json"
	// reconcileEvery is the interval of the background passes.
	reconcileEvery = time.Minute
	// reconcileAge is how old material must be before a background pass
	// erases it unreferenced: a command being carried out stores its
	// material before it appends its event, well within this.
	reconcileAge = 5 * time.Minute
	// reconcileAtStartMax is the most material a start without a mark
	// checks before serving (a data directory of an earlier release, or
	// one whose mark was lost); with more, a first background pass checks
	// it all at once, while the node serves.
	reconcileAtStartMax = 100_000
)

// loadMark reads the mark of the last pass; a missing, unreadable or
// impossible one (beyond the streams' heads: another ledger's;
// secretsLast is SECRETS' last sequence) is the zero mark, which checks
// everything.
func (n *Node) loadMark(ctx context.Context, secretsLast uint64) commands.ReconcileMark {
	var m commands.ReconcileMark
	b, err := os.ReadFile(filepath.Join(n.cfg.Dir, markFile))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			n.log.Warn("cannot read the reconcile mark: checking all sealed material", "err", err)
		}
		return m
	}
	if err := json.Unmarshal(b, &m); err != nil {
		n.log.Warn("unreadable reconcile mark: checking all sealed material", "err", err)
		return commands.ReconcileMark{}
	}
	head, err := n.Store.Head(ctx)
	if err != nil || m.Ledger > head || m.Secrets > secretsLast {
		n.log.Warn("reconcile mark beyond the streams: checking all sealed material", "mark", m)
		return commands.ReconcileMark{}
	}
	return m
}

// saveMark writes m atomically (a crash leaves the old mark or the new).
func (n *Node) saveMark(m commands.ReconcileMark) error {
	b, _ := json.Marshal(m)
	tmp := filepath.Join(n.cfg.Dir, markFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(n.cfg.Dir, markFile))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save the reconcile mark: %w", err)
	}
	return nil
}

// reconcile runs one pass from the saved mark and saves the next.
func (n *Node) reconcile(ctx context.Context, from commands.ReconcileMark, grace time.Duration) (commands.ReconcileMark, error) {
	m, erased, err := n.Handler.Reconcile(ctx, from, grace)
	if erased > 0 {
		n.log.Info("erased unreferenced sealed material", "count", erased)
	}
	if err != nil {
		return from, err
	}
	if m != from {
		if err := n.saveMark(m); err != nil {
			n.log.Warn("cannot save the reconcile mark: the next start checks more", "err", err)
		}
	}
	return m, nil
}

// reconcileAtStart runs the pass before serving, from the saved mark. It
// returns nil, having done nothing, when there is no mark and more
// material than reconcileAtStartMax: the first background pass does it.
func (n *Node) reconcileAtStart(ctx context.Context) (*commands.ReconcileMark, error) {
	last, err := n.Store.SecretsLastSeq(ctx)
	if err != nil {
		return nil, err
	}
	from := n.loadMark(ctx, last)
	if from == (commands.ReconcileMark{}) && last > reconcileAtStartMax {
		n.log.Info("no reconcile mark: sealed material is checked in the background", "messages", last)
		return nil, nil
	}
	m, err := n.reconcile(ctx, from, 0)
	return &m, err
}

// startReconcile runs a pass every reconcileEvery until the node closes;
// with no mark, the first at once.
func (n *Node) startReconcile(mark *commands.ReconcileMark) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var from commands.ReconcileMark
	if mark != nil {
		from = *mark
	}
	go func() {
		defer close(done)
		t := time.NewTicker(reconcileEvery)
		defer t.Stop()
		for first := mark == nil; ; first = false {
			if !first {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
			m, err := n.reconcile(ctx, from, reconcileAge)
			if err != nil && ctx.Err() == nil {
				n.log.Warn("reconcile sealed material", "err", err)
			}
			from = m
		}
	}()
	n.onClose(func() error { cancel(); <-done; return nil })
}
