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
// commands.Handler.Reconcile, in passes beside serving: the first as soon
// as the node starts, then one a minute. Each pass checks only what came
// after the previous one (its mark, kept in the data directory). The
// first pass checks what was stored before the node started, whatever its
// age: nothing of it can belong to a command still being carried out, so
// it is bounded by SECRETS' last sequence at the start instead of by a
// grace. A start after kill -9 with a million keys then neither reads them
// all again nor waits for the pass: the background passes settle young
// material that a live version references (commands.Reconcile), so right
// after a bulk of creations the mark trails them by about reconcileEvery,
// not reconcileAge (checking 5 minutes of creations took 2.6 s of CPU
// beside the start, and 4 s before serving earlier: BENCHMARKS.md). A cluster node
// still runs its first pass before it serves, with the cluster's grace,
// as before: a pass beside serving there is not measured yet (the one
// cluster test failure once put down to it had another cause, a hung
// writer's queue subscription: ledger/cluster_leader.go).
const (
	markFile = "reconciled.json"
	// reconcileEvery is the interval of the background passes.
	reconcileEvery = time.Minute
	// reconcileAge is how old material must be before a background pass
	// erases it unreferenced: a command being carried out stores its
	// material before it appends its event, well within this.
	reconcileAge = 5 * time.Minute
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

// firstPass is what the first pass checks: the material stored after the
// saved mark and up to SECRETS' last sequence when the node started
// (upTo). With upTo 0 (SECRETS was empty, or its last sequence could not
// be read: a cluster still electing) the first pass is an ordinary one,
// with its grace.
type firstPass struct {
	from commands.ReconcileMark
	upTo uint64
	ran  bool // it already ran (a cluster node, before serving); from is its mark
}

// reconcileStart reads where the first pass starts and ends, before the
// node serves.
func (n *Node) reconcileStart(ctx context.Context) firstPass {
	last, err := n.Store.SecretsLastSeq(ctx)
	if err != nil {
		n.log.Warn("sealed material stored before the start is checked with the usual grace: SECRETS is not available yet", "err", err)
		return firstPass{}
	}
	return firstPass{from: n.loadMark(ctx, last), upTo: last}
}

// Reconciled is closed once the first pass after the start has ended,
// whether or not it erased anything or failed (the next pass tries again).
func (n *Node) Reconciled() <-chan struct{} { return n.reconciled }

// startReconcile runs the first pass at once and then, if loop, a pass
// every reconcileEvery until the node closes.
func (n *Node) startReconcile(first firstPass, loop bool) {
	n.untilClose(context.Background(), func(ctx context.Context) {
		from := first.from
		if !first.ran {
			from = n.firstReconcile(ctx, first)
		}
		close(n.reconciled)
		if !loop {
			return
		}
		t := time.NewTicker(reconcileEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			from = n.pass(ctx, from, reconcileAge, 0)
		}
	})
}

// firstReconcile runs the first pass: bounded by what was stored before
// the start, without a grace; unbounded, with the usual one.
func (n *Node) firstReconcile(ctx context.Context, first firstPass) commands.ReconcileMark {
	grace := reconcileAge
	if first.upTo != 0 {
		grace = 0
	}
	return n.pass(ctx, first.from, grace, first.upTo)
}

// pass runs one pass from the mark from and saves the next. A failure is
// logged, and the next pass starts from the same mark.
func (n *Node) pass(ctx context.Context, from commands.ReconcileMark, grace time.Duration, upTo uint64) commands.ReconcileMark {
	m, erased, err := n.Handler.Reconcile(ctx, from, grace, upTo)
	if erased > 0 {
		n.log.Info("erased unreferenced sealed material", "count", erased)
	}
	if err != nil {
		if ctx.Err() == nil {
			n.log.Warn("reconcile sealed material", "err", err)
		}
		return from
	}
	if m != from {
		if err := n.saveMark(m); err != nil {
			n.log.Warn("cannot save the reconcile mark: the next start checks more", "err", err)
		}
	}
	return m
}
