package api

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// sentinelDirs are the packages whose exported Err* variables can reach
// an HTTP answer, relative to this package.
var sentinelDirs = []string{"../ledger", "../commands", "../projections", "../projections/keys", "../projections/access", "../hsm", "wire"}

// sentinels are the values of the variables sentinelDirs declare, by
// "package.Name"; TestSentinelsAreDeclared keeps this list equal to the
// source, so a new sentinel must be added here and get a row or a reason.
var sentinels = map[string]error{
	"commands.ErrAppRoleNotFound":       commands.ErrAppRoleNotFound,
	"commands.ErrTokenNotFound":         commands.ErrTokenNotFound,
	"hsm.ErrTransitContext":             hsm.ErrTransitContext,
	"hsm.ErrTransitHash":                hsm.ErrTransitHash,
	"hsm.ErrTransitLength":              hsm.ErrTransitLength,
	"commands.ErrCommandIDReused":       commands.ErrCommandIDReused,
	"commands.ErrEnclaveExists":         commands.ErrEnclaveExists,
	"commands.ErrEnclaveNotFound":       commands.ErrEnclaveNotFound,
	"commands.ErrHSMAmbiguous":          commands.ErrHSMAmbiguous,
	"commands.ErrHSMExists":             commands.ErrHSMExists,
	"commands.ErrHSMNotFound":           commands.ErrHSMNotFound,
	"commands.ErrIdentityNotFound":      commands.ErrIdentityNotFound,
	"commands.ErrInvalidArgument":       commands.ErrInvalidArgument,
	"commands.ErrInvalidName":           commands.ErrInvalidName,
	"commands.ErrKeyExists":             commands.ErrKeyExists,
	"commands.ErrKeyNotFound":           commands.ErrKeyNotFound,
	"commands.ErrKeyTombstoned":         commands.ErrKeyTombstoned,
	"commands.ErrLastHSM":               commands.ErrLastHSM,
	"commands.ErrNoHSM":                 commands.ErrNoHSM,
	"commands.ErrNotInitialized":        commands.ErrNotInitialized,
	"commands.ErrNotPending":            commands.ErrNotPending,
	"commands.ErrPolicyNotFound":        commands.ErrPolicyNotFound,
	"commands.ErrSigningKey":            commands.ErrSigningKey,
	"commands.ErrSkipped":               commands.ErrSkipped,
	"commands.ErrUnchanged":             commands.ErrUnchanged,
	"hsm.ErrDecrypt":                    hsm.ErrDecrypt,
	"hsm.ErrInvalidHMACKey":             hsm.ErrInvalidHMACKey,
	"hsm.ErrInvalidKeyMaterial":         hsm.ErrInvalidKeyMaterial,
	"hsm.ErrInvalidKeyType":             hsm.ErrInvalidKeyType,
	"hsm.ErrInvalidLength":              hsm.ErrInvalidLength,
	"hsm.ErrUnseal":                     hsm.ErrUnseal,
	"ledger.ErrAuditBusy":               ledger.ErrAuditBusy,
	"ledger.ErrBadBackup":               ledger.ErrBadBackup,
	"ledger.ErrBatchDuplicate":          ledger.ErrBatchDuplicate,
	"ledger.ErrClosed":                  ledger.ErrClosed,
	"ledger.ErrConflict":                ledger.ErrConflict,
	"ledger.ErrCorruptBlock":            ledger.ErrCorruptBlock,
	"ledger.ErrInvalid":                 ledger.ErrInvalid,
	"ledger.ErrLocked":                  ledger.ErrLocked,
	"ledger.ErrLookupTooLong":           ledger.ErrLookupTooLong,
	"ledger.ErrMalformed":               ledger.ErrMalformed,
	"ledger.ErrNotCluster":              ledger.ErrNotCluster,
	"ledger.ErrUnavailable":             ledger.ErrUnavailable,
	"ledger.ErrReadOnly":                ledger.ErrReadOnly,
	"ledger.ErrSecretExists":            ledger.ErrSecretExists,
	"ledger.ErrSecretNotFound":          ledger.ErrSecretNotFound,
	"ledger.ErrTampered":                ledger.ErrTampered,
	"projections.ErrBeyondHead":         projections.ErrBeyondHead,
	"projections.ErrClosed":             projections.ErrClosed,
	"projections.ErrEnclaveNotFound":    projections.ErrEnclaveNotFound,
	"projections.ErrKeyDisabled":        projections.ErrKeyDisabled,
	"projections.ErrKeyNotFound":        projections.ErrKeyNotFound,
	"projections.ErrKeyPendingDeletion": projections.ErrKeyPendingDeletion,
	"projections.ErrPointInTime":        projections.ErrPointInTime,
	"projections.ErrSealed":             projections.ErrSealed,
	"wire.ErrFrameLength":               wire.ErrFrameLength,
	"wire.ErrInvalidAPIKey":             wire.ErrInvalidAPIKey,
	"wire.ErrInvalidPattern":            wire.ErrInvalidPattern,
	"wire.ErrMalformed":                 wire.ErrMalformed,
	"wire.ErrNoFrames":                  wire.ErrNoFrames,
	"wire.ErrTooManyFrames":             wire.ErrTooManyFrames,
	"wire.ErrTruncatedFrame":            wire.ErrTruncatedFrame,
	"wire.ErrUnknownCommand":            wire.ErrUnknownCommand,
	"wire.ErrUnknownPrivilege":          wire.ErrUnknownPrivilege,
}

