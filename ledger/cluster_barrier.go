// The applied barrier of a cluster: a revocation answered only once the
// other nodes apply it.
//
// Every node of a cluster (embedded or on an external NATS cluster)
// announces itself on presenceSubject every presenceEvery, and answers
// requests on appliedSubject: a request names a LEDGER sequence, and the
// node answers once its projection has applied it (Store.StartBarrier).
// Barrier asks every node heard from within presenceTTL and waits for
// all of them, or until its timeout ends. So a revocation written
// through one node is in force on every node that answered before the
// call that wrote it returns; a node that did not answer in time is
// named in the error and is either cut off from the cluster (its
// staleness bound applies) or behind (it applies the event as its
// subscription delivers it).
//
// Only cluster members can publish on these subjects (route and client
// connections need the cluster's credential, cluster.go), so a request
// or an announcement is a member's.

package ledger

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

const (
	presenceSubject = "kmsledger.presence"
	appliedSubject  = "kmsledger.applied"

	// presenceEvery is how often a node announces itself; presenceTTL is
	// how long a node is expected to answer a barrier after it was last
	// heard from (a node killed a moment ago is waited for at most the
	// barrier's timeout, and is not asked after presenceTTL).
	presenceEvery = 500 * time.Millisecond
	presenceTTL   = 3 * presenceEvery

	// maxBarrierWaits bounds the barrier requests a node waits on at once;
	// more are answered when applied, without waiting.
	maxBarrierWaits = 256
)

// presence is what a node knows of the other nodes of its cluster.
type presence struct {
	self string // this process's member id: its node name and a random suffix
	mu   sync.Mutex
	seen map[string]time.Time // member id -> last heard from
	subs []*nats.Subscription
}

// appliedAnswer is a node's answer to a barrier request.
type appliedAnswer struct {
	Member  string `json:"member"`
	Applied uint64 `json:"applied"`
}

