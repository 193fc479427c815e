package commands

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

const (
	root  = "h1:1XtC8x9-VpkRibo1WuzcIAXzrpKIxLjlMErH9zkZkQE"
	alice = "h1:arR75DQsEPiGAUDhKYyrK9xo_XSCttl0nyua-NNvjYc"
	bob   = "h1:bbR75DQsEPiGAUDhKYyrK9xo_XSCttl0nyua-NNvjYc"
)

// fakeSeal stands in for the REK: Decide only needs opaque sealed bytes
// and a fingerprint.
func fakeSeal(kt hsm.KeyType, raw, hmacKey, aad []byte) ([]byte, string, error) {
	if raw == nil {
		return append([]byte("sealed:"), aad...), "fp-generated", nil
	}
	return append([]byte("sealed:"), aad...), hsm.Fingerprint(raw), nil
}

// given folds commands into a state the way the ledger would, assigning
// stream sequences.
func given(t *testing.T, cmds ...Command) *projections.State {
	t.Helper()
	s := projections.NewState()
	must(t, s, ledger.Event{Type: ledger.TypeSystemInitialized, Aggregate: ledger.SystemSubject(),
		Payload: mustJSON(ledger.SystemInitialized{RootIdentity: root, DefaultType: "AES256"})})
	for _, c := range cmds {
		d, err := Decide(s, c, env(root))
		if err != nil {
			t.Fatalf("given %T: %v", c, err)
		}
		must(t, s, d.Event)
	}
	return s
}

func must(t *testing.T, s *projections.State, ev ledger.Event) {
	t.Helper()
	ev.Seq = s.Seq + 1
	if err := s.Apply(ev); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

func env(actor string) Env {
	return Env{Now: time.Unix(1700000000, 0), Actor: actor, CommandID: "cmd", EventID: "ev", Seal: fakeSeal}
}

// decideCase is one given/when/then case of Decide: the commands
// already decided and applied, the command, and the error or the type of
// the event it decides (checked further by check).
type decideCase struct {
	name    string
	given   []Command
	when    Command
	wantErr error
	want    string // event type
	check   func(t *testing.T, d Decision)
}

// The commands and key material the cases share.
var (
	e1          = CreateEnclave{Name: "e1"}
	k1          = CreateKey{Enclave: "e1", Name: "k1"}
	keyMaterial = []byte("0123456789abcdef0123456789abcdef")
)

// runDecide runs each case by root and applies the decided event.
func runDecide(t *testing.T, tests []decideCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := given(t, tt.given...)
			d, err := Decide(s, tt.when, env(root))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Decide(%+v) err = %v, want %v", tt.when, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decide(%+v) err = %v, want nil", tt.when, err)
			}
			if d.Event.Type != tt.want || d.Event.Actor != root || d.Event.CommandID != "cmd" {
				t.Fatalf("event = %s by %s (cmd %s), want %s by root", d.Event.Type, d.Event.Actor, d.Event.CommandID, tt.want)
			}
			if tt.check != nil {
				tt.check(t, d)
			}
			if err := s.Apply(d.Event); err != nil {
				t.Fatalf("Apply(decided event) err = %v", err)
			}
		})
	}
}

func TestDecideEnclave(t *testing.T) {
	runDecide(t, []decideCase{
		{name: "CreateEnclave", when: e1, want: ledger.TypeEnclaveCreated},
		{name: "CreateEnclaveTwice", given: []Command{e1}, when: e1, wantErr: ErrEnclaveExists},
		{name: "CreateEnclaveBadName", when: CreateEnclave{Name: "a.b"}, wantErr: ErrInvalidName},
		{name: "CreateEnclaveReservedName", when: CreateEnclave{Name: "_"}, wantErr: ErrInvalidName},
		{name: "DeleteEnclaveMissing", when: DeleteEnclave{Name: "e1"}, wantErr: ErrEnclaveNotFound},
		{name: "DeleteEnclaveErasesMaterial", given: []Command{e1, k1}, when: DeleteEnclave{Name: "e1"}, want: ledger.TypeEnclaveDeleted,
			check: func(t *testing.T, d Decision) {
				if !slices.Equal(d.Erase, []string{"e1.>"}) {
					t.Errorf("Erase = %v, want [e1.>]", d.Erase)
				}
			}},
		{name: "KeyInMissingEnclave", when: k1, wantErr: ErrEnclaveNotFound},
		{name: "KeyInDeletedEnclave", given: []Command{e1, DeleteEnclave{Name: "e1"}}, when: k1, wantErr: ErrEnclaveNotFound},
	})
}

