package node

// Backups: a running node's (GET /v1/db, after a checkpoint), a stopped
// node's data dir's, and the offline restore into a data dir, which
// verifies everything before it replaces anything.

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/ledger"
)

// dbConfig serves /v1/db with this node.
func (n *Node) dbConfig() *api.DBConfig {
	return &api.DBConfig{Backup: n.Backup, Check: n.checkBackup, TempDir: n.cfg.Dir}
}

// Backup writes a backup of the node to w. A node that signs checkpoints
// appends one first and backs up to it, so that the whole backup is
// signed.
func (n *Node) Backup(ctx context.Context, w io.Writer) (ledger.BackupStats, error) {
	if n.signer != nil {
		return n.Store.BackupSigned(ctx, w, n.signer, nil)
	}
	return n.Store.Backup(ctx, w, nil)
}

// checkBackup verifies an uploaded backup with this node's checkpoint key.
func (n *Node) checkBackup(_ context.Context, f *os.File, size int64) (string, error) {
	bf, err := ledger.OpenBackup(f, size, ledger.BackupFormat)
	if err != nil {
		return "", err
	}
	keys := map[string]ed25519.PublicKey{}
	if n.SigningKey != nil {
		keys[ledger.KeyID(n.SigningKey)] = n.SigningKey
	}
	rep, err := bf.Verify(keys)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("LEDGER 1..%d, AUDIT 1..%d, %d checkpoints", rep.Ledger.Last, rep.Audit.Last, rep.Checkpoints), nil
}

// BackupOffline writes a backup of the stopped node's data dir to w.
// Messages after its last checkpoint are in it, chained but not signed.
func BackupOffline(ctx context.Context, dir string, w io.Writer, progress ledger.Progress) (ledger.BackupStats, error) {
	store, err := OpenOffline(ctx, dir)
	if err != nil {
		return ledger.BackupStats{}, err
	}
	defer store.Close()
	return store.Backup(ctx, w, progress)
}

// ErrRestore is wrapped by the errors of a restore that changed nothing.
var ErrRestore = errors.New("restore refused (nothing was changed)")

// RestoreConfig configures RestoreOffline.
type RestoreConfig struct {
	File string       // the backup
	Dir  string       // the data dir to restore into
	HSMs []config.HSM // the HSMs that must open the backup
	// UntilSeq and Until cut the restore at a LEDGER sequence or a time
	// (zero: restore everything). The messages after the cut go to
	// RestFile (default: next to File, FILE-without-.db.gzip.after-<seq>.db.gzip).
	UntilSeq uint64
	Until    time.Time
	RestFile string
	// Force replaces a Dir that holds data: it is renamed to
	// Dir.before-restore-<time>, not deleted.
	Force    bool
	Progress ledger.Progress
}

// RestoreResult is what RestoreOffline did.
type RestoreResult struct {
	Report     *ledger.RestoreReport
	Verify     *ledger.VerifyReport // the restored data dir's verification
	RestFile   string               // "" if nothing was set aside
	MovedAside string               // where the old Dir went ("" if it held nothing)
	Rejected   []error              // recorded signing keys the HSMs do not vouch for
}

// RestoreOffline restores the backup File into the data dir Dir of a
// stopped node: it checks every byte of the file, writes the messages
// into a new directory next to Dir, has the configured HSMs open the
// restored ledger (unseal its REK and vouch for its checkpoint key),
// verifies the whole backup's hash chains and signed checkpoints and the
// restored ones with that key, and only then moves the new directory into
// place. Any failure removes what it wrote and leaves Dir as it was; the
// error wraps ErrRestore.
func RestoreOffline(ctx context.Context, cfg RestoreConfig) (res RestoreResult, err error) {
	fail := func(format string, args ...any) (RestoreResult, error) {
		return res, fmt.Errorf("%w: %w", ErrRestore, fmt.Errorf(format, args...))
	}
	if len(cfg.HSMs) == 0 {
		return fail("%w", ErrNoHSM)
	}
	f, err := os.Open(cfg.File)
	if err != nil {
		return fail("%w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail("%w", err)
	}
	bf, err := ledger.OpenBackup(f, fi.Size(), ledger.BackupFormat)
	if err != nil {
		return fail("%s: %w", cfg.File, err)
	}
	if err := checkTarget(ctx, cfg.Dir, cfg.Force); err != nil {
		return fail("%w", err)
	}
	stamp := time.Now().UTC().Format("20060102T150405")
	staging := filepath.Join(filepath.Dir(filepath.Clean(cfg.Dir)), "."+filepath.Base(cfg.Dir)+".restoring-"+stamp)
	restTmp := staging + ".rest"
	defer func() {
		if err != nil {
			os.RemoveAll(staging)
			os.Remove(restTmp)
		}
	}()
	if res.Report, err = restoreInto(ctx, bf, staging, restTmp, cfg); err != nil {
		return fail("%w", err)
	}
	keys, rejected, err := trustedKeysOf(ctx, staging, cfg.HSMs)
	res.Rejected = rejected
	if err != nil {
		return fail("the configured HSMs cannot open this backup: %w", err)
	}
	if _, err = bf.Verify(keys); err != nil {
		return fail("%s does not verify: %w", cfg.File, err)
	}
	ver, err := VerifyOffline(ctx, staging, cfg.HSMs, 0)
	res.Verify = ver.Report
	if err != nil {
		return fail("the restored ledger does not verify: %w", err)
	}
	return res, finishRestore(cfg, &res, staging, restTmp, stamp)
}

// trustedKeysOf returns the checkpoint keys the HSMs vouch for in the
// stopped data dir.
func trustedKeysOf(ctx context.Context, dir string, hsms []config.HSM) (map[string]ed25519.PublicKey, []error, error) {
	store, err := OpenOffline(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	defer store.Close()
	return TrustedKeys(ctx, store, hsms)
}

// checkTarget refuses a data dir that a server holds, or that holds data
// without force.
func checkTarget(ctx context.Context, dir string, force bool) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	case len(entries) == 0:
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "jetstream")); err == nil {
		s, err := OpenOffline(ctx, dir)
		if errors.Is(err, ledger.ErrLocked) {
			return err
		}
		if err == nil {
			s.Close()
		}
	}
	if !force {
		return fmt.Errorf("%s holds data: restore into a new directory, or pass --force to replace it (it is renamed, not deleted)", dir)
	}
	return nil
}

