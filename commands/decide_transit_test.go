package commands

import (
	"errors"
	"testing"

	"github.com/kmsledger/kmsledger/ledger"
)

func TestDecideConfigureTransitKey(t *testing.T) {
	enc := CreateEnclave{Name: "e1"}
	key := CreateKey{Enclave: "e1", Name: "k1"}
	v2 := CreateKey{Enclave: "e1", Name: "k1", AddVersion: true}
	derived := ConfigureTransitKey{Enclave: "e1", Name: "k1", Derived: true}
	tests := []struct {
		name    string
		given   []Command
		when    ConfigureTransitKey
		wantErr error
	}{
		{"MissingKey", []Command{enc}, ConfigureTransitKey{Enclave: "e1", Name: "k1"}, ErrKeyNotFound},
		{"BadName", []Command{enc}, ConfigureTransitKey{Enclave: "e1", Name: "k/1"}, ErrInvalidName},
		{"FirstSetsDerived", []Command{enc, key}, derived, nil},
		{"DerivedFixed", []Command{enc, key, derived}, ConfigureTransitKey{Enclave: "e1", Name: "k1"}, ErrInvalidArgument},
		{"DerivedKept", []Command{enc, key, derived}, ConfigureTransitKey{Enclave: "e1", Name: "k1", Derived: true, DeletionAllowed: true}, nil},
		{"NotDerivedFixed", []Command{enc, key, ConfigureTransitKey{Enclave: "e1", Name: "k1"}}, derived, ErrInvalidArgument},
		{"MinDecryptionTooNew", []Command{enc, key}, ConfigureTransitKey{Enclave: "e1", Name: "k1", MinDecryptionVersion: 2}, ErrInvalidArgument},
		{"MinEncryptionTooNew", []Command{enc, key}, ConfigureTransitKey{Enclave: "e1", Name: "k1", MinEncryptionVersion: 2}, ErrInvalidArgument},
		{"MinEncryptionBelowDecryption", []Command{enc, key, v2}, ConfigureTransitKey{Enclave: "e1", Name: "k1", MinDecryptionVersion: 2, MinEncryptionVersion: 1}, ErrInvalidArgument},
		{"MinVersions", []Command{enc, key, v2}, ConfigureTransitKey{Enclave: "e1", Name: "k1", MinDecryptionVersion: 2, MinEncryptionVersion: 2}, nil},
	}
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
			if err != nil || d.Event.Type != ledger.TypeKeyTransitConfigured {
				t.Fatalf("Decide(%+v) = %s, %v, want %s", tt.when, d.Event.Type, err, ledger.TypeKeyTransitConfigured)
			}
			if err := s.Apply(d.Event); err != nil {
				t.Fatal(err)
			}
			got := s.Enclaves["e1"].Keys["k1"].Transit()
			if !got.Configured || got.Derived != tt.when.Derived || got.DeletionAllowed != tt.when.DeletionAllowed ||
				got.MinDecryptionVersion != tt.when.MinDecryptionVersion || got.MinEncryptionVersion != tt.when.MinEncryptionVersion {
				t.Errorf("applied settings = %+v, want those of %+v", got, tt.when)
			}
		})
	}
}
