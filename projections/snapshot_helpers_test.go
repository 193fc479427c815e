package projections

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
)

// testHSM returns a new software HSM key.
func testHSM(t testing.TB) *softkey.Key {
	t.Helper()
	s, err := softkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := softkey.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// gen writes random but valid histories: each event is one a decider
// could have written after the ones before it.
type gen struct {
	rng      *mrand.Rand
	minute   int
	enclaves []string
	keys     map[string]map[string]uint32 // enclave -> key -> highest version
	ids      map[string][]string          // enclave -> identities
	roles    map[string][]string          // enclave -> AppRole roles
}

func newGen(seed uint64) *gen {
	return &gen{rng: mrand.New(mrand.NewPCG(seed, 1)), keys: map[string]map[string]uint32{}, ids: map[string][]string{}, roles: map[string][]string{}}
}

// init returns the system.initialized event sealed under w.
func (g *gen) init(t testing.TB, w hsm.Wrapper) (ledger.Event, *hsm.REK) {
	rek, sealed, err := hsm.NewREK(context.Background(), w, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return g.ev(t, ledger.TypeSystemInitialized, "", ledger.SystemSubject(), ledger.SystemInitialized{RootIdentity: asofRoot,
		DefaultType: "AES256", SealedREK: sealed, HSMKeyID: w.KeyID(), HSMName: "soft", HSMKind: "soft"}), rek
}

func (g *gen) ev(t testing.TB, typ, enclave, subject string, p any) ledger.Event {
	t.Helper()
	g.minute++
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%s-%d-%s", typ, g.minute, subject)
	at := asofT0.Add(time.Duration(g.minute) * time.Second)
	if g.rng != nil && g.rng.IntN(8) == 0 {
		at = at.Add(-3 * time.Second) // decided before an event already appended
	}
	return ledger.Event{Type: typ, ID: id, Time: at, Actor: asofRoot,
		Enclave: enclave, Aggregate: subject, CommandID: id, Payload: b}
}

func pick[T any](g *gen, xs []T) T { return xs[g.rng.IntN(len(xs))] }

// next returns the next event of the history.
func (g *gen) next(t testing.TB) ledger.Event {
	if len(g.enclaves) == 0 || g.rng.IntN(40) == 0 {
		e := fmt.Sprintf("e%d", len(g.enclaves))
		g.enclaves = append(g.enclaves, e)
		g.keys[e] = map[string]uint32{}
		return g.ev(t, ledger.TypeEnclaveCreated, "", ledger.EnclaveSubject(e), ledger.EnclaveCreated{Name: e})
	}
	e := pick(g, g.enclaves)
	var names []string
	for n := range g.keys[e] {
		names = append(names, n)
	}
	names = sortedStrings(names)
	switch r := g.rng.IntN(13); {
	case r < 4 || len(names) == 0:
		n := fmt.Sprintf("k%d", g.rng.IntN(50))
		v := g.keys[e][n] + 1
		g.keys[e][n] = v
		p := ledger.KeyCreated{Name: n, Version: v, Type: pick(g, []string{"AES256", "ChaCha20"}), SecretRef: ledger.SecretRef(e, n, v), Fingerprint: fmt.Sprintf("fp%d", g.minute)}
		if g.rng.IntN(3) == 0 {
			p.Source = &ledger.ImportSource{Kind: "kes-fs", Name: n}
			return g.ev(t, ledger.TypeKeyImported, e, ledger.KeySubject(e, n), p)
		}
		return g.ev(t, ledger.TypeKeyCreated, e, ledger.KeySubject(e, n), p)
	case r == 4:
		n := pick(g, names)
		return g.ev(t, pick(g, []string{ledger.TypeKeyDisabled, ledger.TypeKeyEnabled}), e, ledger.KeySubject(e, n), ledger.KeyDisabled{Name: n, Version: uint32(g.rng.IntN(2))})
	case r == 5:
		n := pick(g, names)
		return g.ev(t, ledger.TypeKeyDeletionScheduled, e, ledger.KeySubject(e, n), ledger.KeyDeletionScheduled{Name: n, Deadline: asofT0.Add(time.Duration(g.minute) * time.Hour)})
	case r == 6:
		n := pick(g, names)
		return g.ev(t, ledger.TypeKeyRestored, e, ledger.KeySubject(e, n), ledger.KeyRestored{Name: n})
	case r == 7:
		n := pick(g, names)
		delete(g.keys[e], n)
		return g.ev(t, ledger.TypeKeyDeleted, e, ledger.KeySubject(e, n), ledger.KeyDeleted{Name: n, Reason: "test"})
	case r == 8:
		id := fmt.Sprintf("h1:id%d", g.rng.IntN(20))
		g.ids[e] = append(g.ids[e], id)
		return g.ev(t, ledger.TypeIdentityCreated, e, ledger.IdentitySubject(e, id), ledger.IdentityCreated{Identity: id,
			Privilege: ledger.PrivilegeUser, Tags: map[string]string{"team": e}})
	case r == 9:
		p := fmt.Sprintf("p%d", g.rng.IntN(5))
		if len(g.ids[e]) > 0 && g.rng.IntN(2) == 0 {
			id := pick(g, g.ids[e])
			return g.ev(t, ledger.TypePolicyAssigned, e, ledger.IdentitySubject(e, id), ledger.PolicyAssigned{Identity: id, Policy: p})
		}
		return g.ev(t, ledger.TypePolicyCreated, e, ledger.PolicySubject(e, p), ledger.PolicyCreated{Name: p,
			Allow: map[string][]string{"KEY:DECRYPT": {"k*"}}, Deny: map[string][]string{"KEY:DELETE": nil}})
	case r == 11:
		return g.transit(t, e, names)
	case r == 10 && len(g.ids[e]) > 0:
		id := pick(g, g.ids[e])
		return g.ev(t, ledger.TypeIdentityDeleted, e, ledger.IdentitySubject(e, id), ledger.IdentityDeleted{Identity: id})
	default:
		n := pick(g, names)
		v := g.keys[e][n]
		if g.keys[e][n] = v - 1; v == 1 {
			delete(g.keys[e], n)
		}
		return g.ev(t, ledger.TypeKeyVersionDeleted, e, ledger.KeySubject(e, n), ledger.KeyVersionDeleted{Name: n, Version: v})
	}
}

// transit returns one of the Transit API's events in enclave e: a key's
// Transit settings, an AppRole role or secret id, or a token.
func (g *gen) transit(t testing.TB, e string, names []string) ledger.Event {
	id := fmt.Sprintf("h1:id%d", g.rng.IntN(20))
	switch g.rng.IntN(4) {
	case 0:
		n := pick(g, names)
		return g.ev(t, ledger.TypeKeyTransitConfigured, e, ledger.KeySubject(e, n), ledger.KeyTransitConfigured{Name: n,
			Derived: g.rng.IntN(2) == 0, DeletionAllowed: g.rng.IntN(2) == 0, MinDecryptionVersion: uint32(g.rng.IntN(3))})
	case 1:
		if roles := g.roles[e]; len(roles) > 0 {
			r := pick(g, roles)
			return g.ev(t, ledger.TypeAppRoleSecretIDAdded, e, ledger.AppRoleSubject(e, r), ledger.AppRoleSecretIDAdded{Role: r,
				Accessor: fmt.Sprintf("acc%d", g.minute), Hash: fmt.Sprintf("%064x", g.minute)})
		}
		fallthrough
	case 2:
		r := fmt.Sprintf("role%d", g.rng.IntN(3))
		g.roles[e] = append(g.roles[e], r)
		return g.ev(t, ledger.TypeAppRoleSet, e, ledger.AppRoleSubject(e, r), ledger.AppRoleSet{Role: r, RoleID: "rid-" + r, Identity: id, TokenTTL: 60})
	default:
		acc := fmt.Sprintf("tok%d", g.minute)
		return g.ev(t, ledger.TypeTokenIssued, e, ledger.TokenSubject(e, acc), ledger.TokenIssued{Accessor: acc,
			Hash: fmt.Sprintf("%064x", g.minute+1<<20), Identity: id, Path: "auth/approle/login", TTL: 60,
			ExpiresAt: asofT0.Add(time.Duration(g.minute) * time.Hour)})
	}
}

func sortedStrings(xs []string) []string {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j] < xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
	return xs
}

// sameState fails t unless a and b hold the same facts: the same
// encoding (every field, sorted) and no Diff.
func sameState(t *testing.T, what string, a, b *State) {
	t.Helper()
	ea, eb := encodeState(nil, a), encodeState(nil, b)
	if !bytes.Equal(ea, eb) {
		t.Errorf("%s: states differ (seq %d vs %d, %d vs %d bytes)", what, a.Seq, b.Seq, len(ea), len(eb))
	}
	if d := Diff(a, b); len(d) != 0 {
		t.Errorf("%s: Diff = %v, want none", what, d)
	}
	if stateJSON(t, a) != stateJSON(t, b) {
		t.Errorf("%s: JSON views differ", what)
	}
}
