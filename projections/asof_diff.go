package projections

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Operations of a Change.
const (
	ChangeAdded   = "added"
	ChangeRemoved = "removed"
	ChangeChanged = "changed"
)

// Kinds of object a Change is about.
const (
	KindEnclave    = "enclave"
	KindKey        = "key"
	KindVersion    = "version"
	KindIdentity   = "identity"
	KindAssignment = "assignment" // the policy assigned to an identity
	KindPolicy     = "policy"
	KindTombstone  = "tombstone" // the reserved name of a destroyed key
)

// Change is one difference between two states.
type Change struct {
	Op          string // ChangeAdded, ChangeRemoved or ChangeChanged
	Kind        string // KindEnclave, KindKey, …
	Enclave     string
	Name        string // the key, identity or policy; the enclave for KindEnclave
	Version     uint32 // KindVersion only
	Description string // one line for people, e.g. `key "k" version 2 added (AES256)`
}

// Diff returns what changed from state a to state b: enclaves, keys with
// their versions and states, tombstones, identities, policy assignments
// and policies that were added, removed or changed. Either state may be
// nil (empty). Changes are ordered by enclave, then keys, tombstones,
// identities and policies, each by name. Diff reads a and b only.
func Diff(a, b *State) []Change {
	ea, eb := enclavesOf(a), enclavesOf(b)
	var out []Change
	for _, name := range unionKeys(ea, eb) {
		x, y := ea[name], eb[name]
		switch {
		case x == nil:
			out = append(out, Change{Op: ChangeAdded, Kind: KindEnclave, Enclave: name, Name: name,
				Description: fmt.Sprintf("enclave %q created", name)})
		case y == nil:
			out = append(out, Change{Op: ChangeRemoved, Kind: KindEnclave, Enclave: name, Name: name,
				Description: fmt.Sprintf("enclave %q deleted", name)})
		case !x.CreatedAt.Equal(y.CreatedAt):
			out = append(out, Change{Op: ChangeChanged, Kind: KindEnclave, Enclave: name, Name: name,
				Description: fmt.Sprintf("enclave %q deleted and created again", name)})
		}
		d := enclaveDiff{enclave: name}
		if x != nil && y != nil && !x.CreatedAt.Equal(y.CreatedAt) {
			// A new incarnation: everything of the old one is gone.
			d.diff(x, nil)
			d.diff(nil, y)
		} else {
			d.diff(x, y)
		}
		out = append(out, d.out...)
	}
	return out
}

func enclavesOf(s *State) map[string]*Enclave {
	if s == nil {
		return nil
	}
	return s.Enclaves
}

// unionKeys returns the keys of a and b, sorted, without duplicates.
func unionKeys[K cmp.Ordered, V any](a, b map[K]V) []K {
	u := slices.AppendSeq(slices.Collect(maps.Keys(a)), maps.Keys(b))
	slices.Sort(u)
	return slices.Compact(u)
}

// unionVersions returns the numbers of the live versions of a and b,
// sorted.
func unionVersions(a, b *Key) []uint32 {
	var u []uint32
	for _, v := range a.Versions() {
		u = append(u, v.Version)
	}
	for _, v := range b.Versions() {
		u = append(u, v.Version)
	}
	slices.Sort(u)
	return slices.Compact(u)
}

// enclaveDiff collects the changes inside one enclave.
type enclaveDiff struct {
	enclave string
	out     []Change
}

func (d *enclaveDiff) add(op, kind, name string, version uint32, format string, args ...any) {
	d.out = append(d.out, Change{Op: op, Kind: kind, Enclave: d.enclave, Name: name, Version: version,
		Description: fmt.Sprintf(format, args...)})
}

// diff compares two states of the same incarnation of an enclave; nil
// is empty.
func (d *enclaveDiff) diff(a, b *Enclave) {
	var ka, kb map[string]*Key
	var ta, tb map[string]*Tombstone
	var ia, ib map[string]*Identity
	var pa, pb map[string]*Policy
	if a != nil {
		ka, ta, ia, pa = a.Keys, a.Tombstones, a.Identities, a.Policies
	}
	if b != nil {
		kb, tb, ib, pb = b.Keys, b.Tombstones, b.Identities, b.Policies
	}
	for _, n := range unionKeys(ka, kb) {
		d.key(n, ka[n], kb[n], tb[n])
	}
	for _, n := range unionKeys(ta, tb) {
		switch x, y := ta[n], tb[n]; {
		case x == nil && ka[n] == nil:
			d.add(ChangeAdded, KindTombstone, n, 0, "key %q created and destroyed; its name is reserved", n)
		case y == nil && kb[n] == nil:
			d.add(ChangeRemoved, KindTombstone, n, 0, "name of destroyed key %q released", n)
		}
	}
	for _, n := range unionKeys(ia, ib) {
		d.identity(n, ia[n], ib[n])
	}
	for _, n := range unionKeys(pa, pb) {
		d.policy(n, pa[n], pb[n])
	}
}

func keyState(k *Key) string {
	switch {
	case !k.DeletionDeadline().IsZero():
		return "pending deletion until " + k.DeletionDeadline().UTC().Format(time.RFC3339)
	case k.Disabled:
		return "disabled"
	}
	return "enabled"
}

func versionState(v *Version) string {
	if v.Disabled {
		return "disabled"
	}
	return "enabled"
}

