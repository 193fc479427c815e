package api

// The server's log, teed to its subscribers: the kms API's log stream
// (POST /v1/debug/log, kms-go's Logs) and KES's /v1/log/error read the
// records logged through Config.Logger (or, with Config.LogTee, through
// every logger of the process made by TeeLogger) from the moment they
// subscribe, plus the last logRing records before (kms-go's "since").
// A subscriber that does not keep up loses records (counted per
// subscriber), never the server's time. Records hold what the log line
// holds, which by the logging rules never includes a secret.

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// logRing is how many recent records the tee keeps for new subscribers.
const logRing = 256

// logSubBuffer is how many records a subscriber may fall behind.
const logSubBuffer = 256

// LogTee is the fan-out of a logger made by TeeLogger.
type LogTee struct{ hub *logHub }

// TeeLogger returns a logger that writes what l writes and also hands
// every record to the server's log streams (Config.LogTee): give it to
// every part of the process whose records the streams should carry.
func TeeLogger(l *slog.Logger) (*slog.Logger, *LogTee) {
	hub := &logHub{}
	return slog.New(&teeHandler{inner: l.Handler(), hub: hub}), &LogTee{hub: hub}
}

// logEntry is one log record in the form the streams need.
type logEntry struct {
	Level    slog.Level
	Time     time.Time
	Message  string // the message and its attributes, as "msg key=value …"
	Method   string // of the request the record is about, if any
	Path     string
	Identity string
	IP       netip.Addr
}

// logHub fans log records out to subscribers.
type logHub struct {
	subs atomic.Int32 // number of subscribers: the tee's fast path
	mu   sync.Mutex
	set  map[*logSub]struct{}
	ring [logRing]logEntry
	n    int // records ever added (ring position)
}

// logSub is one subscriber.
type logSub struct {
	ch      chan logEntry
	min     slog.Level
	dropped atomic.Uint64
}

// subscribe adds a subscriber of the records at min or above, and
// returns it with the kept records since since (none for a zero since).
func (h *logHub) subscribe(min slog.Level, since time.Time) (*logSub, []logEntry) {
	sub := &logSub{ch: make(chan logEntry, logSubBuffer), min: min}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.set == nil {
		h.set = map[*logSub]struct{}{}
	}
	h.set[sub] = struct{}{}
	h.subs.Add(1)
	var past []logEntry
	if !since.IsZero() {
		for i := max(0, h.n-logRing); i < h.n; i++ {
			e := h.ring[i%logRing]
			if e.Level >= min && !e.Time.Before(since) {
				past = append(past, e)
			}
		}
	}
	return sub, past
}

// unsubscribe removes sub.
func (h *logHub) unsubscribe(sub *logSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.set[sub]; ok {
		delete(h.set, sub)
		h.subs.Add(-1)
	}
}

// publish hands e to every subscriber that wants it, without waiting.
func (h *logHub) publish(e logEntry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ring[h.n%logRing] = e
	h.n++
	for sub := range h.set {
		if e.Level < sub.min {
			continue
		}
		select {
		case sub.ch <- e:
		default:
			sub.dropped.Add(1)
		}
	}
}

// teeHandler is a slog.Handler that writes to the server's log handler
// and publishes each record to the hub.
type teeHandler struct {
	inner slog.Handler
	hub   *logHub
	attrs []slog.Attr // from WithAttrs, for the published message
	group string
}

// Enabled implements slog.Handler: what the server logs, and with a
// subscriber everything (a subscriber filters by its own level).
func (t *teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t.inner.Enabled(ctx, l) || t.hub.subs.Load() > 0
}

// Handle implements slog.Handler.
func (t *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if t.inner.Enabled(ctx, r.Level) {
		err = t.inner.Handle(ctx, r)
	}
	if t.hub.subs.Load() > 0 {
		t.hub.publish(t.entry(r))
	}
	return err
}

// entry renders r for the streams.
func (t *teeHandler) entry(r slog.Record) logEntry {
	e := logEntry{Level: r.Level, Time: r.Time}
	var b strings.Builder
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		key := a.Key
		if t.group != "" {
			key = t.group + "." + key
		}
		v := a.Value.Resolve().String()
		switch key {
		case "method":
			e.Method = v
		case "path":
			e.Path = v
		case "identity":
			e.Identity = v
		case "remote":
			if ap, err := netip.ParseAddrPort(v); err == nil {
				e.IP = ap.Addr()
			}
		}
		b.WriteByte(' ')
		b.WriteString(key)
		b.WriteByte('=')
		b.WriteString(v)
		return true
	}
	for _, a := range t.attrs {
		add(a)
	}
	r.Attrs(add)
	e.Message = b.String()
	return e
}

// WithAttrs implements slog.Handler.
func (t *teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &teeHandler{inner: t.inner.WithAttrs(as), hub: t.hub, attrs: append(t.attrs[:len(t.attrs):len(t.attrs)], as...), group: t.group}
}

// WithGroup implements slog.Handler.
func (t *teeHandler) WithGroup(name string) slog.Handler {
	g := name
	if t.group != "" {
		g = t.group + "." + name
	}
	return &teeHandler{inner: t.inner.WithGroup(name), hub: t.hub, attrs: t.attrs, group: g}
}