func TestDecideCreateKey(t *testing.T) {
	runDecide(t, []decideCase{
		{name: "CreateKeyDefaultType", given: []Command{e1}, when: k1, want: ledger.TypeKeyCreated,
			check: func(t *testing.T, d Decision) {
				var p ledger.KeyCreated
				json.Unmarshal(d.Event.Payload, &p)
				if p.Type != "AES256" || p.Version != 1 || p.SecretRef != "e1.k1.1.ev" || d.Put["e1.k1.1.ev"] == nil {
					t.Errorf("payload = %+v, put = %v", p, d.Put)
				}
				if d.Expect.Subject != "ledger.e1.key.k1" || d.Expect.Seq != 0 {
					t.Errorf("Expect = %+v, want create-once on ledger.e1.key.k1", d.Expect)
				}
			}},
		{name: "CreateKeyChaCha", given: []Command{e1}, when: CreateKey{Enclave: "e1", Name: "k1", Type: "ChaCha20"}, want: ledger.TypeKeyCreated},
		{name: "CreateKeyBadType", given: []Command{e1}, when: CreateKey{Enclave: "e1", Name: "k1", Type: "DES"}, wantErr: ErrInvalidArgument},
		{name: "CreateKeyTwice", given: []Command{e1, k1}, when: k1, wantErr: ErrKeyExists},
		{name: "CreateKeyBadName", given: []Command{e1}, when: CreateKey{Enclave: "e1", Name: "a b"}, wantErr: ErrInvalidName},
		{name: "CreateKeyLongName", given: []Command{e1}, when: CreateKey{Enclave: "e1", Name: string(make([]byte, 81))}, wantErr: ErrInvalidName},
		{name: "AddVersion", given: []Command{e1, k1}, when: CreateKey{Enclave: "e1", Name: "k1", AddVersion: true}, want: ledger.TypeKeyCreated,
			check: func(t *testing.T, d Decision) {
				var p ledger.KeyCreated
				json.Unmarshal(d.Event.Payload, &p)
				if p.Version != 2 || d.Expect.Seq == 0 {
					t.Errorf("version = %d, expect = %+v; want version 2 and the key's last sequence", p.Version, d.Expect)
				}
			}},
		{name: "AddVersionMissingKey", given: []Command{e1}, when: CreateKey{Enclave: "e1", Name: "k1", AddVersion: true}, wantErr: ErrKeyNotFound},
		{name: "VersionsNeverReused", given: []Command{e1, k1, CreateKey{Enclave: "e1", Name: "k1", AddVersion: true}, DeleteKey{Enclave: "e1", Name: "k1", Version: 2}},
			when: CreateKey{Enclave: "e1", Name: "k1", AddVersion: true}, want: ledger.TypeKeyCreated,
			check: func(t *testing.T, d Decision) {
				var p ledger.KeyCreated
				json.Unmarshal(d.Event.Payload, &p)
				if p.Version != 3 {
					t.Errorf("version = %d, want 3", p.Version)
				}
			}},
	})
}

func TestDecideImportKey(t *testing.T) {
	runDecide(t, []decideCase{
		{name: "Import", given: []Command{e1}, when: ImportKey{Enclave: "e1", Name: "k1", Material: keyMaterial}, want: ledger.TypeKeyImported,
			check: func(t *testing.T, d Decision) {
				var p ledger.KeyCreated
				json.Unmarshal(d.Event.Payload, &p)
				if p.Source == nil || p.Source.Kind != "api" || p.Fingerprint != hsm.Fingerprint(keyMaterial) {
					t.Errorf("payload = %+v", p)
				}
			}},
		{name: "ImportShort", given: []Command{e1}, when: ImportKey{Enclave: "e1", Name: "k1", Material: keyMaterial[:16]}, wantErr: ErrInvalidArgument},
		{name: "ImportExisting", given: []Command{e1, k1}, when: ImportKey{Enclave: "e1", Name: "k1", Material: keyMaterial}, wantErr: ErrKeyExists},
		{name: "ImportSameMaterialUnchanged", given: []Command{e1, ImportKey{Enclave: "e1", Name: "k1", Material: keyMaterial}},
			when: ImportKey{Enclave: "e1", Name: "k1", Material: keyMaterial, OnConflict: ConflictReplace}, wantErr: ErrUnchanged},
		{name: "ImportConflictSkip", given: []Command{e1, k1}, when: ImportKey{Enclave: "e1", Name: "k1", Material: keyMaterial, OnConflict: ConflictSkip}, wantErr: ErrSkipped},
		{name: "ImportConflictReplace", given: []Command{e1, k1}, when: ImportKey{Enclave: "e1", Name: "k1", Material: keyMaterial, OnConflict: ConflictReplace},
			want: ledger.TypeKeyImported,
			check: func(t *testing.T, d Decision) {
				var p ledger.KeyCreated
				json.Unmarshal(d.Event.Payload, &p)
				if p.Version != 2 || !p.Source.Replaced {
					t.Errorf("payload = %+v, want version 2 recorded as replaced", p)
				}
			}},
	})
}

