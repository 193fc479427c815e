package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	// replayBatch is how many messages an ordered consumer keeps in flight.
	replayBatch = 512
	// consumerIdle is how long the server keeps an ordered consumer whose
	// client went away (it is longer than the 30 s pull expiry).
	consumerIdle = time.Minute
)

// consumerFrom returns an ordered consumer on LEDGER starting at seq from
// (1 if from is 0).
func (s *Store) consumerFrom(ctx context.Context, from uint64) (jetstream.Consumer, error) {
	return s.orderedFrom(ctx, s.ledger, jetstream.OrderedConsumerConfig{}, from)
}

// orderedFrom returns an ordered consumer on st with cfg (its filter,
// headers-only) starting at seq from (1 if from is 0); it sets the start
// and the idle threshold.
func (s *Store) orderedFrom(ctx context.Context, st jetstream.Stream, cfg jetstream.OrderedConsumerConfig, from uint64) (jetstream.Consumer, error) {
	cfg.DeliverPolicy, cfg.OptStartSeq, cfg.InactiveThreshold = jetstream.DeliverAllPolicy, 0, consumerIdle
	if from > 1 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = from
	}
	backoff := 50 * time.Millisecond
	for {
		// Creating a consumer is a cluster (meta) operation: during an
		// election it times out, and is tried again until ctx ends.
		actx, cancel := ctx, context.CancelFunc(func() {})
		if s.clustered {
			actx, cancel = context.WithTimeout(ctx, 2*time.Second)
		}
		c, err := st.OrderedConsumer(actx, cfg)
		cancel()
		if err == nil {
			return c, nil
		}
		if !s.clustered || ctx.Err() != nil {
			return nil, fmt.Errorf("ledger: consumer from %d: %w", from, s.mapErr(err))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ledger: consumer from %d: %w", from, s.mapErr(err))
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// endConsumer stops it and deletes c, the ordered consumer of a finished
// read of stream st. The server would keep c for consumerIdle, and it
// holds at most 1,000 consumers on a stream (its default limit): a burst
// of reads (time-travel queries) would reach the limit, and every replay
// and subscription would then fail until the idle ones expire.
func (s *Store) endConsumer(st jetstream.Stream, c jetstream.Consumer, it jetstream.MessagesContext) {
	it.Stop()
	info := c.CachedInfo()
	if info == nil || s.isClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = st.DeleteConsumer(ctx, info.Name) // if it fails, the server drops c after consumerIdle
}

// msgEvent decodes a consumed LEDGER message.
func msgEvent(m jetstream.Msg) (Event, error) {
	md, err := m.Metadata()
	if err != nil {
		return Event{}, fmt.Errorf("ledger: message metadata: %w", err)
	}
	return decodeMessage(m.Headers(), m.Data(), m.Subject(), md.Sequence.Stream)
}

// Replay calls fn, in stream order, for every event whose sequence is in
// [from, head] where head is the LEDGER head when Replay is called (from 0
// is read as 1). It returns the sequence of the last event delivered; if
// none was delivered it returns from-1 (0 if from is 0), so that
// Subscribe(ctx, last+1, …) always continues without a gap. An error from
// fn stops the replay and is returned wrapped. An undecodable message
// gives ErrMalformed.
func (s *Store) Replay(ctx context.Context, from uint64, fn func(Event) error) (last uint64, err error) {
	from = max(from, 1)
	last = from - 1
	head, err := s.streamHead(ctx) // what is there, whoever wrote it
	if err != nil || head < from {
		return last, err
	}
	return s.replayRange(ctx, from, head, func(_ jetstream.Msg, ev Event) error {
		if err := fn(ev); err != nil {
			return fmt.Errorf("ledger: replay seq %d: %w", ev.Seq, err)
		}
		return nil
	})
}

// subscription is one Subscribe call.
type subscription struct {
	mu      sync.Mutex               // held while fn runs; serialises delivery
	next    uint64                   // sequence of the next event to deliver
	stopped bool                     // under mu
	cc      jetstream.ConsumeContext // set before ready is closed; nil if Consume failed; replaced under ccMu
	ccMu    sync.Mutex
	ready   chan struct{}
	once    sync.Once
	done    chan struct{} // closed by stop
	store   *Store
}

// Subscribe delivers every event with sequence >= from (0 is read as 1),
// in stream order and without gaps, to fn on one goroutine at a time,
// until stop is called, ctx ends or the Store is closed. It uses an
// ordered consumer, which the client re-creates after any gap, and
// discards redeliveries of events already delivered.
//
// After stop returns, fn is not running and will not be called again.
// stop waits for a running fn, so fn must not call stop (or Close) itself:
// cancel ctx instead. A message that is not an Event envelope stops the
// subscription and is logged (ErrMalformed): it is never skipped silently.
func (s *Store) Subscribe(ctx context.Context, from uint64, fn func(Event)) (stop func(), err error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	from = max(from, 1)
	c, err := s.consumerFrom(ctx, from)
	if err != nil {
		return nil, err
	}
	sub := &subscription{next: from, ready: make(chan struct{}), done: make(chan struct{}), store: s}
	handler := func(m jetstream.Msg) {
		ev, err := msgEvent(m)
		sub.mu.Lock()
		defer sub.mu.Unlock()
		if sub.stopped {
			return
		}
		if err != nil {
			s.log.Error("ledger: subscription stopped", "err", err)
			sub.stopped = true
			go sub.stop()
			return
		}
		if ev.Seq < sub.next {
			return // redelivered after an ordered-consumer reset
		}
		sub.next = ev.Seq + 1
		fn(ev)
	}
	errHandler := func(_ jetstream.ConsumeContext, err error) {
		if !errors.Is(err, jetstream.ErrConnectionClosed) {
			s.log.Debug("ledger: subscription", "err", err)
		}
	}
	// Register first, so that a concurrent Close stops this subscription;
	// stop waits for ready, so it never races with the assignment of cc.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	opts := []jetstream.PullConsumeOpt{jetstream.PullMaxMessages(replayBatch), jetstream.ConsumeErrHandler(errHandler)}
	if s.clustered {
		// The consumer lives on one node: if that node dies, missing
		// heartbeats make the client re-create it elsewhere. Short
		// heartbeats notice that in about 2 s instead of 10.
		opts = append(opts, jetstream.PullHeartbeat(time.Second), jetstream.PullExpiry(5*time.Second))
	}
	sub.cc, err = c.Consume(handler, opts...)
	close(sub.ready)
	if err != nil {
		sub.stop()
		return nil, fmt.Errorf("ledger: subscribe from %d: %w", from, s.mapErr(err))
	}
	if w := s.chains.ledger.w; w != nil {
		go sub.followElections(ctx, w, handler, opts)
	}

	go func() {
		select {
		case <-ctx.Done():
			sub.stop()
		case <-sub.done:
		}
	}()
	return sub.stop, nil
}

// followElections re-creates the subscription's consumer from the next
// sequence to deliver whenever LEDGER elects a leader: the node that held
// the consumer may be the one that died, and the client would notice
// only after missed heartbeats and a consumer creation that may have
// timed out during the election. The new consumer is consuming before
// the old one is stopped; the handler drops what it delivered already,
// and each consumer delivers without gaps from a start at or below the
// next sequence, so none is skipped.
func (sub *subscription) followElections(ctx context.Context, w *writer, handler jetstream.MessageHandler, opts []jetstream.PullConsumeOpt) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // the subscription's end ends ctx
		select {
		case <-sub.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-w.electedCtx(ledgerStream).Done():
		case <-ctx.Done():
			return
		}
		sub.mu.Lock()
		next := sub.next
		sub.mu.Unlock()
		c, err := sub.store.consumerFrom(ctx, next)
		if err != nil {
			continue // the old consumer carries on, or its client resets it
		}
		cc, err := c.Consume(handler, opts...)
		if err != nil {
			continue
		}
		sub.ccMu.Lock()
		select {
		case <-sub.done:
			sub.ccMu.Unlock()
			cc.Stop()
			return
		default:
		}
		old := sub.cc
		sub.cc = cc
		sub.ccMu.Unlock()
		if old != nil {
			old.Stop()
		}
	}
}

// stop ends the subscription and waits for a running handler to return.
func (sub *subscription) stop() {
	sub.once.Do(func() {
		<-sub.ready
		close(sub.done)
		sub.ccMu.Lock()
		if sub.cc != nil {
			sub.cc.Stop()
		}
		sub.ccMu.Unlock()
		sub.mu.Lock()
		sub.stopped = true
		sub.mu.Unlock()
		sub.store.mu.Lock()
		delete(sub.store.subs, sub)
		sub.store.mu.Unlock()
	})
}
