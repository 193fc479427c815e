package api

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm"
)

// TestHSMRefusalsInErrorTable: the refusals of add-hsm and rm-hsm are
// answered from errorTable with their status and the error's own text,
// and count as refusals; an HSM that fails (wrong key, unreachable) does
// not, so add-hsm answers it as the HSM's failure.
func TestHSMRefusalsInErrorTable(t *testing.T) {
	ambiguous := fmt.Errorf("%w: %q is a, b", commands.ErrHSMAmbiguous, "soft")
	for _, c := range []struct {
		err    error
		status int
		msg    string
	}{
		{commands.ErrHSMExists, http.StatusConflict, "the root encryption key is already sealed under this HSM"},
		{commands.ErrLastHSM, http.StatusConflict, "refusing to remove the last HSM the root encryption key is sealed under"},
		{ambiguous, http.StatusConflict, `several sealings of the root encryption key have that name: give the key id: "soft" is a, b`},
		{commands.ErrHSMNotFound, http.StatusNotFound, "the root encryption key is not sealed under an HSM of that name"},
	} {
		status, msg := resolveError(c.err, errorTable)
		if status != c.status || msg != c.msg {
			t.Errorf("resolveError(%v) = %d %q, want %d %q", c.err, status, msg, c.status, c.msg)
		}
		if !refused(c.err) {
			t.Errorf("refused(%v) = false, want true", c.err)
		}
	}
	failed := fmt.Errorf("commands: add HSM %q: the sealed REK does not open again: %w", "soft", fmt.Errorf("softkey x: %w", hsm.ErrUnseal))
	if refused(failed) {
		t.Errorf("refused(%v) = true, want false: an HSM failure is not a refusal", failed)
	}
	if refused(errors.New("ledger: conflict")) {
		t.Error("refused(an unknown error) = true, want false")
	}
}

// TestKESTableIsAnOverlay: every row of kesErrorTable answers something
// other than errorTable does for the same error (a row that agrees
// belongs in errorTable alone), and every error of errorTable has a KES
// answer that is not 500.
func TestKESTableIsAnOverlay(t *testing.T) {
	for _, e := range kesErrorTable {
		ks, km := kesErrorOf(e.err)
		s, m := resolveError(e.err, errorTable)
		if ks == s && km == m {
			t.Errorf("kesErrorTable row for %v repeats errorTable's %d %q", e.err, s, m)
		}
		if ks != e.status || km != e.msg {
			t.Errorf("kesErrorOf(%v) = %d %q, want the overlay's %d %q", e.err, ks, km, e.status, e.msg)
		}
	}
	for _, e := range errorTable {
		if s, m := kesErrorOf(e.err); s == http.StatusInternalServerError || m == "" {
			t.Errorf("kesErrorOf(%v) = %d %q, want a status and message", e.err, s, m)
		}
	}
}