func (d *enclaveDiff) key(n string, a, b *Key, tomb *Tombstone) {
	switch {
	case a == nil:
		var vs []string
		for _, v := range b.SortedVersions() {
			vs = append(vs, fmt.Sprintf("v%d %s", v.Version, v.Type))
		}
		d.add(ChangeAdded, KindKey, n, 0, "key %q created (%s), %s", n, strings.Join(vs, ", "), keyState(b))
		return
	case b == nil:
		how := "destroyed"
		if tomb != nil && tomb.Reason != "" {
			how += " (" + tomb.Reason + " deletion)"
		}
		d.add(ChangeRemoved, KindKey, n, 0, "key %q %s", n, how)
		return
	case !a.CreatedAt().Equal(b.CreatedAt()):
		d.add(ChangeChanged, KindKey, n, 0, "key %q destroyed, its name released and created again", n)
		d.key(n, nil, b, nil)
		return
	}
	if sa, sb := keyState(a), keyState(b); sa != sb {
		d.add(ChangeChanged, KindKey, n, 0, "key %q %s (was %s)", n, sb, sa)
	}
	for _, v := range unionVersions(a, b) {
		x, y := a.Version(v), b.Version(v)
		switch {
		case x == nil:
			d.add(ChangeAdded, KindVersion, n, v, "key %q version %d added (%s)", n, v, y.Type)
		case y == nil:
			d.add(ChangeRemoved, KindVersion, n, v, "key %q version %d destroyed", n, v)
		case x.Disabled != y.Disabled:
			d.add(ChangeChanged, KindVersion, n, v, "key %q version %d %s (was %s)", n, v, versionState(y), versionState(x))
		}
	}
}

func describeIdentity(x *Identity) string {
	s := x.Privilege
	if x.ServiceAccount {
		s += ", service account of " + x.Parent
	}
	if len(x.Tags) > 0 {
		var tags []string
		for _, k := range slices.Sorted(maps.Keys(x.Tags)) {
			tags = append(tags, k+"="+x.Tags[k])
		}
		s += ", tags " + strings.Join(tags, " ")
	}
	return s
}

func (d *enclaveDiff) identity(n string, a, b *Identity) {
	switch {
	case a == nil:
		d.add(ChangeAdded, KindIdentity, n, 0, "identity %s created (%s)", n, describeIdentity(b))
		if b.Policy != "" {
			d.add(ChangeAdded, KindAssignment, n, 0, "identity %s assigned policy %q", n, b.Policy)
		}
		return
	case b == nil:
		d.add(ChangeRemoved, KindIdentity, n, 0, "identity %s deleted", n)
		return
	}
	if da, db := describeIdentity(a), describeIdentity(b); da != db || !a.CreatedAt.Equal(b.CreatedAt) {
		d.add(ChangeChanged, KindIdentity, n, 0, "identity %s replaced: %s (was %s)", n, db, da)
	}
	switch {
	case a.Policy == b.Policy:
	case a.Policy == "":
		d.add(ChangeAdded, KindAssignment, n, 0, "identity %s assigned policy %q", n, b.Policy)
	case b.Policy == "":
		d.add(ChangeRemoved, KindAssignment, n, 0, "identity %s no longer assigned policy %q", n, a.Policy)
	default:
		d.add(ChangeChanged, KindAssignment, n, 0, "identity %s assigned policy %q (was %q)", n, b.Policy, a.Policy)
	}
}

// describeRules writes "allow KEY:DECRYPT [a b*]; deny KEY:DELETE [*]".
func describeRules(p *Policy) string {
	var parts []string
	for _, r := range []struct {
		verb  string
		rules map[string][]string
	}{{"allow", p.Allow}, {"deny", p.Deny}} {
		for _, cmd := range slices.Sorted(maps.Keys(r.rules)) {
			parts = append(parts, fmt.Sprintf("%s %s %v", r.verb, cmd, r.rules[cmd]))
		}
	}
	if len(parts) == 0 {
		return "no rules"
	}
	return strings.Join(parts, "; ")
}

// ruleChanges lists the rules of b that differ from a.
func ruleChanges(a, b *Policy) string {
	var parts []string
	for _, r := range []struct {
		verb string
		x, y map[string][]string
	}{{"allow", a.Allow, b.Allow}, {"deny", a.Deny, b.Deny}} {
		for _, cmd := range unionKeys(r.x, r.y) {
			if !slices.Equal(r.x[cmd], r.y[cmd]) {
				parts = append(parts, fmt.Sprintf("%s %s %v → %v", r.verb, cmd, r.x[cmd], r.y[cmd]))
			}
		}
	}
	return strings.Join(parts, "; ")
}

func (d *enclaveDiff) policy(n string, a, b *Policy) {
	switch {
	case a == nil:
		d.add(ChangeAdded, KindPolicy, n, 0, "policy %q created: %s", n, describeRules(b))
	case b == nil:
		d.add(ChangeRemoved, KindPolicy, n, 0, "policy %q deleted", n)
	default:
		if c := ruleChanges(a, b); c != "" {
			d.add(ChangeChanged, KindPolicy, n, 0, "policy %q edited: %s", n, c)
		} else if !a.CreatedAt.Equal(b.CreatedAt) {
			d.add(ChangeChanged, KindPolicy, n, 0, "policy %q written again with the same rules", n)
		}
	}
}