// StartBarrier makes this node a member of the applied barrier: it
// announces itself and answers barrier requests once waitApplied(seq)
// returns (the projection applied seq). It does nothing on a single
// server. It runs until ctx ends or the Store closes.
func (s *Store) StartBarrier(ctx context.Context, waitApplied func(ctx context.Context, seq uint64) error) error {
	if !s.clustered || s.nc == nil {
		return nil
	}
	name := s.node
	if name == "" {
		name = "node"
	}
	p := &presence{self: name + "-" + rand.Text()[:8], seen: map[string]time.Time{}}
	sub, err := s.nc.Subscribe(presenceSubject, func(m *nats.Msg) {
		id := string(m.Data)
		if id == p.self || len(id) == 0 || len(id) > 300 {
			return
		}
		p.mu.Lock()
		if len(p.seen) < 1024 || !p.seen[id].IsZero() {
			p.seen[id] = time.Now()
		}
		p.mu.Unlock()
	})
	if err != nil {
		return fmt.Errorf("ledger: barrier: %w", err)
	}
	p.subs = append(p.subs, sub)
	sub, err = s.nc.Subscribe(appliedSubject, p.answerer(ctx, waitApplied))
	if err != nil {
		p.stop()
		return fmt.Errorf("ledger: barrier: %w", err)
	}
	p.subs = append(p.subs, sub)
	s.mu.Lock()
	s.presence = p
	s.mu.Unlock()
	go func() {
		t := time.NewTicker(presenceEvery)
		defer t.Stop()
		defer p.stop()
		for {
			if s.isClosed() {
				return
			}
			s.nc.Publish(presenceSubject, []byte(p.self))
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	s.awaitPeers(ctx, p)
	return nil
}

// presenceStartWait bounds how long StartBarrier waits to hear from the
// nodes this one has routes to.
const presenceStartWait = 3 * time.Second

// awaitPeers waits, at most presenceStartWait, until p has heard from as
// many nodes as the embedded server has routes to: a revocation right
// after the node opens then waits for every node that is up (one not
// heard from yet would not be waited for).
func (s *Store) awaitPeers(ctx context.Context, p *presence) {
	if s.ns == nil {
		return // an external NATS cluster: its members are not known here
	}
	ctx, cancel := context.WithTimeout(ctx, presenceStartWait)
	defer cancel()
	for {
		rz, err := s.ns.Routez(nil)
		if err != nil {
			return
		}
		peers := map[string]bool{}
		for _, r := range rz.Routes {
			peers[r.RemoteID] = true
		}
		if len(p.members()) >= len(peers) {
			return
		}
		select {
		case <-ctx.Done():
			s.log.Info("ledger: not every routed node announced itself yet", "heard", len(p.members()), "routed", len(peers))
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// answerer returns the handler of barrier requests: it answers a request
// for a sequence once waitApplied returns for it, waiting at most
// BarrierTimeout, and at most maxBarrierWaits requests at once (beyond
// that it answers only what is applied already).
func (p *presence) answerer(ctx context.Context, waitApplied func(ctx context.Context, seq uint64) error) nats.MsgHandler {
	waits := make(chan struct{}, maxBarrierWaits)
	return func(m *nats.Msg) {
		seq, err := strconv.ParseUint(string(m.Data), 10, 64)
		if err != nil || m.Reply == "" {
			return
		}
		answer := func(ctx context.Context) {
			if waitApplied(ctx, seq) != nil {
				return // not applied in time: the asker counts us as missing
			}
			b, _ := json.Marshal(appliedAnswer{Member: p.self, Applied: seq})
			m.Respond(b)
		}
		select {
		case waits <- struct{}{}:
			go func() {
				defer func() { <-waits }()
				wctx, cancel := context.WithTimeout(ctx, BarrierTimeout)
				defer cancel()
				answer(wctx)
			}()
		default:
			ictx, cancel := context.WithCancel(ctx)
			cancel()
			answer(ictx)
		}
	}
}

func (p *presence) stop() {
	for _, sub := range p.subs {
		sub.Unsubscribe()
	}
}

// members returns the other members heard from within presenceTTL, and
// forgets those not heard from for longer.
func (p *presence) members() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for id, at := range p.seen {
		if time.Since(at) > presenceTTL {
			delete(p.seen, id)
			continue
		}
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// BarrierTimeout is how long Barrier waits for the other nodes.
const BarrierTimeout = time.Second

// ErrBarrier reports members of the cluster that did not confirm an
// event within BarrierTimeout.
type ErrBarrier struct {
	Seq     uint64
	Missing []string
}

func (e *ErrBarrier) Error() string {
	return fmt.Sprintf("ledger: %d cluster node(s) did not confirm sequence %d within %s: %v", len(e.Missing), e.Seq, BarrierTimeout, e.Missing)
}

// Barrier waits until every other node of the cluster heard from lately
// has applied the LEDGER event at seq, for at most BarrierTimeout. It
// returns *ErrBarrier naming the nodes that did not confirm in time; on
// a single server, or a node whose barrier is not started, it returns
// nil at once. It returns how many nodes confirmed.
func (s *Store) Barrier(ctx context.Context, seq uint64) (int, error) {
	s.mu.Lock()
	p := s.presence
	s.mu.Unlock()
	if p == nil {
		return 0, nil
	}
	want := p.members()
	if len(want) == 0 {
		return 0, nil
	}
	inbox := s.nc.NewInbox()
	answers := make(chan *nats.Msg, len(want)+8)
	sub, err := s.nc.ChanSubscribe(inbox, answers)
	if err != nil {
		return 0, fmt.Errorf("ledger: barrier: %w", err)
	}
	defer sub.Unsubscribe()
	if err := s.nc.PublishRequest(appliedSubject, inbox, []byte(strconv.FormatUint(seq, 10))); err != nil {
		return 0, fmt.Errorf("ledger: barrier: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, BarrierTimeout)
	defer cancel()
	confirmed := map[string]bool{}
	pending := len(want)
	for pending > 0 {
		select {
		case m := <-answers:
			var a appliedAnswer
			if json.Unmarshal(m.Data, &a) != nil || a.Applied < seq || confirmed[a.Member] {
				continue
			}
			confirmed[a.Member] = true
			if slices.Contains(want, a.Member) {
				pending--
			}
		case <-ctx.Done():
			var missing []string
			for _, id := range want {
				if !confirmed[id] {
					missing = append(missing, id)
				}
			}
			return len(confirmed), &ErrBarrier{Seq: seq, Missing: missing}
		}
	}
	return len(confirmed), nil
}
