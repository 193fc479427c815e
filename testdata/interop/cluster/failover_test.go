package cluster

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
	"github.com/minio/kms-go/kms"
)

// Bounds of TestClusterLeaderKill, documented in README.md (Clusters):
//   - afterElectionBound: writes resume within it once the streams have
//     elected their new leaders (the last election between the kill and
//     the resume, as the nodes log them) and the new LEDGER leader's node
//     has taken over as its writer: the forwarders, the SECRETS
//     publishes and the projections' consumers follow JetStream's leader
//     advisories;
//   - resumeBound: writes resume within it after the kill at all. The
//     election itself is JetStream's: 4–9 s after the dead leader's last
//     heartbeat, longer when the surviving follower is still catching up
//     at the moment of the kill (JetStream does not let a catching-up
//     follower campaign until its catch-up stalls). Measured with three
//     nodes and the clients on one loaded 2-core machine: 4.1–15.6 s in
//     20 kills. (Up to 37 s before a node elected LEDGER leader stopped
//     waiting for its chain's mutex to take over as writer.)
//
// The medians are printed beside them.
const (
	afterElectionBound = 10 * time.Second
	resumeBound        = 30 * time.Second
)

// reps is KMSLEDGER_CLUSTER_REPS (default 20): how often the leader is
// killed.
func reps() int {
	if n, err := strconv.Atoi(os.Getenv("KMSLEDGER_CLUSTER_REPS")); err == nil && n > 0 {
		return n
	}
	return 20
}

// cryptoLoop runs GenerateKey+Decrypt with key until stop is closed and
// counts successes and failures. With one client (all endpoints) every
// failure counts; a failure without an HTTP status (a network error) is
// counted apart as lost in flight: kms-go retries a request on another
// endpoint only with an emptied body (it fails with "ContentLength=N with
// Body length 0"), so a request in flight to a node that is killed fails in
// the SDK. With per-node clients (perNode), calls go to the nodes in turn,
// skipping nodes not serving, and failures of a node that stopped serving
// during the call are not counted.
type cryptoLoop struct {
	ok, failed, lost atomic.Int64
	mu               sync.Mutex
	firstErr         error
	errs             map[string]int // second and error (URL removed) → count
	done             chan struct{}
}

func startCryptoLoop(cl *kms.Client, enclave, key string, stop <-chan struct{}) *cryptoLoop {
	return runCryptoLoop(func() (*kms.Client, func() bool) { return cl, nil }, enclave, key, stop)
}

// startPerNodeLoop runs the loop over one client per node in turn.
func (c *cluster) startPerNodeLoop(key string, stop <-chan struct{}) *cryptoLoop {
	clients := map[*node]*kms.Client{}
	for _, nd := range c.nodes {
		clients[nd] = c.client(nd)
	}
	i := 0
	return runCryptoLoop(func() (*kms.Client, func() bool) {
		for range len(c.nodes) {
			nd := c.nodes[i%len(c.nodes)]
			i++
			if nd.serves() {
				return clients[nd], nd.serves
			}
		}
		return nil, nil
	}, c.enclave, key, stop)
}

func runCryptoLoop(next func() (*kms.Client, func() bool), enclave, key string, stop <-chan struct{}) *cryptoLoop {
	l := &cryptoLoop{done: make(chan struct{}), errs: map[string]int{}}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			cl, serves := next()
			if cl == nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			ctx, cancel := callCtx(15 * time.Second)
			err := roundTrip(ctx, cl, cl, enclave, key)
			cancel()
			if err == nil {
				l.ok.Add(1)
				continue
			}
			if serves != nil && !serves() {
				continue // the node was killed during the call
			}
			l.mu.Lock()
			if status(err) == 0 {
				l.lost.Add(1)
			} else {
				l.failed.Add(1)
			}
			if l.firstErr == nil {
				l.firstErr = err
			}
			l.errs[time.Now().Format("15:04:05")+" "+errClass(err)]++
			l.mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return l
}

