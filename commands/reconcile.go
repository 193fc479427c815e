package commands

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// ReconcileMark is how far Reconcile has checked: every sealed material
// stored in SECRETS up to sequence Secrets, and every destruction recorded
// in LEDGER up to sequence Ledger, was referenced by a live key version
// or erased. The zero mark has checked nothing.
type ReconcileMark struct {
	Ledger  uint64 `json:"ledger"`
	Secrets uint64 `json:"secrets"`
}

// Reconcile erases sealed material that no live key version references:
// material of a version whose deletion was recorded but whose erasure was
// interrupted, or material stored for a command that was never appended.
// It checks only what came after from: the material stored after
// from.Secrets (read headers only, in stream order) and the destructions
// appended after from.Ledger (the material under the destroyed versions'
// references); with the zero mark, every material of SECRETS. Material
// younger than grace is never erased (another node, or a command running
// now, may be between storing it and appending its event). An unbounded
// pass (upTo 0: the background passes) reads it on: a live version that
// references it settles it, and the mark returned stops before the first
// young material nothing references yet. Material stored after SECRETS
// sequence upTo is left alone, and the scan stops there: a node's first
// pass bounds itself to what was stored before the node started, so it
// needs no grace while the node serves. A bounded pass also stops at the
// first young material (a cluster node's first pass has the cluster's
// grace, and runs before the node serves: it reads no more than before).
// Store the mark and pass it to the next call.
func (h *Handler) Reconcile(ctx context.Context, from ReconcileMark, grace time.Duration, upTo uint64) (ReconcileMark, int, error) {
	if h.store.Clustered() {
		grace = max(grace, reconcileGrace)
	}
	sc, err := h.scanSecrets(ctx, from.Secrets, grace, upTo)
	if err != nil {
		return from, 0, err
	}
	if err := h.proj.CatchUp(ctx); err != nil {
		return from, 0, err
	}
	mark := ReconcileMark{Ledger: h.proj.Seq(), Secrets: sc.end}
	if from.Ledger > 0 {
		if err := h.destroyedSince(ctx, from.Ledger, mark.Ledger, sc.cands); err != nil {
			return from, 0, err
		}
	}
	if len(sc.cands)+len(sc.youngRefs) > 0 {
		h.proj.View(func(s *projections.State) {
			var ref []byte // one buffer: a million references, no allocation
			for _, e := range s.Enclaves {
				for _, k := range e.Keys {
					for _, v := range k.Versions() {
						ref = v.AppendSecretRef(ref[:0], e.Name, k.Name)
						delete(sc.cands, string(ref)) // the conversions do not allocate
						delete(sc.youngRefs, string(ref))
					}
					if len(sc.cands)+len(sc.youngRefs) == 0 {
						return
					}
				}
			}
		})
	}
	for _, seq := range sc.youngRefs { // nothing references them yet: a later pass reads them again
		mark.Secrets = min(mark.Secrets, seq-1)
	}
	erased := 0
	for ref, seq := range sc.cands {
		if seq == 0 && h.inFlight(ctx, ref, grace, sc.young) {
			continue
		}
		if err := h.store.EraseSecret(ctx, ref); err != nil {
			return from, erased, err
		}
		erased++
	}
	return mark, erased, nil
}

// secretsScan is what a pass read of SECRETS.
type secretsScan struct {
	cands     map[string]uint64 // old enough to erase: reference -> SECRETS sequence (0: from a destruction)
	youngRefs map[string]uint64 // too young to erase, checked for a reference only: reference -> sequence
	young     uint64            // the first material left alone for its age or the bound (0: none)
	end       uint64            // the last sequence the scan covered
}

// maxYoungScan bounds the young material one pass reads, and so the
// references it holds at once (about 100 bytes each): a bulk of creations
// stores up to about 250,000 a minute, a pass's interval. The scan stops
// there, and the mark before what it did not read.
const maxYoungScan = 1 << 19

