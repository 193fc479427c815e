package ledger

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
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

// appendUntilKilled appends events "kill9-<n>" and prints each
// acknowledged sequence on stdout.
func appendUntilKilled(dir string) int {
	ctx := context.Background()
	s, err := Open(ctx, Config{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var last uint64
	for n := 1; ; n++ {
		ev := testEvent(KeySubject("enc", "k"), "kill9-"+strconv.Itoa(n))
		seq, _, err := s.Append(ctx, ev, Expect{Seq: last})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		last = seq
		fmt.Println(seq)
	}
}

// TestKill9 kills a process that is appending (SIGKILL: no Close, no
// state file) and checks that every acknowledged event is there after a
// reopen, in order, and that the ledger accepts the next write.
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
	const acks = 300
	var acked uint64
	sc := bufio.NewScanner(out)
	for acked < acks && sc.Scan() {
		if acked, err = strconv.ParseUint(sc.Text(), 10, 64); err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if acked < acks {
		t.Fatalf("child acknowledged %d appends before dying, want %d", acked, acks)
	}

	s := openTestStore(t, dir)
	ctx := context.Background()
	n := uint64(0)
	last, err := s.Replay(ctx, 1, func(ev Event) error {
		n++
		if want := "kill9-" + strconv.FormatUint(n, 10); ev.Seq != n || ev.CommandID != want {
			return fmt.Errorf("event #%d = seq %d %s, want seq %d %s", n, ev.Seq, ev.CommandID, n, want)
		}
		return nil
	})
	if err != nil || last < acked {
		t.Fatalf("Replay after kill = (%d, %v), want >= %d acknowledged events and no error", last, err, acked)
	}
	if _, _, err := s.Append(ctx, testEvent(KeySubject("enc", "k"), "after-kill"), Expect{Seq: last}); err != nil {
		t.Fatalf("Append after kill err = %v", err)
	}
}