// check asserts that no call failed with an HTTP status, and that at most
// lostMax calls were lost in flight (network errors).
func (l *cryptoLoop) check(t *testing.T, what string, lostMax int) {
	t.Helper()
	l.checkBudget(t, what, lostMax, 0)
}

// checkBudget is check that allows failedPerMillion calls in a million to
// fail with a status.
func (l *cryptoLoop) checkBudget(t *testing.T, what string, lostMax int, failedPerMillion int64) {
	t.Helper()
	<-l.done
	figure(t, "%s: GenerateKey+Decrypt %d ok, %d failed with a status, %d lost in flight (network errors)", what, l.ok.Load(), l.failed.Load(), l.lost.Load())
	if l.failed.Load()*1_000_000 > failedPerMillion*(l.ok.Load()+l.failed.Load()) || l.lost.Load() > int64(lostMax) {
		t.Errorf("%s: %d GenerateKey+Decrypt round trips answered with an error status, %d lost in flight (at most %d allowed); first: %v; by second: %v",
			what, l.failed.Load(), l.lost.Load(), lostMax, l.firstErr, l.errs)
	}
	if l.ok.Load() == 0 {
		t.Errorf("%s: no GenerateKey+Decrypt round trip succeeded", what)
	}
}

// sdkQuarantine is how long kms-go skips an endpoint after a network error
// (its load balancer's fixed timeout); kills of different nodes are spaced
// by more, or the SDK would have no endpoint left to fail over to.
const sdkQuarantine = 31 * time.Second

// TestClusterEveryNodeServes creates a key through node 1 and, right
// after, generates a data key through node 2 and decrypts it through node
// 3; then kms-go with all three endpoints keeps succeeding while each node
// in turn is killed (SIGKILL) and restarted.
func TestClusterEveryNodeServes(t *testing.T) {
	c := newCluster(t, 3, "")
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	ctx := testCtx(t)
	key := harness.UniqueName("k")
	if err := c.client(n1).CreateKey(ctx, c.enclave, &kms.CreateKeyRequest{Name: key}); err != nil {
		t.Fatalf("CreateKey through n1: %v", err)
	}
	if err := roundTrip(ctx, c.client(n2), c.client(n3), c.enclave, key); err != nil {
		t.Fatalf("right after CreateKey through n1: GenerateKey through n2, Decrypt through n3: %v", err)
	}

	stop := make(chan struct{})
	loop := startCryptoLoop(c.client(c.nodes...), c.enclave, key, stop)
	var lastKill time.Time
	for _, nd := range c.nodes {
		time.Sleep(max(2*time.Second, time.Until(lastKill.Add(sdkQuarantine))))
		lastKill = time.Now()
		t.Logf("%s kill -9 %s", time.Now().Format("15:04:05.000"), nd.name)
		c.kill(nd)
		time.Sleep(3 * time.Second)
		t.Logf("%s restart %s", time.Now().Format("15:04:05.000"), nd.name)
		start := time.Now()
		c.restart(nd)
		took, err := c.waitHealth(nd, "/v1/health/ready", 60*time.Second)
		if err != nil {
			t.Error(err)
		}
		figure(t, "%s killed and restarted: ready %v after exec", nd.name, time.Since(start).Round(time.Millisecond))
		_ = took
		if _, err := c.waitHealth(nd, "/v1/health/ready?replicas", 120*time.Second); err != nil {
			t.Error(err)
		}
		figure(t, "%s killed and restarted: replicas current %v after exec", nd.name, time.Since(start).Round(time.Millisecond))
	}
	time.Sleep(2 * time.Second)
	close(stop)
	loop.check(t, "kms-go with all endpoints, one node at a time killed", len(c.nodes))
	// Every node serves the key after its restart.
	for _, nd := range c.nodes {
		if err := roundTrip(ctx, c.client(nd), c.client(nd), c.enclave, key); err != nil {
			t.Errorf("through %s after its restart: %v", nd.name, err)
		}
	}
	c.sameAuditEvents()
}

