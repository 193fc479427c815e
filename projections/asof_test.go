package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/ledger/ledgertest"
)

const (
	asofRoot = "h1:rootrootrootrootrootrootrootrootrootrootroo"
	asofUser = "h1:useruseruseruseruseruseruseruseruseruseruse"
)

var asofT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// event builds a ledger event of type typ with payload p, minute minutes
// after asofT0.
func event(t *testing.T, minute int, typ, enclave, aggregate string, p any) ledger.Event {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%s-%d-%s", typ, minute, aggregate)
	return ledger.Event{Type: typ, ID: id, Time: asofT0.Add(time.Duration(minute) * time.Minute), Actor: asofRoot,
		Enclave: enclave, Aggregate: aggregate, CommandID: id, Payload: b}
}

// history is a scripted ledger: each event is one step.
func history(t *testing.T) []ledger.Event {
	key := func(n string, v uint32) ledger.KeyCreated {
		return ledger.KeyCreated{Name: n, Version: v, Type: "AES256", SecretRef: ledger.SecretRef("e", n, v), Fingerprint: "fp"}
	}
	return []ledger.Event{
		event(t, 0, ledger.TypeSystemInitialized, "", ledger.SystemSubject(), ledger.SystemInitialized{RootIdentity: asofRoot, DefaultType: "AES256"}),
		event(t, 1, ledger.TypeEnclaveCreated, "", ledger.EnclaveSubject("e"), ledger.EnclaveCreated{Name: "e"}),
		event(t, 2, ledger.TypeKeyCreated, "e", ledger.KeySubject("e", "k"), key("k", 1)),
		event(t, 3, ledger.TypeIdentityCreated, "e", ledger.IdentitySubject("e", asofUser), ledger.IdentityCreated{Identity: asofUser, Privilege: ledger.PrivilegeUser}),
		event(t, 4, ledger.TypePolicyCreated, "e", ledger.PolicySubject("e", "p"), ledger.PolicyCreated{Name: "p", Allow: map[string][]string{"KEY:DECRYPT": {"k"}}}),
		event(t, 5, ledger.TypePolicyAssigned, "e", ledger.IdentitySubject("e", asofUser), ledger.PolicyAssigned{Identity: asofUser, Policy: "p"}),
		event(t, 6, ledger.TypeKeyCreated, "e", ledger.KeySubject("e", "k"), key("k", 2)),
		event(t, 7, ledger.TypeKeyDisabled, "e", ledger.KeySubject("e", "k"), ledger.KeyDisabled{Name: "k", Version: 1}),
		event(t, 8, ledger.TypePolicyCreated, "e", ledger.PolicySubject("e", "p"), ledger.PolicyCreated{Name: "p", Allow: map[string][]string{"KEY:DECRYPT": {"k*"}}}),
		event(t, 9, ledger.TypeKeyDeleted, "e", ledger.KeySubject("e", "k"), ledger.KeyDeleted{Name: "k", Versions: []uint32{1, 2}}),
		event(t, 10, ledger.TypeIdentityDeleted, "e", ledger.IdentitySubject("e", asofUser), ledger.IdentityDeleted{Identity: asofUser}),
	}
}

