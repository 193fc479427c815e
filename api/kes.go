package api

import "net/http"

// kesRoutes registers the KES HTTP API (spec kes.md §1).
func (s *Server) kesRoutes(mux *http.ServeMux) {}
