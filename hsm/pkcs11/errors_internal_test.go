package pkcs11

import (
	"errors"
	"testing"

	p11 "github.com/miekg/pkcs11"
)

// The PIN-locked and PIN-expired paths cannot be reached on SoftHSM2; these
// tests inject the return values instead.

func TestLoginError(t *testing.T) {
	tests := []struct {
		code    uint
		wantPIN bool
	}{
		{p11.CKR_PIN_INCORRECT, true},
		{p11.CKR_PIN_LOCKED, true},
		{p11.CKR_PIN_EXPIRED, true},
		{p11.CKR_PIN_INVALID, true},
		{p11.CKR_PIN_LEN_RANGE, true},
		{p11.CKR_USER_PIN_NOT_INITIALIZED, true},
		{p11.CKR_DEVICE_ERROR, false},
		{p11.CKR_TOKEN_NOT_PRESENT, false},
	}
	for _, tc := range tests {
		err := loginError("tok", p11.Error(tc.code))
		if errors.Is(err, ErrPIN) != tc.wantPIN {
			t.Errorf("loginError(%v) = %v, want ErrPIN: %v", p11.Error(tc.code), err, tc.wantPIN)
		}
		if !tc.wantPIN && !errors.Is(err, p11.Error(tc.code)) {
			t.Errorf("loginError(%v) = %v, want it to wrap the return value", p11.Error(tc.code), err)
		}
	}
}

func TestCheckTokenFlags(t *testing.T) {
	const ok = p11.CKF_TOKEN_INITIALIZED | p11.CKF_USER_PIN_INITIALIZED
	tests := []struct {
		name  string
		flags uint
		want  error
	}{
		{"ready", ok, nil},
		{"not initialised", p11.CKF_USER_PIN_INITIALIZED, ErrTokenNotFound},
		{"user PIN locked", ok | p11.CKF_USER_PIN_LOCKED, ErrPIN},
		{"no user PIN", p11.CKF_TOKEN_INITIALIZED, ErrPIN},
	}
	for _, tc := range tests {
		err := checkTokenFlags(p11.TokenInfo{Label: "tok", Flags: tc.flags})
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("checkTokenFlags(%s) = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestRejected(t *testing.T) {
	for code, want := range map[uint]bool{
		p11.CKR_ENCRYPTED_DATA_INVALID: true,
		p11.CKR_WRAPPED_KEY_INVALID:    true,
		ckrAEADDecryptFailed:           true,
		p11.CKR_GENERAL_ERROR:          true, // SoftHSM2's tag mismatch
		p11.CKR_SESSION_HANDLE_INVALID: false,
		p11.CKR_DEVICE_REMOVED:         false,
		p11.CKR_USER_NOT_LOGGED_IN:     false,
	} {
		if got := rejected(p11.Error(code)); got != want {
			t.Errorf("rejected(%v) = %v, want %v", p11.Error(code), got, want)
		}
	}
}