// restoreInto restores bf into the new directory staging, and the rest
// of a cut into restTmp.
func restoreInto(ctx context.Context, bf *ledger.BackupFile, staging, restTmp string, cfg RestoreConfig) (*ledger.RestoreReport, error) {
	// No fsync per message (a restore would be bound by them); every
	// file is synced once at the end, before anything is verified.
	store, err := ledger.Open(ctx, ledger.Config{Dir: staging, NoSync: true})
	if err != nil {
		return nil, err
	}
	opts := ledger.RestoreOptions{UntilSeq: cfg.UntilSeq, Until: cfg.Until, Progress: cfg.Progress}
	var rest *os.File
	if cfg.UntilSeq != 0 || !cfg.Until.IsZero() {
		if rest, err = os.OpenFile(restTmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			store.Close()
			return nil, err
		}
		defer rest.Close()
		opts.Rest = rest
	}
	rep, err := store.Restore(ctx, bf, opts)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err == nil && rest != nil {
		err = rest.Sync()
	}
	if err == nil {
		err = syncTree(staging)
	}
	return rep, err
}

// syncTree fsyncs every file and directory under dir, and dir's parent.
func syncTree(dir string) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return syncPath(p)
	})
	if err != nil {
		return fmt.Errorf("sync the restored data dir: %w", err)
	}
	return syncPath(filepath.Dir(dir))
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// finishRestore moves the old data dir aside, the restored one into
// place, and the rest file to its name.
func finishRestore(cfg RestoreConfig, res *RestoreResult, staging, restTmp, stamp string) error {
	rep := res.Report
	if rep.Rest != (ledger.BackupStats{}) {
		res.RestFile = cfg.RestFile
		if res.RestFile == "" {
			base := strings.TrimSuffix(strings.TrimSuffix(cfg.File, ".gzip"), ".db")
			res.RestFile = fmt.Sprintf("%s.after-%d.db.gzip", base, rep.LedgerLast)
		}
		if _, err := os.Lstat(res.RestFile); err == nil {
			return fmt.Errorf("%w: %s exists: name another rest file", ErrRestore, res.RestFile)
		}
	}
	if res.RestFile != "" {
		if err := os.Rename(restTmp, res.RestFile); err != nil {
			return fmt.Errorf("%w: %w", ErrRestore, err)
		}
	}
	if entries, err := os.ReadDir(cfg.Dir); err == nil && len(entries) > 0 {
		res.MovedAside = filepath.Clean(cfg.Dir) + ".before-restore-" + stamp
		if err := os.Rename(cfg.Dir, res.MovedAside); err != nil {
			return fmt.Errorf("%w: %w", ErrRestore, err)
		}
	} else if err == nil {
		os.Remove(cfg.Dir) // empty
	}
	if err := os.Rename(staging, cfg.Dir); err != nil {
		if res.MovedAside != "" {
			if rerr := os.Rename(res.MovedAside, cfg.Dir); rerr != nil {
				return fmt.Errorf("move the restored data dir into place: %w; and the old one could not be moved back from %s: %w", err, res.MovedAside, rerr)
			}
		}
		return fmt.Errorf("%w: move the restored data dir into place: %w", ErrRestore, err)
	}
	return nil
}