// scanSecrets reads the material stored after sequence after: up to the
// bound upTo (0: none), and at most maxYoungScan young ones.
//
// Young material used to end the scan, and the mark then trailed the
// material by the grace: after a bulk of creations and kill -9, the first
// pass read the last 5 minutes of creations again, a million keys' worth
// of messages beside the start (BENCHMARKS.md, "Start after a
// bulk"). Young material that a live version references
// needs no other pass, so the scan reads on, and only what nothing
// references yet holds the mark back.
func (h *Handler) scanSecrets(ctx context.Context, after uint64, grace time.Duration, upTo uint64) (secretsScan, error) {
	sc := secretsScan{cands: map[string]uint64{}, youngRefs: map[string]uint64{}}
	var now time.Time
	if grace > 0 {
		now = h.Now() // read only when needed: a node's first pass runs beside its start
	}
	stop := uint64(0)
	end, err := h.store.ScanSecrets(ctx, after+1, func(e ledger.SecretEntry) error {
		over := (upTo != 0 && e.Seq > upTo) || len(sc.youngRefs) >= maxYoungScan
		young := grace > 0 && now.Sub(e.Stored) < grace
		if (over || young) && sc.young == 0 {
			sc.young = e.Seq
		}
		switch {
		case over, young && upTo != 0: // a first pass stops at young material, as before
			stop = e.Seq
			return errStopReplay
		case young:
			if _, ok := sc.youngRefs[e.Ref]; !ok { // the first: the mark stops before it
				sc.youngRefs[e.Ref] = e.Seq
			}
		default:
			sc.cands[e.Ref] = e.Seq
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopReplay) {
		return sc, err
	}
	sc.end = end
	if stop != 0 {
		sc.end = stop - 1
	}
	return sc, nil
}

// destroyedSince adds to cands the stored references of the key versions
// and enclaves that LEDGER events (after, to] destroyed.
func (h *Handler) destroyedSince(ctx context.Context, after, to uint64, cands map[string]uint64) error {
	var filters []string
	_, err := h.store.Replay(ctx, after+1, func(ev ledger.Event) error {
		if ev.Seq > to {
			return errStopReplay
		}
		switch ev.Type {
		case ledger.TypeKeyDeleted:
			var p ledger.KeyDeleted
			if err := json.Unmarshal(ev.Payload, &p); err != nil {
				return err
			}
			for _, v := range p.Versions {
				filters = append(filters, ledger.SecretRef(ev.Enclave, p.Name, v))
			}
		case ledger.TypeKeyVersionDeleted:
			var p ledger.KeyVersionDeleted
			if err := json.Unmarshal(ev.Payload, &p); err != nil {
				return err
			}
			filters = append(filters, ledger.SecretRef(ev.Enclave, p.Name, p.Version))
		case ledger.TypeEnclaveDeleted:
			if e := projections.EventEnclave(ev); e != "" {
				filters = append(filters, e+".>")
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopReplay) {
		return err
	}
	for _, f := range filters {
		alts := []string{f}
		if !strings.HasSuffix(f, ">") {
			alts = append(alts, f+".>") // "<enclave>.<key>.<version>.<attempt>"
		}
		for _, a := range alts {
			refs, err := h.store.ListSecrets(ctx, a)
			if err != nil {
				return err
			}
			for _, r := range refs {
				if _, ok := cands[r]; !ok {
					cands[r] = 0
				}
			}
		}
	}
	return nil
}

// errStopReplay ends a replay or a scan early; it never leaves this file.
var errStopReplay = errors.New("commands: stop replay")

// reconcileGrace is how old unreferenced material must be before a
// clustered node's Reconcile erases it: material is stored before the
// event that references it, and another node may be between the two.
const reconcileGrace = 10 * time.Minute

// inFlight reports whether ref is younger than grace or stored at or
// after SECRETS sequence young (0: none): it may belong to a command still
// being carried out (errors count as "may").
func (h *Handler) inFlight(ctx context.Context, ref string, grace time.Duration, young uint64) bool {
	if grace <= 0 && young == 0 {
		return false
	}
	e, err := h.store.SecretStored(ctx, ref)
	return err != nil || (grace > 0 && h.Now().Sub(e.Stored) < grace) || (young != 0 && e.Seq >= young)
}