func appendAll(t *testing.T, store *ledger.Store, evs []ledger.Event) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, ev := range evs {
		seq, _, err := store.Append(context.Background(), ev, ledger.Expect{Any: true})
		if err != nil {
			t.Fatalf("Append(%s) err = %v", ev.Type, err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

// fold applies evs with their sequences to a fresh state.
func fold(t *testing.T, evs []ledger.Event, seqs []uint64) *State {
	t.Helper()
	st := NewState()
	for i, ev := range evs {
		ev.Seq = seqs[i]
		if err := st.Apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func stateJSON(t *testing.T, st *State) string {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStateAt checks that the state at every sequence, and at the time of
// every event, is the fold of exactly the events up to it.
func TestStateAt(t *testing.T) {
	ctx := context.Background()
	store := ledgertest.Open(t)
	evs := history(t)
	seqs := appendAll(t, store, evs)
	for i := range evs {
		want := stateJSON(t, fold(t, evs[:i+1], seqs[:i+1]))
		bySeq, err := StateAt(ctx, store, seqs[i], time.Time{})
		if err != nil {
			t.Fatalf("StateAt(seq %d) err = %v", seqs[i], err)
		}
		if got := stateJSON(t, bySeq); got != want || bySeq.Seq != seqs[i] {
			t.Errorf("StateAt(seq %d) = seq %d %s\nwant %s", seqs[i], bySeq.Seq, got, want)
		}
		// Any time from this event's up to (not including) the next one's.
		for _, at := range []time.Time{evs[i].Time, evs[i].Time.Add(59 * time.Second)} {
			byTime, err := StateAt(ctx, store, 0, at)
			if err != nil {
				t.Fatalf("StateAt(%v) err = %v", at, err)
			}
			if got := stateJSON(t, byTime); got != want {
				t.Errorf("StateAt(%v) = %s\nwant %s", at, got, want)
			}
		}
	}
	before, err := StateAt(ctx, store, 0, asofT0.Add(-time.Second))
	if err != nil || before.Seq != 0 || len(before.Enclaves) != 0 || before.Initialized {
		t.Errorf("StateAt(before the first event) = %+v, %v; want an empty state", before, err)
	}
	future, err := StateAt(ctx, store, 0, asofT0.Add(24*time.Hour))
	if err != nil || future.Seq != seqs[len(seqs)-1] {
		t.Errorf("StateAt(future) seq = %v, %v; want the head %d", future, err, seqs[len(seqs)-1])
	}
}

func TestStateAtErrors(t *testing.T) {
	ctx := context.Background()
	store := ledgertest.Open(t)
	seqs := appendAll(t, store, history(t)[:2])
	tests := []struct {
		name string
		seq  uint64
		at   time.Time
		want error
	}{
		{"Neither", 0, time.Time{}, ErrPointInTime},
		{"Both", 1, asofT0, ErrPointInTime},
		{"BeyondHead", seqs[1] + 1, time.Time{}, ErrBeyondHead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := StateAt(ctx, store, tt.seq, tt.at); !errors.Is(err, tt.want) {
				t.Fatalf("StateAt(%d, %v) err = %v, want %v", tt.seq, tt.at, err, tt.want)
			}
		})
	}
}

// TestStateAtOutOfOrderTimes: an event decided before the time asked for
// but appended after one decided later is left out, so the answer is a
// prefix of the stream (a state that existed).
func TestStateAtOutOfOrderTimes(t *testing.T) {
	ctx := context.Background()
	store := ledgertest.Open(t)
	evs := history(t)[:3]
	evs[1].Time, evs[2].Time = asofT0.Add(5*time.Minute), asofT0.Add(time.Minute) // enclave decided after the key
	seqs := appendAll(t, store, evs)
	st, err := StateAt(ctx, store, 0, asofT0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if st.Seq != seqs[0] || len(st.Enclaves) != 0 {
		t.Fatalf("StateAt(minute 2) = seq %d with %d enclaves; want seq %d and none", st.Seq, len(st.Enclaves), seqs[0])
	}
}

func TestProjectionEvents(t *testing.T) {
	ctx := context.Background()
	store := ledgertest.Open(t)
	seqs := appendAll(t, store, history(t))
	p, err := Open(ctx, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tests := []struct {
		name     string
		from     uint64
		stop     int // fn refuses the stop-th event (0 = never)
		wantSeen []uint64
		wantLast uint64
	}{
		{"All", 0, 0, seqs, seqs[len(seqs)-1]},
		{"From", seqs[8], 0, seqs[8:], seqs[len(seqs)-1]},
		{"Stop", seqs[2], 3, seqs[2:4], seqs[3]},
		{"PastHead", seqs[len(seqs)-1] + 1, 0, nil, seqs[len(seqs)-1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen []uint64
			last, err := p.Events(ctx, tt.from, func(ev ledger.Event) bool {
				if tt.stop != 0 && len(seen) == tt.stop-1 {
					return false
				}
				seen = append(seen, ev.Seq)
				return true
			})
			if err != nil || last != tt.wantLast || fmt.Sprint(seen) != fmt.Sprint(tt.wantSeen) {
				t.Fatalf("Events(%d) = %v, last %d, %v; want %v, last %d", tt.from, seen, last, err, tt.wantSeen, tt.wantLast)
			}
		})
	}
	if head, err := p.Head(ctx); err != nil || head != seqs[len(seqs)-1] {
		t.Fatalf("Head = %d, %v; want %d", head, err, seqs[len(seqs)-1])
	}
	st, err := p.StateAt(ctx, seqs[2], time.Time{})
	if err != nil || st.Enclaves["e"].Keys["k"] == nil {
		t.Fatalf("Projection.StateAt(seq %d) = %v; want key k", seqs[2], err)
	}
}
