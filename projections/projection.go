package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
)

// Errors returned by Projection lookups. ErrEnclaveNotFound and
// ErrKeyNotFound are also the commands package's not-found errors
// (commands.ErrEnclaveNotFound, commands.ErrKeyNotFound are these values).
var (
	ErrEnclaveNotFound = errors.New("projections: enclave does not exist")
	ErrKeyNotFound     = errors.New("projections: key does not exist")
	ErrClosed          = errors.New("projections: closed")
	// ErrSealed: the projection has no REK to unseal key material with.
	ErrSealed = errors.New("projections: the root encryption key is not unsealed")
	// ErrKeyDisabled: the key or the version is disabled.
	ErrKeyDisabled = errors.New("projections: key is disabled")
	// ErrKeyPendingDeletion: the key is scheduled for deletion.
	ErrKeyPendingDeletion = errors.New("projections: key is pending deletion")
)

// Projection keeps a State up to date with the LEDGER: it replays the
// stream at start and then tails it. Key material is unsealed with the
// REK on use and kept in a bounded cache (cache.go).
type Projection struct {
	store *ledger.Store
	rek   atomic.Pointer[hsm.REK] // nil until the REK is unsealed
	log   *slog.Logger
	now   func() time.Time
	cache *keyCache

	mu      sync.RWMutex
	st      *State
	err     error         // first apply error; the projection stops there
	changed chan struct{} // closed and replaced on every applied event

	stop        func()
	snap        *snapshotter // nil without snapshots (snapshot.go)
	startedFrom uint64       // the snapshot's sequence Open started from; 0 = full replay

	asof *asofIndex // time travel (asof_index.go), built on first use
}

// Options tune a Projection.
type Options struct {
	// KeyCache is the most unsealed key versions kept in memory
	// (0 = DefaultKeyCache). A version not among them is unsealed again
	// from its sealed material when it is used.
	KeyCache int
	// Snapshots, if set, keeps sealed snapshots of the state on local
	// disk and starts from the newest (snapshot.go).
	Snapshots *SnapshotConfig
	// Preloaded, if set, is the snapshot PreloadSnapshot read from
	// Snapshots while the ledger was opened (snapshot_preload.go).
	Preloaded *Preload
	// TimeTravelEvery, TimeTravelBudget and TimeTravelDisk tune the index
	// of past states that StateAt answers from: the first spacing in
	// events, the most RAM and the most disk (bytes) it takes (0:
	// DefaultTimeTravelEvery, DefaultTimeTravelBudget,
	// DefaultTimeTravelDisk). Its states are in a spill file, unlinked as
	// soon as created, in TimeTravelDir ("": the snapshot directory if
	// any, else os.TempDir()).
	TimeTravelEvery  uint64
	TimeTravelBudget int
	TimeTravelDisk   int64
	TimeTravelDir    string
}

// Open replays the ledger into a new State and keeps tailing it until
// Close. rek unseals key material; it may be nil for a projection that
// never does crypto (audit, time travel), or until SetREK.
func Open(ctx context.Context, store *ledger.Store, rek *hsm.REK, log *slog.Logger) (*Projection, error) {
	return OpenWith(ctx, store, rek, log, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, store *ledger.Store, rek *hsm.REK, log *slog.Logger, o Options) (*Projection, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Projection{store: store, log: log, now: time.Now, st: NewState(), changed: make(chan struct{}), cache: newKeyCache(o.KeyCache)}
	p.asof = newAsofIndex(store, log, o.asofConfig())
	p.st.dropped = p.cache.drop
	p.rek.Store(rek)
	if o.Snapshots != nil && o.Snapshots.Dir != "" {
		p.snap = &snapshotter{cfg: *o.Snapshots, kick: make(chan struct{}, 1), done: make(chan struct{})}
	}
	last, err := p.replay(ctx, o.Preloaded)
	if err != nil {
		return nil, fmt.Errorf("projections: replay: %w", err)
	}
	p.st.Seq = max(p.st.Seq, last)
	stop, err := store.Subscribe(context.Background(), last+1, p.apply)
	if err != nil {
		return nil, fmt.Errorf("projections: subscribe: %w", err)
	}
	p.stop = stop
	if p.snap != nil {
		p.startSnapshots()
	}
	return p, nil
}

// SetREK sets the Root Encryption Key once it is unsealed; until then,
// and for a projection opened with a nil REK, key material stays sealed.
func (p *Projection) SetREK(rek *hsm.REK) { p.rek.Store(rek) }

// asofConfig is the configuration of the time-travel index.
func (o Options) asofConfig() asofConfig {
	c := asofConfig{every: o.TimeTravelEvery, budget: o.TimeTravelBudget, disk: o.TimeTravelDisk, dir: o.TimeTravelDir}
	if c.dir == "" && o.Snapshots != nil {
		c.dir = o.Snapshots.Dir
	}
	return c
}

// Close stops tailing the ledger and, with snapshots, writes a last one;
// it frees the time-travel index (later queries replay the ledger).
func (p *Projection) Close() {
	if p.stop != nil {
		p.stop()
	}
	p.closeSnapshots()
	p.asof.close()
}

func (p *Projection) apply(ev ledger.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil || ev.Seq <= p.st.Seq {
		return
	}
	if err := p.st.Apply(ev); err != nil {
		p.err = err
		p.log.Error("projection stopped", "seq", ev.Seq, "err", err)
	}
	p.noteApplied()
	close(p.changed)
	p.changed = make(chan struct{})
}

// Seq returns the last applied stream sequence.
func (p *Projection) Seq() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.st.Seq
}