// internalErrors are the sentinels without a row in errorTable, each with
// the reason: a server fault that is rightly a logged 500, or an error
// that never reaches the tables as it is.
var internalErrors = map[string]string{
	"commands.ErrNoHSM":          "node start (Unseal) only: no request reaches it",
	"commands.ErrNotInitialized": "a server fault: a node serves only an initialized ledger",
	"commands.ErrSigningKey":     "node start only: the checkpoint signing key is checked when the node opens",
	"hsm.ErrInvalidHMACKey":      "raised by hsm.ImportVersionKES, which no route calls",
	"hsm.ErrUnseal":              "an HSM fault (wrong HSM key, tampered sealed REK): add-hsm answers it as its own 502",
	"ledger.ErrAuditBusy":        "a server fault: the audit log has no free record slot",
	"ledger.ErrBadBackup":        "only PUT /v1/db reads a backup, and answers a bad one as its own 400 (db.go)",
	"ledger.ErrBatchDuplicate":   "a server fault: commands gives every batch fresh command ids (NewID)",
	"ledger.ErrClosed":           "a server fault: the store is closed (shutdown)",
	"ledger.ErrConflict":         "a server fault: an optimistic append lost to a concurrent one",
	"ledger.ErrCorruptBlock":     "a server fault: the stored history is damaged",
	"ledger.ErrInvalid":          "a server fault: the ledger was called with an argument commands should have refused",
	"ledger.ErrLocked":           "node start only: the data directory is in use",
	"ledger.ErrMalformed":        "a server fault: a stored event does not decode",
	"ledger.ErrNotCluster":       "RemovePeer is reached only through ClusterView, which a single node does not have",
	"ledger.ErrReadOnly":         "a server fault: a read-only store was asked to append",
	"ledger.ErrSecretExists":     "a server fault: commands stores sealed material under fresh references",
	"ledger.ErrSecretNotFound":   "a server fault: the ledger names sealed material its store does not hold",
	"ledger.ErrTampered":         "a server fault: the history does not verify",
	"projections.ErrBeyondHead":  "pastState (timetravel.go) answers it as a 400 statusError before the tables",
	"projections.ErrPointInTime": "pastState (timetravel.go) answers it as a 400 statusError before the tables",
	"projections.ErrClosed":      "a server fault: the projection is closed (shutdown)",
	"projections.ErrSealed":      "a server fault: the node serves only with the REK unsealed",
	"wire.ErrFrameLength":        "handleKMS answers a DecodeFrames error as a 400 statusError",
	"wire.ErrNoFrames":           "handleKMS answers a DecodeFrames error as a 400 statusError",
	"wire.ErrTooManyFrames":      "handleKMS answers a DecodeFrames error as a 400 statusError",
	"wire.ErrTruncatedFrame":     "handleKMS answers a DecodeFrames error as a 400 statusError",
	"wire.ErrMalformed":          "parseCall answers an UnmarshalProto error as a 400 statusError",
	"wire.ErrInvalidAPIKey":      "raised by ParseAPIKey for the root API key of the config or CLI, never by a request",
	"wire.ErrUnknownPrivilege":   "raised by ParsePrivilege, which no route calls",
}

// declaredSentinels parses the non-test Go files of dir and returns the
// exported package-level variables named Err*, as "package.Name".
func declaredSentinels(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	fset := token.NewFileSet()
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, s := range g.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					if strings.HasPrefix(n.Name, "Err") && n.IsExported() {
						names = append(names, f.Name.Name+"."+n.Name)
					}
				}
			}
		}
	}
	return names
}

// TestSentinelsAreDeclared: the sentinels list holds exactly the Err*
// variables the packages declare, so a new one cannot go unchecked.
func TestSentinelsAreDeclared(t *testing.T) {
	var declared []string
	for _, dir := range sentinelDirs {
		declared = append(declared, declaredSentinels(t, dir)...)
	}
	if len(declared) == 0 {
		t.Fatal("no sentinels parsed")
	}
	for _, name := range declared {
		if _, ok := sentinels[name]; !ok {
			t.Errorf("%s is declared but not in sentinels: add it, with a row in errorTable or a reason in internalErrors", name)
		}
	}
	for name := range sentinels {
		if !slices.Contains(declared, name) {
			t.Errorf("%s is in sentinels but declared in none of %v", name, sentinelDirs)
		}
	}
}

// TestEverySentinelHasAnAnswer: every sentinel gets a status other than
// 500 and a message from errorTable, and from the KES tables, unless it
// is an internal error with a reason; an internal error must still be a
// 500 (a row for it makes its allow-list entry stale).
func TestEverySentinelHasAnAnswer(t *testing.T) {
	for name, err := range sentinels {
		reason, internal := internalErrors[name]
		status, msg := resolveError(err, errorTable)
		kesStatus, kesMsg := kesErrorOf(err)
		switch {
		case internal && reason == "":
			t.Errorf("%s is an internal error without a reason", name)
		case internal && (status != http.StatusInternalServerError || kesStatus != http.StatusInternalServerError):
			t.Errorf("%s is listed as internal but answers %d %q (KES %d %q): drop it from internalErrors", name, status, msg, kesStatus, kesMsg)
		case !internal && (status == http.StatusInternalServerError || msg == ""):
			t.Errorf("%s answers %d %q: give it a row in errorTable or a reason in internalErrors", name, status, msg)
		case !internal && (kesStatus == http.StatusInternalServerError || kesMsg == ""):
			t.Errorf("%s answers KES clients %d %q: want a status and message", name, kesStatus, kesMsg)
		}
	}
	for name := range internalErrors {
		if _, ok := sentinels[name]; !ok {
			t.Errorf("internalErrors names %s, which is not a sentinel", name)
		}
	}
}
