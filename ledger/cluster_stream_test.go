package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// dropFirstInfo is a stream whose first Info request is dropped, as a
// cluster node drops a STREAM.INFO it cannot answer yet: the caller hears
// nothing until its context ends.
type dropFirstInfo struct {
	jetstream.Stream
	calls atomic.Int32
}

func (d *dropFirstInfo) Info(ctx context.Context, opts ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	if d.calls.Add(1) == 1 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return d.Stream.Info(ctx, opts...)
}

// TestLeaderStreamAsksAgainAfterADroppedRequest: a chain head whose
// first stream info gets no answer loads on the next request, long
// before the caller's context ends (Open's minute), and a MSG.GET that
// got no answer is sent again.
func TestLeaderStreamAsksAgainAfterADroppedRequest(t *testing.T) {
	s := openTestStore(t, "")
	seqs := mustAppend(t, s, KeySubject("enc", "k"), 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	drop := &dropFirstInfo{Stream: s.ledger}
	ls := &leaderStream{Stream: drop, nc: s.nc, name: ledgerStream}
	c := &chainHead{name: ledgerStream, stream: ls, log: s.log, clustered: true}
	if err := c.loadWait(ctx); err != nil {
		t.Fatalf("loadWait() after a dropped stream info err = %v, want nil", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("loadWait() returned only when its context ended")
	}
	seq, sum := c.head()
	wantSeq, wantSum := s.chains.ledger.head()
	if seq != seqs[2] || seq != wantSeq || sum != wantSum {
		t.Errorf("head = %d %s, want %d %s", seq, sum, wantSeq, wantSum)
	}
	if n := drop.calls.Load(); n != 2 {
		t.Errorf("%d stream info requests, want 2", n)
	}

	// A MSG.GET whose first request nobody answers, on a server
	// without JetStream (whose API would answer).
	nc := bareServer(t)
	const name = "DROPPED"
	var gets atomic.Int32
	sub, err := nc.Subscribe("$JS.API.STREAM.MSG.GET."+name, func(m *nats.Msg) {
		if gets.Add(1) == 1 {
			return
		}
		b, _ := json.Marshal(msgGetResponse{Message: &storedMsg{Subject: "x.y", Sequence: 7, Data: []byte("d")}})
		m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	ls = &leaderStream{nc: nc, name: name}
	m, err := ls.GetMsg(ctx, 7)
	if err != nil || m.Sequence != 7 || string(m.Data) != "d" {
		t.Fatalf("GetMsg(7) after a dropped request = %+v, %v; want seq 7", m, err)
	}
	if ctx.Err() != nil || gets.Load() != 2 {
		t.Fatalf("GetMsg sent %d requests (context err %v), want 2 before the context ends", gets.Load(), ctx.Err())
	}

	// Without any answer it is ErrUnavailable when the context ends.
	sub.Unsubscribe()
	if _, err := nc.Subscribe("$JS.API.STREAM.MSG.GET."+name, func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	defer cancelShort()
	if _, err := ls.GetMsg(short, 7); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("GetMsg with no answer err = %v, want ErrUnavailable", err)
	}
}
