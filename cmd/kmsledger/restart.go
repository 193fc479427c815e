package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/kmsledger/kmsledger/api"
)

// restarter serves POST /v1/debug/restart for `kmsledger server`: the
// request stops the server gracefully (as SIGTERM does), and once it has
// closed, the process replaces itself by a fresh start of the same
// binary with the same arguments and environment. (A --dev server
// without a data dir starts over with a new throw-away one.) It also
// hands the API the process's log fan-out (api.TeeLogger), so that the
// log streams carry every record of the process.
type restarter struct {
	stop      context.CancelFunc
	requested atomic.Bool
	log       *slog.Logger
	logs      *api.LogTee
}

// configure is the node's ConfigureAPI hook that installs it.
func (r *restarter) configure(cfg *api.Config) {
	cfg.LogTee = r.logs
	cfg.Restart = func(self bool) {
		// A single node: ?self or not, it restarts itself.
		r.requested.Store(true)
		r.stop()
	}
}

// after runs once the server has stopped with err: it re-executes the
// process if a restart was asked for.
func (r *restarter) after(err error) error {
	if err != nil || !r.requested.Load() {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	r.log.Warn("restarting", "executable", exe)
	return syscall.Exec(exe, os.Args, os.Environ())
}