// creators creates keys from workers clients (kms-go, all endpoints) until
// stop is closed. A creation whose outcome is unknown (an error) is retried
// with the same name; "key already exists" on such a retry means it was
// stored. Every acknowledged name is recorded with its completion time.
type creators struct {
	mu       sync.Mutex
	acked    map[string]bool
	done     []time.Time // completion times of acknowledged creations started after since
	since    time.Time
	failed   int
	firstErr error
	wg       sync.WaitGroup
}

func startCreators(c *cluster, workers int, stop <-chan struct{}) *creators {
	cr := &creators{acked: map[string]bool{}}
	cl := c.client(c.nodes...)
	for w := range workers {
		cr.wg.Add(1)
		go func() {
			defer cr.wg.Done()
			for i := 0; ; i++ {
				name := fmt.Sprintf("w%d-%d-%s", w, i, harness.UniqueName("c"))
				retried := false
				for {
					select {
					case <-stop:
						return
					default:
					}
					started := time.Now()
					ctx, cancel := callCtx(10 * time.Second)
					err := cl.CreateKey(ctx, c.enclave, &kms.CreateKeyRequest{Name: name})
					cancel()
					if err == nil || (retried && errors.Is(err, kms.ErrKeyExists)) {
						cr.ack(name, started)
						break
					}
					cr.mu.Lock()
					cr.failed++
					if cr.firstErr == nil {
						cr.firstErr = err
					}
					cr.mu.Unlock()
					retried = true
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	return cr
}

func (cr *creators) ack(name string, started time.Time) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	cr.acked[name] = true
	if !cr.since.IsZero() && !started.Before(cr.since) {
		cr.done = append(cr.done, time.Now())
	}
}

// mark starts watching for creations started from now on.
func (cr *creators) mark() time.Time {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	cr.since, cr.done = time.Now(), nil
	return cr.since
}

// firstDone waits up to d for the first acknowledged creation started after
// mark and returns its completion time.
func (cr *creators) firstDone(d time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		cr.mu.Lock()
		if len(cr.done) > 0 {
			t := slices.MinFunc(cr.done, func(a, b time.Time) int { return a.Compare(b) })
			cr.mu.Unlock()
			return t, true
		}
		cr.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	return time.Time{}, false
}

// checkAcked checks that every acknowledged key is listed through every
// running node, waiting briefly for nodes that catch up.
func (c *cluster) checkAcked(acked map[string]bool, what string) {
	c.t.Helper()
	for _, nd := range c.nodes {
		if !nd.up() {
			continue
		}
		var missing []string
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := callCtx(30 * time.Second)
			names, err := c.keyNames(ctx, nd)
			cancel()
			missing = missing[:0]
			if err == nil {
				for name := range acked {
					if !names[name] {
						missing = append(missing, name)
					}
				}
			}
			if (err == nil && len(missing) == 0) || time.Now().After(deadline) {
				if err != nil {
					c.t.Errorf("%s: list keys through %s: %v", what, nd.name, err)
				} else if len(missing) > 0 {
					c.t.Errorf("%s: %d of %d acknowledged keys missing through %s, e.g. %v", what, len(missing), len(acked), nd.name, missing[:min(5, len(missing))])
				}
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
}

// TestClusterLeaderKill kills (SIGKILL) the node that writes the LEDGER
// stream while 8 kms-go clients (all endpoints) create keys, reps() times:
// every acknowledged creation exists afterwards on every node, writes
// resume within resumeBound, and GenerateKey/Decrypt of an existing key
// never fails meanwhile. Then it kills all three nodes at once and
// restarts them: nothing acknowledged is lost.
func TestClusterLeaderKill(t *testing.T) {
	c := newCluster(t, 3, "")
	ctx := testCtx(t)
	key := harness.UniqueName("existing")
	if err := c.client(c.nodes...).CreateKey(ctx, c.enclave, &kms.CreateKeyRequest{Name: key}); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	stop := make(chan struct{})
	loop := c.startPerNodeLoop(key, stop)
	cr := startCreators(c, 8, stop)

	var resumes, afterWriter, caughtUp, probes []time.Duration
	n := reps()
	for i := range n {
		time.Sleep(time.Second)
		leader := c.leader()
		killed := cr.mark()
		t.Logf("rep %d: %s kill -9 %s (the LEDGER writer)", i+1, killed.Format("15:04:05.000"), leader.name)
		c.kill(leader)
		probed := make(chan time.Time, 1)
		go func() { probed <- c.firstWrite(leader, resumeBound) }()
		at, ok := cr.firstDone(resumeBound)
		p := <-probed
		if !ok {
			t.Errorf("rep %d: no kms-go key creation (all endpoints) succeeded within %v after kill -9 of %s", i+1, resumeBound, leader.name)
		} else {
			resumes = append(resumes, at.Sub(killed))
		}
		if p.IsZero() {
			t.Errorf("rep %d: no key creation through a single node succeeded within %v after kill -9 of %s", i+1, resumeBound, leader.name)
		} else {
			probes = append(probes, p.Sub(killed))
			writer, wok := c.writerSince(killed)
			elected, eok := c.lastElection(killed, p)
			if wok && writer.Before(p) && writer.After(elected) {
				// The LEDGER leader may act as one only after applying
				// what it has: the writer takes over then.
				elected, eok = writer, true
			}
			if eok {
				afterWriter = append(afterWriter, p.Sub(elected))
			}
			t.Logf("rep %d: writes resumed after %v (kms-go, all endpoints: %v; the last stream election or the new writer: %v)",
				i+1, p.Sub(killed).Round(time.Millisecond), at.Sub(killed).Round(time.Millisecond), elected.Sub(killed).Round(time.Millisecond))
		}
		c.restart(leader)
		// One failure at a time: the next kill waits until the restarted
		// node's replicas are current again, as a rolling restart would
		// (README.md, Clusters). Killing the leader while another node
		// still catches up is losing two of three.
		took, err := c.waitHealth(leader, "/v1/health/ready?replicas", 120*time.Second)
		if err != nil {
			t.Error(err)
		}
		caughtUp = append(caughtUp, took)
	}
	close(stop)
	cr.wg.Wait()
	// A request waits at most --audit-wait (10 s) for an audit slot: when
	// an AUDIT election outlasts the backlog, a few are answered 503
	// "audit is busy" (README.md, Clusters); measured 6 in 410,917.
	loop.checkBudget(t, "per-node clients on serving nodes, leader killed", 0, 100)

	if len(probes) > 0 {
		slices.Sort(probes)
		figure(t, "writes resumed after kill -9 of the LEDGER writer (%d reps; a creation through one node at a time, 3 s per attempt): min %v median %v max %v",
			len(probes), probes[0].Round(time.Millisecond), probes[len(probes)/2].Round(time.Millisecond), probes[len(probes)-1].Round(time.Millisecond))
	}
	if len(afterWriter) > 0 {
		slices.Sort(afterWriter)
		figure(t, "of which after the last stream election or the new writer taking over, whichever came later (%d reps): min %v median %v max %v",
			len(afterWriter), afterWriter[0].Round(time.Millisecond), afterWriter[len(afterWriter)/2].Round(time.Millisecond), afterWriter[len(afterWriter)-1].Round(time.Millisecond))
		if last := afterWriter[len(afterWriter)-1]; last > afterElectionBound {
			t.Errorf("writes resumed only %v after the streams had elected their leaders, bound %v", last, afterElectionBound)
		}
	}
	if len(resumes) > 0 {
		slices.Sort(resumes)
		figure(t, "kms-go with all endpoints (8 creators, 10 s per call): first creation after the kill: min %v median %v max %v",
			resumes[0].Round(time.Millisecond), resumes[len(resumes)/2].Round(time.Millisecond), resumes[len(resumes)-1].Round(time.Millisecond))
	}
	if len(caughtUp) > 0 {
		slices.Sort(caughtUp)
		figure(t, "the restarted node's replicas current (ready?replicas) after exec: min %v median %v max %v",
			caughtUp[0].Round(time.Millisecond), caughtUp[len(caughtUp)/2].Round(time.Millisecond), caughtUp[len(caughtUp)-1].Round(time.Millisecond))
	}
	figure(t, "key creations: %d acknowledged, %d failed attempts (retried with the same name); first failure: %v", len(cr.acked), cr.failed, cr.firstErr)
	c.checkAcked(cr.acked, "after the leader kills")

	// All three at once.
	c.kill(c.nodes...)
	start := time.Now()
	for _, nd := range c.nodes {
		c.start(nd)
	}
	c.waitServing(c.nodes...)
	figure(t, "kill -9 of all three nodes: serving again %v after restart", time.Since(start).Round(time.Millisecond))
	c.checkAcked(cr.acked, "after kill -9 of all three")
	c.sameAuditEvents()
}

// TestClusterHungLeader stops (SIGSTOP) the LEDGER writer for 10 s: key
// creations through the two other nodes succeed meanwhile (after the
// election), and after SIGCONT the hung node is ready again by itself and
// lists the keys created while it was stopped.
func TestClusterHungLeader(t *testing.T) {
	c := newCluster(t, 3, "")
	leader := c.leader()
	var others []*node
	for _, nd := range c.nodes {
		if nd != leader {
			others = append(others, nd)
		}
	}
	cl := c.client(others...)
	acked := map[string]bool{}
	c.signal(leader, syscall.SIGSTOP)
	stopped := time.Now()
	var first time.Duration
	attempts := 0
	// Stopped for 10 s, or until a creation through the others succeeds
	// (at most 20 s: the election and a forwarder's attempt on the hung
	// writer take longer on a loaded machine).
	for time.Since(stopped) < 10*time.Second || (len(acked) == 0 && time.Since(stopped) < 20*time.Second) {
		name := harness.UniqueName("hung")
		ctx, cancel := callCtx(10 * time.Second)
		err := cl.CreateKey(ctx, c.enclave, &kms.CreateKeyRequest{Name: name})
		cancel()
		attempts++
		if err == nil {
			acked[name] = true
			if first == 0 {
				first = time.Since(stopped)
			}
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	c.signal(leader, syscall.SIGCONT)
	if len(acked) == 0 {
		t.Fatalf("no key creation through %s and %s succeeded while %s was stopped for %v (%d attempts)", others[0].name, others[1].name, leader.name, time.Since(stopped).Round(time.Second), attempts)
	}
	figure(t, "SIGSTOP of the LEDGER writer: first creation through the others after %v; %d created while it was stopped", first.Round(time.Millisecond), len(acked))
	took, err := c.waitHealth(leader, "/v1/health/ready", 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	figure(t, "SIGCONT: %s ready again after %v", leader.name, took.Round(time.Millisecond))
	if _, err := c.waitHealth(leader, "/v1/health/ready?write", 60*time.Second); err != nil {
		t.Error(err)
	}
	c.checkAcked(acked, "after SIGCONT")
	ctx := testCtx(t)
	name := harness.UniqueName("after")
	if err := c.client(leader).CreateKey(ctx, c.enclave, &kms.CreateKeyRequest{Name: name}); err != nil {
		t.Errorf("CreateKey through the resumed %s: %v", leader.name, err)
	}
	c.sameAuditEvents()
}

// firstWrite creates keys through the running nodes but dead, one node
// at a time with a client of that node alone and 3 s per attempt, until
// one succeeds or d has passed; it returns when (zero if none did). It
// measures when the cluster takes writes again, apart from a client's
// choice of endpoints (kms-go skips an endpoint for 30 s after an error).
func (c *cluster) firstWrite(dead *node, d time.Duration) time.Time {
	deadline := time.Now().Add(d)
	clients := map[*node]*kms.Client{}
	for i := 0; time.Now().Before(deadline); i++ {
		nd := c.nodes[i%len(c.nodes)]
		if nd == dead || !nd.up() {
			continue
		}
		if clients[nd] == nil {
			clients[nd] = c.client(nd)
		}
		ctx, cancel := callCtx(3 * time.Second)
		err := clients[nd].CreateKey(ctx, c.enclave, &kms.CreateKeyRequest{Name: harness.UniqueName("probe")})
		cancel()
		if err == nil {
			return time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Time{}
}

// errClass is err without the request URL, for counting errors by kind.
func errClass(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}
