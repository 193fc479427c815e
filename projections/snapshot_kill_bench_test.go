package projections

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
)

// The test binary is a child of BenchmarkReadyAfterKill when killModeEnv
// is set: "write" or "ready" (killChild), on the ledger in killDirEnv
// (with its HSM key and sealed REK beside it, as benchData leaves them)
// and the snapshots in killSnapsEnv.
const (
	killModeEnv  = "KMSLEDGER_PROJECTIONS_KILL9_MODE"
	killDirEnv   = "KMSLEDGER_PROJECTIONS_KILL9_DIR"
	killSnapsEnv = "KMSLEDGER_PROJECTIONS_KILL9_SNAPS"
	// killTail is the events the writer appends before it is killed.
	killTail = 1000
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(killModeEnv); mode != "" {
		os.Exit(killChild(mode, os.Getenv(killDirEnv), os.Getenv(killSnapsEnv)))
	}
	os.Exit(m.Run())
}

// killChild starts as a node does (the snapshot is read while the ledger
// opens) and prints "ready <seconds> <snapshot sequence>". The writer
// then appends killTail events, prints "appended" and waits to be
// killed; the other returns without closing anything.
func killChild(mode, dir, snaps string) int {
	ctx := context.Background()
	w, rek, err := readBenchKeys(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg := &SnapshotConfig{Dir: snaps, Every: 1 << 40, Interval: -1, Unseal: UnsealWith([]hsm.Wrapper{w})}
	start := time.Now()
	o := Options{Snapshots: cfg, Preloaded: PreloadSnapshot(ctx, cfg, nil)}
	store, err := ledger.Open(ctx, ledger.Config{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p, err := OpenWith(ctx, store, rek, nil, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("ready %f %d\n", time.Since(start).Seconds(), p.StartedFrom())
	if mode != "write" {
		return 0
	}
	if err := appendTail(ctx, store, start); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("appended")
	select {}
}

// appendTail appends killTail enclave creations, with names unique to
// this run.
func appendTail(ctx context.Context, store *ledger.Store, run time.Time) error {
	var evs []ledger.Event
	var xs []ledger.Expect
	for i := range killTail {
		e := fmt.Sprintf("kill-%d-%d", run.UnixNano(), i)
		body, _ := json.Marshal(ledger.EnclaveCreated{Name: e})
		id := fmt.Sprintf("%s-%s", ledger.TypeEnclaveCreated, e)
		evs = append(evs, ledger.Event{Type: ledger.TypeEnclaveCreated, ID: id, Time: time.Now().UTC(), Actor: asofRoot,
			Aggregate: ledger.EnclaveSubject(e), CommandID: id, Payload: body})
		xs = append(xs, ledger.Expect{Any: true})
		if len(evs) == ledger.MaxBatch-1 || i == killTail-1 {
			if _, _, err := store.AppendBatch(ctx, evs, xs); err != nil {
				return err
			}
			evs, xs = evs[:0], xs[:0]
		}
	}
	return nil
}

// runKillChild runs the test binary as a child in mode on dir and snaps
// and returns the first line it printed that starts with "ready"; a
// writer is killed (SIGKILL) once it printed "appended".
func runKillChild(b *testing.B, mode, dir, snaps string) string {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killModeEnv+"="+mode, killDirEnv+"="+dir, killSnapsEnv+"="+snaps)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var ready string
	for sc := bufio.NewScanner(out); sc.Scan(); {
		line := sc.Text()
		if strings.HasPrefix(line, "ready") && ready == "" {
			ready = line
		}
		if line == "appended" {
			cmd.Process.Kill()
			break
		}
	}
	cmd.Wait()
	if ready == "" {
		b.Fatalf("child %s did not get ready", mode)
	}
	return ready
}

// BenchmarkReadyAfterKill: the time from starting a new process on the
// data dir of a ledger of N keys (KMSLEDGER_BENCH_KEYS) to a projection
// that has applied the head, as a node starts (the snapshot is read while
// the ledger opens), after a process that had just appended 1,000 events
// there was killed with SIGKILL. JetStream then finds its stream state
// file older than the message blocks (it writes it every two minutes and
// at shutdown) and rebuilds the state from the blocks, and the projection
// replays the events after its snapshot. Each iteration runs the writer
// and then the new process; ready-s/op is the new process's time.
func BenchmarkReadyAfterKill(b *testing.B) {
	n := benchN(b, "KMSLEDGER_BENCH_KEYS", 100_000)
	dir, w, rek, keep := benchData(b, n)
	snaps := benchSnapDir(b, dir, keep)
	cfg := &SnapshotConfig{Dir: snaps, Every: 1 << 40, Interval: -1, Unseal: UnsealWith([]hsm.Wrapper{w})}
	p := benchReady(b, dir, cfg, rek, true, &readyTimes{})
	if _, err := p.Snapshot(context.Background()); err != nil {
		b.Fatal(err)
	}
	p.crash()
	p.store.Close()
	var took float64
	for b.Loop() {
		runKillChild(b, "write", dir, snaps)
		var s float64
		var from uint64
		if _, err := fmt.Sscanf(runKillChild(b, "ready", dir, snaps), "ready %f %d", &s, &from); err != nil || from == 0 {
			b.Fatalf("the new process started from %d (%v): the snapshot was not used", from, err)
		}
		took += s
	}
	b.ReportMetric(took/float64(b.N), "ready-s/op")
}
