package web

import (
	"net/http"
	"slices"
)

// routeMux is the server's ServeMux that also keeps every pattern
// registered on it, so the route table can be compared with the OpenAPI
// document (the test reads the routes the server really serves).
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func newRouteMux() *routeMux { return &routeMux{ServeMux: http.NewServeMux()} }

// Handle registers h for pattern and records the pattern.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

// HandleFunc registers h for pattern and records the pattern.
func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.HandleFunc(pattern, h)
}

// Routes lists every pattern the server registers ("GET /api/v1/me", …),
// in registration order. It builds the route table afresh, so it is exactly
// what New serves.
func (s *Server) Routes() []string { return slices.Clone(s.routes().patterns) }
