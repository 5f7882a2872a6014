package web

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/video"
)

// TURNConfig is how the server hands TURN to the browsers in a call: TURN
// REST credentials (video.NewTURNCredential) for the embedded server or an
// external one (coturn with use-auth-secret and the same secret).
type TURNConfig struct {
	// Secret is the TURN REST secret every instance shares. Optional;
	// without it no TURN server is handed out.
	Secret string
	// URLs are handed out as they are (an external TURN server). Optional;
	// when empty the embedded server's own URLs are built from Port and
	// TLSPort.
	URLs []string
	// Port and TLSPort are the embedded server's ports (0: none).
	Port, TLSPort int
	// Host names the embedded server in turn: URLs. Optional, default the
	// host name the browser reached this server by. turns: URLs always use
	// that name, which the certificate is for.
	Host string
	// TTL is how long a credential lets a client start an allocation.
	// Optional, default 1h.
	TTL time.Duration
}

// defaultTURNTTL bounds a credential's life: long enough for a call with
// an external TURN server that checks expiry on every refresh.
const defaultTURNTTL = time.Hour

// iceServer is one entry of RTCConfiguration.iceServers.
type iceServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// handleICEServers hands the caller the ICE servers for escalation id's
// call, with a fresh TURN credential: only those who may join the call get
// one (the signalling route's own check, the same 401/403/404/409).
func (s *Server) handleICEServers(w http.ResponseWriter, r *http.Request) {
	id := escalation.EscalationID(r.PathValue("id"))
	who, err := s.callParticipant(r, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The instance that hosts the call answers: its TURN relays to its SFU.
	if host, err := s.callHost(r.Context(), string(id)); err == nil && host != "" && s.proxyGet(w, r, host) {
		return
	}
	servers := []iceServer{}
	for _, u := range s.cfg.ICEServers {
		servers = append(servers, iceServer{URLs: []string{u}})
	}
	if urls := s.turnURLs(r); len(urls) > 0 {
		ttl := s.cfg.TURN.TTL
		if ttl <= 0 {
			ttl = defaultTURNTTL
		}
		cred, err := video.NewTURNCredential(s.cfg.TURN.Secret, time.Now().Add(ttl))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		servers = append(servers, iceServer{URLs: urls, Username: cred.Username, Credential: cred.Credential})
	}
	s.log.InfoContext(r.Context(), "ice servers issued", "escalation_id", id, "role", who.Role, "turn", len(servers) > len(s.cfg.ICEServers))
	writeJSON(w, http.StatusOK, servers)
}

// turnURLs are the TURN URLs for a browser that reached us as r.Host.
func (s *Server) turnURLs(r *http.Request) []string {
	t := s.cfg.TURN
	if t.Secret == "" {
		return nil
	}
	if len(t.URLs) > 0 {
		return t.URLs
	}
	if t.Port == 0 {
		return nil
	}
	name := r.Host
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		name = h
	}
	name = strings.Trim(name, "[]")
	host := t.Host
	if host == "" {
		host = name
	}
	hp := net.JoinHostPort(host, strconv.Itoa(t.Port))
	urls := []string{"turn:" + hp + "?transport=udp", "turn:" + hp + "?transport=tcp"}
	if t.TLSPort > 0 {
		urls = append(urls, "turns:"+net.JoinHostPort(name, strconv.Itoa(t.TLSPort))+"?transport=tcp")
	}
	return urls
}

// proxyGet answers r from the instance at host (distributed mode), with
// the caller's cookies and the Host the browser used. It reports false when
// that instance cannot be reached, so this one answers instead.
func (s *Server) proxyGet(w http.ResponseWriter, r *http.Request, host string) bool {
	u, err := url.Parse(host)
	if err != nil {
		return false
	}
	// host is the call host's --advertise-url from the store's registry, not
	// anything the request says; only the path and query are the caller's.
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.Scheme+"://"+u.Host+r.URL.RequestURI(), nil) // #nosec G704 -- host from the instance registry
	if err != nil {
		return false
	}
	req.Host = r.Host
	for _, c := range r.Header.Values("Cookie") {
		req.Header.Add("Cookie", c)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req) // #nosec G704 -- host from the instance registry
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return false
	}
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
	return true
}
