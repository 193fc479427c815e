package api

// /v1/db: the backup of a node (kms-go ReadDB, `kmsledger backup`) and the
// upload of one (kms-go WriteDB). Root only.
//
// GET streams a backup (ledger/backup.go) as it is written: Content-Type
// application/gzip and no Content-Encoding, so that HTTP clients keep the
// bytes as they are and the file on disk is the backup itself.
//
// PUT (or POST) streams the upload into a temporary file (at most
// DBConfig.MaxUpload bytes, before the route's deadline), checks every
// byte of it and verifies its hash chains and signed checkpoints; a
// running node then refuses to replace its state (409) and says how to
// restore offline. Nothing of the node changes either way.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
)

// Limits of /v1/db.
const (
	// dbTimeout bounds one backup download or upload.
	dbTimeout = 30 * time.Minute
	// DefaultMaxDBUpload is the largest backup PUT /v1/db accepts
	// (DBConfig.MaxUpload = 0).
	DefaultMaxDBUpload = 4 << 30
)

// DBConfig serves /v1/db. Its functions are the node's.
type DBConfig struct {
	// Backup writes a backup of the node to w (after a checkpoint, so
	// that all of it is signed).
	Backup func(ctx context.Context, w io.Writer) (ledger.BackupStats, error)
	// Check verifies the backup in f (size bytes) with the node's HSMs
	// and returns a one-line summary; the error says what is wrong.
	Check func(ctx context.Context, f *os.File, size int64) (string, error)
	// MaxUpload bounds an uploaded backup (0 = DefaultMaxDBUpload).
	MaxUpload int64
	// TempDir holds uploads while they are checked ("" = os.TempDir()).
	TempDir string
}

// errNoDB answers /v1/db on a server without DBConfig.
var errNoDB = &statusError{http.StatusServiceUnavailable, "backups are not configured on this server"}

// maxDBUpload returns the upload limit of the route.
func (s *Server) maxDBUpload() int64 {
	if s.cfg.DB != nil && s.cfg.DB.MaxUpload > 0 {
		return s.cfg.DB.MaxUpload
	}
	return DefaultMaxDBUpload
}

// handleDBRead streams a backup of the node.
func (s *Server) handleDBRead(w http.ResponseWriter, r *http.Request, in routeReq) {
	if s.cfg.DB == nil || s.cfg.DB.Backup == nil {
		writeError(w, r, s.log, errNoDB)
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+time.Now().UTC().Format(BackupNameLayout)+`"`)
	w.Header().Set("Cache-Control", "no-store")
	cw := &countWriter{w: w}
	st, err := s.cfg.DB.Backup(in.ctx, cw)
	if err != nil {
		if cw.n == 0 {
			writeError(w, r, s.log, err)
			return
		}
		// Too late for a status: the client gets a file without its
		// trailer, which no restore accepts.
		s.log.Error("backup failed while streaming", "written", cw.n, "err", err)
		return
	}
	s.log.Info("backup sent", "identity", in.identity, "ledger", st.Ledger, "audit", st.Audit, "secrets", st.Secrets, "bytes", cw.n)
}

// BackupNameLayout is the default file name of a backup, a time layout:
// YYYYMMDD_HHMMSS_kms.db.gzip, as minkms names its backups.
const BackupNameLayout = "20060102_150405_kms.db.gzip"

// countWriter counts what it writes and starts the response streaming at
// its first write (the audit writer would otherwise hold it all).
type countWriter struct {
	w       http.ResponseWriter
	n       int64
	started bool
}

func (c *countWriter) Write(b []byte) (int, error) {
	if !c.started {
		c.started = true
		c.w.WriteHeader(http.StatusOK)
		http.NewResponseController(c.w).Flush()
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// handleDBWrite receives a backup, checks it, and refuses to replace the
// running node's state.
func (s *Server) handleDBWrite(w http.ResponseWriter, r *http.Request, in routeReq) {
	if s.cfg.DB == nil || s.cfg.DB.Check == nil {
		writeError(w, r, s.log, errNoDB)
		return
	}
	f, err := os.CreateTemp(s.cfg.DB.TempDir, "kmsledger-upload-*.db.gzip")
	if err != nil {
		writeError(w, r, s.log, fmt.Errorf("api: upload: %w", err))
		return
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	n, err := io.Copy(f, r.Body) // r.Body is bounded by the route (MaxBytesReader)
	if err != nil {
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) {
			err = bodyError(err)
		}
		w.Header().Set("Connection", "close")
		writeError(w, r, s.log, err)
		return
	}
	if n == 0 {
		writeError(w, r, s.log, badRequest("empty body: send a backup file"))
		return
	}
	summary, err := s.cfg.DB.Check(in.ctx, f, n)
	if err != nil {
		writeError(w, r, s.log, badRequest("not a backup this node can restore: %v", err))
		return
	}
	writeError(w, r, s.log, &statusError{http.StatusConflict, "backup verified (" + summary + "); a running node does not " +
		"replace its state: stop the server and run `kmsledger restore FILE --data-dir DIR` on its data directory"})
}
