package web

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ParseTrustedProxies reads a comma-separated CIDR list (a bare address is a
// /32 or /128). An empty list trusts no proxy.
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var bad []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				bad = append(bad, s)
				continue
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			bad = append(bad, s)
			continue
		}
		out = append(out, p.Masked())
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("web: trusted proxies: not an address or CIDR: %s", strings.Join(bad, ", "))
	}
	return out, nil
}

// peer is who sent a request, as far as the trusted proxies let us know: the
// client's address and whether the client's own connection was HTTPS.
type peer struct {
	addr   string
	secure bool
}

type peerKey struct{}

// peerOf returns the request's peer (set by the edge middleware), or the
// socket's own address when the middleware did not run (unit tests).
func peerOf(r *http.Request) peer {
	if p, ok := r.Context().Value(peerKey{}).(peer); ok {
		return p
	}
	return peer{addr: socketAddr(r), secure: r.TLS != nil}
}

func socketAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// resolvePeer believes X-Forwarded-For / X-Forwarded-Proto (or Forwarded,
// RFC 7239) only from a trusted proxy. The client is the rightmost address
// in the chain that is not itself a trusted proxy, so a client cannot choose
// its own address by sending the header itself.
func (s *Server) resolvePeer(r *http.Request) peer {
	p := peer{addr: socketAddr(r), secure: r.TLS != nil}
	sock, err := netip.ParseAddr(p.addr)
	if err != nil || !s.trusted(sock) {
		return p
	}
	hops, proto := forwardedChain(r.Header)
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(hops[i])
		if err != nil {
			break // an obfuscated or garbled hop: stop at the last one we know
		}
		p.addr = a.Unmap().String()
		if !s.trusted(a) {
			break
		}
	}
	if proto != "" {
		p.secure = strings.EqualFold(proto, "https")
	}
	return p
}

// forwardedChain returns the client chain (leftmost first) and the scheme
// the first proxy saw, from Forwarded if present, else the X-Forwarded pair.
func forwardedChain(h http.Header) (hops []string, proto string) {
	if fwd := h.Values("Forwarded"); len(fwd) > 0 {
		for _, line := range fwd {
			for _, elem := range strings.Split(line, ",") {
				for _, pair := range strings.Split(elem, ";") {
					k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
					if !ok {
						continue
					}
					v = strings.Trim(v, `"`)
					switch strings.ToLower(k) {
					case "for":
						v = strings.TrimPrefix(v, "[")
						if i := strings.LastIndex(v, "]"); i >= 0 {
							v = v[:i] // [2001:db8::1]:4711
						} else if host, _, err := net.SplitHostPort(v); err == nil {
							v = host
						}
						hops = append(hops, v)
					case "proto":
						if proto == "" {
							proto = v
						}
					}
				}
			}
		}
		return hops, proto
	}
	for _, line := range h.Values("X-Forwarded-For") {
		for _, v := range strings.Split(line, ",") {
			if v = strings.TrimSpace(v); v != "" {
				hops = append(hops, v)
			}
		}
	}
	if v := h.Get("X-Forwarded-Proto"); v != "" {
		proto, _, _ = strings.Cut(v, ",")
		proto = strings.TrimSpace(proto)
	}
	return hops, proto
}

// edge sets the security headers every response carries and resolves the
// request's peer once, for limits, logs, cookies and HSTS.
func (s *Server) edge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := s.resolvePeer(r)
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Permissions-Policy", "camera=(self), microphone=(self), geolocation=(), payment=(), usb=()")
		h.Set("X-Frame-Options", "DENY")
		if h.Get("Content-Security-Policy") == "" {
			// Pages set their own, stricter one (pageCSP); no answer may be framed.
			h.Set("Content-Security-Policy", "frame-ancestors 'none'")
		}
		if p.secure {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), peerKey{}, p)))
	})
}

// sessionCookie builds a cookie that is Secure whenever the client's own
// connection is HTTPS (directly, or through a trusted proxy).
func sessionCookie(r *http.Request, c *http.Cookie) *http.Cookie { // #nosec G124 -- HttpOnly and SameSite always; Secure on every HTTPS connection
	c.Secure = peerOf(r).secure
	c.HttpOnly = true
	c.SameSite = http.SameSiteLaxMode
	if c.Path == "" {
		c.Path = "/"
	}
	return c
}

// rateLimited is 429 rate_limited with Retry-After.
func rateLimited(wait time.Duration, why string) *apiError {
	secs := strconv.Itoa(max(1, int(wait.Round(time.Second).Seconds())))
	e := newErr(http.StatusTooManyRequests, "rate_limited", why+" Wait "+secs+" seconds and try again.")
	e.Extra = map[string]any{"retry_after": secs}
	return e
}