func TestDecideDeleteKey(t *testing.T) {
	runDecide(t, []decideCase{
		{name: "DeleteLastVersionDeletesKey", given: []Command{e1, k1}, when: DeleteKey{Enclave: "e1", Name: "k1"}, want: ledger.TypeKeyDeleted},
		{name: "DeleteOneVersion", given: []Command{e1, k1, CreateKey{Enclave: "e1", Name: "k1", AddVersion: true}},
			when: DeleteKey{Enclave: "e1", Name: "k1", Version: 1}, want: ledger.TypeKeyVersionDeleted,
			check: func(t *testing.T, d Decision) {
				if !slices.Equal(d.Erase, []string{"e1.k1.1.ev"}) {
					t.Errorf("Erase = %v, want [e1.k1.1.ev]", d.Erase)
				}
			}},
		{name: "DeleteAll", given: []Command{e1, k1, CreateKey{Enclave: "e1", Name: "k1", AddVersion: true}},
			when: DeleteKey{Enclave: "e1", Name: "k1", All: true}, want: ledger.TypeKeyDeleted,
			check: func(t *testing.T, d Decision) {
				if !slices.Equal(d.Erase, []string{"e1.k1.1.ev", "e1.k1.2.ev"}) {
					t.Errorf("Erase = %v", d.Erase)
				}
			}},
		{name: "DeleteAllWithVersion", given: []Command{e1, k1}, when: DeleteKey{Enclave: "e1", Name: "k1", All: true, Version: 1}, wantErr: ErrInvalidArgument},
		{name: "DeleteMissingVersion", given: []Command{e1, k1, CreateKey{Enclave: "e1", Name: "k1", AddVersion: true}}, when: DeleteKey{Enclave: "e1", Name: "k1", Version: 7}, wantErr: ErrKeyNotFound},
		{name: "DeleteMissingKey", given: []Command{e1}, when: DeleteKey{Enclave: "e1", Name: "k1"}, wantErr: ErrKeyNotFound},
	})
}

func TestDecideIdentitiesAndPolicies(t *testing.T) {
	runDecide(t, []decideCase{
		{name: "CreateIdentity", given: []Command{e1}, when: CreateIdentity{Enclave: "e1", Identity: alice}, want: ledger.TypeIdentityCreated},
		{name: "CreateIdentityBad", given: []Command{e1}, when: CreateIdentity{Enclave: "e1", Identity: "alice"}, wantErr: ErrInvalidName},
		{name: "CreateIdentityRoot", given: []Command{e1}, when: CreateIdentity{Enclave: "e1", Identity: root}, wantErr: ErrInvalidArgument},
		{name: "CreateIdentitySysAdmin", given: []Command{e1}, when: CreateIdentity{Enclave: "e1", Identity: alice, Privilege: "SysAdmin"}, wantErr: ErrInvalidArgument},
		{name: "DeleteIdentityMissing", given: []Command{e1}, when: DeleteIdentity{Enclave: "e1", Identity: alice}, wantErr: ErrIdentityNotFound},
		{name: "AssignMissingPolicy", given: []Command{e1, CreateIdentity{Enclave: "e1", Identity: alice}}, when: AssignPolicy{Enclave: "e1", Identity: alice, Policy: "p"}, wantErr: ErrPolicyNotFound},
		{name: "AssignMissingIdentity", given: []Command{e1, CreatePolicy{Enclave: "e1", Name: "p"}}, when: AssignPolicy{Enclave: "e1", Identity: alice, Policy: "p"}, wantErr: ErrIdentityNotFound},
		{name: "Assign", given: []Command{e1, CreatePolicy{Enclave: "e1", Name: "p"}, CreateIdentity{Enclave: "e1", Identity: alice}},
			when: AssignPolicy{Enclave: "e1", Identity: alice, Policy: "p"}, want: ledger.TypePolicyAssigned},
		{name: "PolicyRulesCleaned", given: []Command{e1}, when: CreatePolicy{Enclave: "e1", Name: "p", Allow: map[string][]string{"KEY:GENERATE": {"b", "", "a", "b"}, "KEY:DECRYPT": {""}}},
			want: ledger.TypePolicyCreated,
			check: func(t *testing.T, d Decision) {
				var p ledger.PolicyCreated
				json.Unmarshal(d.Event.Payload, &p)
				if len(p.Allow) != 1 || !slices.Equal(p.Allow["KEY:GENERATE"], []string{"a", "b"}) {
					t.Errorf("Allow = %v, want only KEY:GENERATE [a b]", p.Allow)
				}
			}},
		{name: "DeletePolicyMissing", given: []Command{e1}, when: DeletePolicy{Enclave: "e1", Name: "p"}, wantErr: ErrPolicyNotFound},
	})
}

func TestDeleteIdentityTakesServiceAccounts(t *testing.T) {
	s := given(t, CreateEnclave{Name: "e1"}, CreateIdentity{Enclave: "e1", Identity: alice, Privilege: "Admin"})
	d, err := Decide(s, CreateIdentity{Enclave: "e1", Identity: bob, ServiceAccount: true}, env(alice))
	if err != nil {
		t.Fatal(err)
	}
	must(t, s, d.Event)
	if sa := s.Enclaves["e1"].Identities[bob]; sa == nil || sa.Parent != alice || !sa.ServiceAccount {
		t.Fatalf("service account = %+v, want parent alice", sa)
	}
	d, err = Decide(s, DeleteIdentity{Enclave: "e1", Identity: alice}, env(root))
	if err != nil {
		t.Fatal(err)
	}
	must(t, s, d.Event)
	if len(s.Enclaves["e1"].Identities) != 0 {
		t.Fatalf("identities after deleting the parent = %v, want none", s.Enclaves["e1"].Identities)
	}
}