// WaitFor blocks until the projection has applied seq or ctx ends.
func (p *Projection) WaitFor(ctx context.Context, seq uint64) error {
	for {
		p.mu.RLock()
		applied, ch, err := p.st.Seq, p.changed, p.err
		p.mu.RUnlock()
		if err != nil {
			return err
		}
		if applied >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("projections: wait for seq %d (at %d): %w", seq, applied, ctx.Err())
		}
	}
}

// CatchUp waits until the projection has applied the current stream head,
// so that a "not found" answer is never given from a stale view.
func (p *Projection) CatchUp(ctx context.Context) error {
	head, err := p.store.Head(ctx)
	if err != nil {
		return err
	}
	return p.WaitFor(ctx, head)
}

// View calls fn with the state under the read lock. fn must not keep
// references to the state after it returns, nor modify it.
func (p *Projection) View(fn func(*State)) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	fn(p.st)
}

// Key returns the unsealed key version (0 = latest) and its metadata,
// whatever the key's state (for status requests).
func (p *Projection) Key(ctx context.Context, enclave, name string, version uint32) (*hsm.Key, *Version, error) {
	return p.key(ctx, enclave, name, version, false)
}

// UsableKey is Key for crypto requests: it fails with ErrKeyDisabled or
// ErrKeyPendingDeletion when the key or version may not be used, and
// records the use.
func (p *Projection) UsableKey(ctx context.Context, enclave, name string, version uint32) (*hsm.Key, *Version, error) {
	return p.key(ctx, enclave, name, version, true)
}

func (p *Projection) key(ctx context.Context, enclave, name string, version uint32, use bool) (*hsm.Key, *Version, error) {
	var (
		v            *Version
		ename, kname string // as the version's secret reference names them
		err          error
	)
	p.View(func(s *State) {
		e := s.Enclaves[enclave]
		if e == nil {
			err = ErrEnclaveNotFound
			return
		}
		k := e.Keys[name]
		if k == nil {
			err = ErrKeyNotFound
			return
		}
		ename, kname = e.Name, k.Name
		if version == 0 {
			v = k.Latest()
		} else {
			v = k.Version(version)
		}
		if v == nil {
			err = ErrKeyNotFound
			return
		}
		if use {
			err = k.Usable(v)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	key, err := p.cache.get(v, func() (*hsm.Key, error) {
		sealed, err := p.store.GetSecret(ctx, v.SecretRef(ename, kname))
		if err != nil {
			return nil, err
		}
		return p.unseal(enclave, name, v, sealed)
	}, func(put func()) { p.admit(enclave, name, v, put) })
	if err != nil {
		return nil, nil, fmt.Errorf("projections: unseal %s/%s v%d: %w", enclave, name, v.Version, err)
	}
	if use {
		// At most one store a second, so hot keys do not bounce a
		// shared cache line between cores on every request.
		if now := p.now().UnixNano(); now-v.LastUsed.Load() > int64(time.Second) {
			v.LastUsed.Store(now)
		}
	}
	return key, v, nil
}

// KeyCacheStats returns the counters of the cache of unsealed key
// versions.
func (p *Projection) KeyCacheStats() CacheStats { return p.cache.stats() }
