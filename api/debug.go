package api

// The kms API's debug routes (root only):
//
//	POST   /v1/debug/pprof?cpu=B&heap=B[&thread=all|runtime|os][&block=N][&mutex=N]
//	                        start profiling (409 if a profiling runs already)
//	GET    /v1/debug/pprof  the running profiling (ProfileStatusResponse, protobuf)
//	DELETE /v1/debug/pprof  stop it and answer a TAR of pprof files (409 if none runs)
//	POST   /v1/debug/restart[?self]
//	                        restart the node (and, clustered, its peers first)
//
// The profiles are those of runtime/pprof, taken in process; nothing of
// net/http/pprof is mounted. The TAR holds cpu.pprof (CPU), heap.pprof
// (heap), goroutine.pprof (thread=runtime or all), threadcreate.pprof
// (thread=os or all), block.pprof (block=N: one blocking event sampled
// per N ns blocked) and mutex.pprof (mutex=N: 1/N of contention events).
// A CPU profile stops by itself after maxProfile, so that a forgotten one
// does not grow without bound; its data is kept for DELETE.

import (
	"archive/tar"
	"bytes"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
)

// maxProfile is the longest a CPU profile records.
const maxProfile = time.Hour

// profiling is the state of the node's profiling: at most one at a time.
type profiling struct {
	mu      sync.Mutex
	running bool
	status  wire.ProfileStatusResponse
	cpu     bytes.Buffer
	cpuStop *time.Timer // stops the CPU profile after maxProfile
	cpuOn   bool        // the CPU profile still records
}

// parseProfile reads the query of POST /v1/debug/pprof.
func parseProfile(r *http.Request) (wire.ProfileStatusResponse, error) {
	q := r.URL.Query()
	var st wire.ProfileStatusResponse
	for k, vs := range q {
		if len(vs) != 1 {
			return st, badRequest("profiling: parameter %q given %d times", truncate(k), len(vs))
		}
		v := vs[0]
		var err error
		switch k {
		case "cpu":
			st.CPU, err = strconv.ParseBool(v)
		case "heap":
			st.Heap, err = strconv.ParseBool(v)
		case "thread":
			switch v {
			case "all":
				st.Goroutine, st.Thread = true, true
			case "runtime":
				st.Goroutine = true
			case "os":
				st.Thread = true
			default:
				return st, badRequest("profiling: invalid thread %q: want all, runtime or os", truncate(v))
			}
		case "block", "mutex":
			var n uint64
			if n, err = strconv.ParseUint(v, 10, 31); err == nil {
				if k == "block" {
					st.BlockRate = uint32(n)
				} else {
					st.MutexFraction = uint32(n)
				}
			}
		default:
			return st, badRequest("profiling: unknown parameter %q", truncate(k))
		}
		if err != nil {
			return st, badRequest("profiling: invalid %s %q", k, truncate(v))
		}
	}
	return st, nil
}

// handleProfileStart serves POST /v1/debug/pprof.
func (s *Server) handleProfileStart(w http.ResponseWriter, r *http.Request, _ routeReq) {
	st, err := parseProfile(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	p := &s.prof
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		writeError(w, r, s.log, &statusError{http.StatusConflict, "profiling is already running: stop it first"})
		return
	}
	if st.CPU {
		p.cpu.Reset()
		if err := pprof.StartCPUProfile(&p.cpu); err != nil {
			// Someone else (a test binary's -cpuprofile) profiles the CPU.
			writeError(w, r, s.log, &statusError{http.StatusConflict, "CPU profiling is already in use in this process"})
			return
		}
		p.cpuOn = true
		p.cpuStop = time.AfterFunc(maxProfile, func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.cpuOn {
				pprof.StopCPUProfile()
				p.cpuOn = false
			}
		})
	}
	if st.BlockRate > 0 {
		runtime.SetBlockProfileRate(int(st.BlockRate))
	}
	if st.MutexFraction > 0 {
		runtime.SetMutexProfileFraction(int(st.MutexFraction))
	}
	st.Started = time.Now().UTC()
	p.running, p.status = true, st
	s.log.Info("profiling started", "identity", callerOf(r), "cpu", st.CPU, "heap", st.Heap,
		"goroutine", st.Goroutine, "thread", st.Thread, "block", st.BlockRate, "mutex", st.MutexFraction)
	writeBody(w, "application/octet-stream", nil)
}

// handleProfileStatus serves GET /v1/debug/pprof: the running profiling,
// or an all-zero status when none runs.
func (s *Server) handleProfileStatus(w http.ResponseWriter, r *http.Request, _ routeReq) {
	p := &s.prof
	p.mu.Lock()
	st := p.status
	if !p.running {
		st = wire.ProfileStatusResponse{}
	}
	p.mu.Unlock()
	writeBody(w, "application/octet-stream", st.MarshalProto())
}

// handleProfileStop serves DELETE /v1/debug/pprof: it stops the running
// profiling and answers its profiles as a TAR.
func (s *Server) handleProfileStop(w http.ResponseWriter, r *http.Request, _ routeReq) {
	p := &s.prof
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		writeError(w, r, s.log, &statusError{http.StatusConflict, "no profiling is running: start one first"})
		return
	}
	st := p.status
	p.running, p.status = false, wire.ProfileStatusResponse{}
	if p.cpuStop != nil {
		p.cpuStop.Stop()
		p.cpuStop = nil
	}
	if p.cpuOn {
		pprof.StopCPUProfile()
		p.cpuOn = false
	}
	if st.BlockRate > 0 {
		runtime.SetBlockProfileRate(0)
	}
	if st.MutexFraction > 0 {
		runtime.SetMutexProfileFraction(0)
	}
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	now := time.Now()
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	lookup := func(name string) []byte {
		var b bytes.Buffer
		pprof.Lookup(name).WriteTo(&b, 0)
		return b.Bytes()
	}
	var err error
	if st.CPU {
		err = add("cpu.pprof", p.cpu.Bytes())
		p.cpu.Reset()
	}
	for _, x := range []struct {
		on         bool
		file, name string
	}{
		{st.Heap, "heap.pprof", "heap"},
		{st.Goroutine, "goroutine.pprof", "goroutine"},
		{st.Thread, "threadcreate.pprof", "threadcreate"},
		{st.BlockRate > 0, "block.pprof", "block"},
		{st.MutexFraction > 0, "mutex.pprof", "mutex"},
	} {
		if x.on && err == nil {
			err = add(x.file, lookup(x.name))
		}
	}
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.log.Info("profiling stopped", "identity", callerOf(r), "bytes", out.Len())
	writeBody(w, "application/x-tar", out.Bytes())
}

// handleRestart serves POST /v1/debug/restart[?self]: the answer goes out
// first, then the node restarts (Config.Restart). Without ?self a
// clustered node restarts its peers first; a single node restarts itself
// either way.
func (s *Server) handleRestart(w http.ResponseWriter, r *http.Request, _ routeReq) {
	q := r.URL.Query()
	for k := range q {
		if k != "self" {
			writeError(w, r, s.log, badRequest("restart: unknown parameter %q", truncate(k)))
			return
		}
	}
	if s.cfg.Restart == nil {
		writeError(w, r, s.log, &statusError{http.StatusServiceUnavailable, "this server cannot restart itself: restart it with its service manager"})
		return
	}
	self := q.Has("self")
	s.log.Warn("restart requested", "identity", callerOf(r), "self", self)
	writeBody(w, "application/octet-stream", nil)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	go s.cfg.Restart(self)
}
