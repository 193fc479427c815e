package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// Checked is a command with an authorisation check that runs inside the
// decision: under the command's scope lock, against the caught-up state
// (in a batch, the state the earlier commands leave), before anything is
// decided, sealed or written. Check must only read the state. A Check
// error fails the command, or the whole batch, and nothing is written;
// it is returned as is.
type Checked struct {
	Command
	Check func(*projections.State) error
}

// check unwraps a Checked command and runs its check.
func check(s *projections.State, cmd Command) (Command, error) {
	c, ok := cmd.(Checked)
	if !ok {
		return cmd, nil
	}
	if c.Check != nil {
		if err := c.Check(s); err != nil {
			return nil, err
		}
	}
	if _, nested := c.Command.(Checked); nested || c.Command == nil {
		return nil, refuse(ErrInvalidArgument, "checked command %T", c.Command)
	}
	return c.Command, nil
}

// ExecuteBatch runs cmds for actor all or nothing, and returns the
// sequence of the last event. A single command goes through Execute.
//
// Several commands are decided one after the other, each (its Check
// included) against the state the earlier ones leave, under the scope
// locks of all of them (taken in name order) and against the caught-up
// state; only when every command is decided is anything stored: the
// sealed material of all of them, then all events in one atomic append
// (ledger.AppendBatch). Any refusal, and any failure to store, leaves
// nothing behind: no event, no sealed material. A batch of more than
// ledger.MaxBatch commands, or one that would store material under a name
// an earlier command of it destroys, is refused with ErrInvalidArgument.
func (h *Handler) ExecuteBatch(ctx context.Context, actor string, cmds []Command) (uint64, error) {
	switch {
	case len(cmds) == 0:
		return 0, nil
	case len(cmds) == 1:
		return h.Execute(ctx, actor, "", cmds[0])
	case len(cmds) > ledger.MaxBatch:
		return 0, refuse(ErrInvalidArgument, "%d commands in one batch: at most %d", len(cmds), ledger.MaxBatch)
	}
	var scopes []string
	for _, c := range cmds {
		scopes = append(scopes, c.scope())
	}
	slices.Sort(scopes)
	for _, sc := range slices.Compact(scopes) {
		l := h.scopeLock(sc)
		l.Lock()
		defer l.Unlock()
	}

	for attempt := 1; ; attempt++ {
		if err := h.proj.CatchUp(ctx); err != nil {
			return 0, err
		}
		var (
			ds  []Decision
			err error
		)
		h.proj.View(func(s *projections.State) { ds, err = h.decideBatch(s, actor, cmds) })
		if err != nil {
			return 0, err
		}
		last, err := h.commitBatch(ctx, ds)
		if errors.Is(err, ledger.ErrConflict) && attempt < maxAttempts {
			h.log.Debug("batch conflict, retrying", "commands", len(cmds), "attempt", attempt)
			continue
		}
		if err != nil {
			return 0, err
		}
		if err := h.proj.WaitFor(ctx, last); err != nil {
			return last, err
		}
		for _, d := range ds {
			h.prime(d) // prime.go
		}
		for _, d := range ds {
			if revokes(d.Event.Type) {
				h.propagate(ctx, last, d.Event.Type)
				break
			}
		}
		return last, nil
	}
}

// decideBatch decides cmds one after the other on a fork of s. The
// expectation of an event whose subject an earlier event of the batch
// writes is dropped: the earlier event's expectation, checked in the
// same atomic append, covers it.
func (h *Handler) decideBatch(s *projections.State, actor string, cmds []Command) ([]Decision, error) {
	f := s.Fork()
	batchID := NewID()
	now := h.Now()
	ds := make([]Decision, 0, len(cmds))
	written := map[string]bool{}
	var erased []string
	for i, cmd := range cmds {
		d, err := Decide(f, cmd, Env{Now: now, Actor: actor, CommandID: batchID + "/" + strconv.Itoa(i+1), EventID: NewID(), Seal: h.seal})
		if err != nil {
			return nil, err
		}
		for ref := range d.Put {
			if slices.ContainsFunc(erased, func(pattern string) bool { return refMatches(pattern, ref) }) {
				return nil, refuse(ErrInvalidArgument, "command %d stores key material under a name an earlier command of the batch destroys: send them in separate requests", i+1)
			}
		}
		erased = append(erased, d.Erase...)
		d.Expect.At = 0 // f holds the batch's earlier events without their sequences
		x := d.Expect
		if x.Subject == "" {
			x.Subject = d.Event.Aggregate
		}
		if written[x.Subject] {
			d.Expect = ledger.Expect{Any: true}
		}
		written[d.Event.Aggregate] = true
		if err := f.Apply(d.Event); err != nil {
			return nil, fmt.Errorf("commands: batch command %d: %w", i+1, err)
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// refMatches reports whether secret ref is pattern or under a wildcard
// pattern "prefix.>".
func refMatches(pattern, ref string) bool {
	if prefix, ok := strings.CutSuffix(pattern, ">"); ok {
		return strings.HasPrefix(ref, prefix)
	}
	return pattern == ref
}

// commitBatch stores the sealed material of every decision, appends all
// events atomically, and erases what they destroy. A failure erases the
// material it stored.
func (h *Handler) commitBatch(ctx context.Context, ds []Decision) (uint64, error) {
	var stored []string
	unstore := func() {
		for _, ref := range stored {
			if err := h.store.EraseSecret(context.WithoutCancel(ctx), ref); err != nil {
				h.log.Error("erase unreferenced material", "ref", ref, "err", err)
			}
		}
	}
	evs := make([]ledger.Event, len(ds))
	xs := make([]ledger.Expect, len(ds))
	for i, d := range ds {
		for ref, sealed := range d.Put {
			if err := h.store.PutSecret(ctx, ref, sealed); err != nil {
				unstore()
				return 0, fmt.Errorf("commands: store sealed material: %w", err)
			}
			stored = append(stored, ref)
		}
		evs[i], xs[i] = d.Event, d.Expect
	}
	_, last, err := h.store.AppendBatch(ctx, evs, xs)
	if err != nil {
		unstore()
		return 0, err
	}
	for _, d := range ds {
		for _, ref := range d.Erase {
			// The events are stored: destruction is decided. A failure
			// here leaves material that Reconcile erases at the next start.
			if err := h.store.EraseSecret(context.WithoutCancel(ctx), ref); err != nil {
				h.log.Error("erase destroyed material", "ref", ref, "err", err)
			}
		}
	}
	return last, nil
}
