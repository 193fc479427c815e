package api

import (
	"strings"
	"time"
)

// RouteInfo describes a row of the route table as the mux serves it.
type RouteInfo struct {
	Method, Path string // Path with ServeMux wildcards
	Access       string
	MaxBody      int64
	Timeout      time.Duration
	KES          bool
	Stream       bool // a log stream: its timeout is long
}

// RouteInfos returns the served routes of s (tests only).
func (s *Server) RouteInfos() []RouteInfo {
	var out []RouteInfo
	for _, rt := range s.routeTable() {
		method, path, ok := strings.Cut(rt.pattern, " ")
		if !ok {
			method, path = rt.method, rt.pattern
		}
		out = append(out, RouteInfo{Method: method, Path: path, Access: rt.access.String(), MaxBody: rt.maxBody,
			Timeout: rt.timeout, KES: rt.kes != nil, Stream: rt.stream})
	}
	return out
}
