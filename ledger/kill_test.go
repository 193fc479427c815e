package ledger

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
)

// childDirEnv makes the test binary act as the child of TestKill9: it
// opens a Store on the named directory and appends until it is killed.
const childDirEnv = "KMSLEDGER_LEDGER_KILL9_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		os.Exit(appendUntilKilled(dir))
	}
	os.Exit(m.Run())
}

// killWriters is the number of concurrent appenders of the child: their
// appends are grouped (group.go).
const killWriters = 8

// appendUntilKilled appends events "kill9-<w>-<n>" from killWriters
// goroutines, writer w on its own subject, and prints "<w> <n> <seq>
// <largest group>" for each acknowledged append.
func appendUntilKilled(dir string) int {
	ctx := context.Background()
	s, err := Open(ctx, Config{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var mu sync.Mutex
	fail := make(chan struct{})
	for w := range killWriters {
		go func() {
			var last uint64
			for n := 1; ; n++ {
				ev := testEvent(KeySubject("enc", "k"+strconv.Itoa(w)), fmt.Sprintf("kill9-%d-%d", w, n))
				seq, _, err := s.Append(ctx, ev, Expect{Seq: last})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					close(fail)
					return
				}
				last = seq
				mu.Lock()
				fmt.Println(w, n, seq, s.chains.ledger.q.largest.Load())
				mu.Unlock()
			}
		}()
	}
	<-fail
	return 1
}

// TestKill9 kills a process that is appending from several goroutines
// (SIGKILL: no Close, no state file) and checks that every acknowledged
// event is there after a reopen, at its sequence and in each writer's
// order, that the appends were grouped, and that the ledger accepts the
// next write.
func TestKill9(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const acks = 600
	acked := map[string]uint64{} // command id -> sequence
	var largest uint64
	sc := bufio.NewScanner(out)
	for len(acked) < acks && sc.Scan() {
		var w, n int
		var seq uint64
		if _, err := fmt.Sscan(sc.Text(), &w, &n, &seq, &largest); err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		acked[fmt.Sprintf("kill9-%d-%d", w, n)] = seq
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if len(acked) < acks {
		t.Fatalf("child acknowledged %d appends before dying, want %d", len(acked), acks)
	}
	if largest < 2 {
		t.Fatalf("largest group of the child = %d: the appends were never grouped", largest)
	}
	checkAfterKill(t, openTestStore(t, dir), acked)
}

// checkAfterKill checks that every acknowledged event is at its sequence,
// that each writer's events are in order without gaps, and that the
// ledger accepts a write.
func checkAfterKill(t *testing.T, s *Store, acked map[string]uint64) {
	t.Helper()
	ctx := context.Background()
	found := map[string]uint64{}
	next := map[int]int{}
	last, err := s.Replay(ctx, 1, func(ev Event) error {
		var w, n int
		if _, err := fmt.Sscanf(ev.CommandID, "kill9-%d-%d", &w, &n); err != nil {
			return fmt.Errorf("seq %d: command id %q", ev.Seq, ev.CommandID)
		}
		if next[w]++; next[w] != n {
			return fmt.Errorf("seq %d: %s, want writer %d's event %d", ev.Seq, ev.CommandID, w, next[w])
		}
		found[ev.CommandID] = ev.Seq
		return nil
	})
	if err != nil {
		t.Fatalf("Replay after kill: %v", err)
	}
	for id, seq := range acked {
		if found[id] != seq {
			t.Errorf("acknowledged %s at seq %d: after kill at %d (0 = lost)", id, seq, found[id])
		}
	}
	if _, _, err := s.Append(ctx, testEvent(KeySubject("enc", "after"), "after-kill"), Expect{}); err != nil {
		t.Fatalf("Append after kill (head %d) err = %v", last, err)
	}
	if _, err := s.Verify(ctx, VerifyOptions{}); err != nil {
		t.Fatalf("Verify after kill: %v", err)
	}
}
