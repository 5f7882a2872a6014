package main

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v3"

	"github.com/nightcall-health/nightcall/video"
	"github.com/nightcall-health/nightcall/video/videoclient"
)

const testTURNSecret = "test-turn-secret-shared-by-every-instance"

// freeUDPTCPPort finds a port free for both UDP and TCP on 127.0.0.1.
func freeUDPTCPPort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		u, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
		u.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// withTURN runs the embedded TURN server on loopback in front of a
// loopback SFU bound to 127.0.0.1.
func withTURN(t testing.TB) func(*serveConfig) {
	port := freeUDPTCPPort(t)
	return func(c *serveConfig) {
		loopbackVideo(c)
		c.WebRTCListenIP = "127.0.0.1"
		c.TURNPort, c.TURNSecret, c.TURNRelayPorts, c.TURNCredentialTTL = port, testTURNSecret, "41000-41999", time.Hour
	}
}

// iceServers fetches the call's ICE servers as c.
func (c *client) iceServers(t *testing.T, id string) []webrtc.ICEServer {
	t.Helper()
	r := c.do("GET", "/api/v1/calls/"+id+"/ice-servers", nil)
	if r.status != 200 {
		t.Fatalf("ice-servers: %d %s", r.status, r.body)
	}
	var out []struct {
		URLs       []string `json:"urls"`
		Username   string   `json:"username"`
		Credential string   `json:"credential"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	var servers []webrtc.ICEServer
	for _, s := range out {
		servers = append(servers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return servers
}

// onlyTransport keeps the TURN URLs of one transport (udp or tcp).
func onlyTransport(t *testing.T, servers []webrtc.ICEServer, transport string) []webrtc.ICEServer {
	t.Helper()
	var out []webrtc.ICEServer
	for _, s := range servers {
		for _, u := range s.URLs {
			if strings.HasPrefix(u, "turn:") && strings.HasSuffix(u, "?transport="+transport) {
				out = append(out, webrtc.ICEServer{URLs: []string{u}, Username: s.Username, Credential: s.Credential})
			}
		}
	}
	if len(out) != 1 {
		t.Fatalf("no single turn: URL over %s in %v", transport, servers)
	}
	return out
}

// joinRelayed joins as c with a relay-only Pion peer.
func joinRelayed(t *testing.T, c *client, id string, servers []webrtc.ICEServer) *videoclient.Peer {
	t.Helper()
	p, status, err := videoclient.Dial(videoclient.Config{URL: c.signalURL(id), Header: c.signalHeader(), Errorf: t.Errorf,
		ICEServers: servers, RelayOnly: true})
	if err != nil {
		t.Fatalf("join call: %d %v", status, err)
	}
	t.Cleanup(p.Close)
	return p
}

// TestCallThroughEmbeddedTURN: relay-only peers, with credentials from
// /ice-servers, exchange media through the embedded TURN server over UDP
// and over TCP; the pair they use is a relay pair, and the server's
// metrics count the allocations and the relayed bytes.
func TestCallThroughEmbeddedTURN(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			s := startServer(t, withTURN(t))
			id, nurse, okafor := acceptedEscalation(t, s)

			homeServers := nurse.iceServers(t, id)
			if len(homeServers) != 1 || len(homeServers[0].URLs) != 2 || homeServers[0].Username == "" {
				t.Fatalf("ice servers %+v: want one TURN entry with UDP and TCP URLs and a credential", homeServers)
			}
			expires, _, err := video.ParseTURNUsername(homeServers[0].Username)
			if err != nil || expires.Before(time.Now()) || expires.After(time.Now().Add(time.Hour+time.Minute)) {
				t.Errorf("username %q: expiry %v, %v", homeServers[0].Username, expires, err)
			}
			if cred, _ := homeServers[0].Credential.(string); cred != video.TURNPassword(testTURNSecret, homeServers[0].Username) {
				t.Error("credential is not the HMAC-SHA1 of the username with the secret")
			}
			doctorServers := okafor.iceServers(t, id)
			if doctorServers[0].Username == homeServers[0].Username {
				t.Error("two participants got the same TURN username")
			}

			home := joinRelayed(t, nurse, id, onlyTransport(t, homeServers, transport))
			doctor := joinRelayed(t, okafor, id, onlyTransport(t, doctorServers, transport))
			waitFor(t, 20*time.Second, "media both ways through TURN", func() bool { return home.ReceivingFrom(1, 50) && doctor.ReceivingFrom(1, 50) })
			for name, p := range map[string]*videoclient.Peer{"home": home, "doctor": doctor} {
				pair := p.SelectedPair()
				if pair == nil || pair.Local.Typ != webrtc.ICECandidateTypeRelay {
					t.Errorf("%s's selected pair %v is not a relay pair", name, pair)
				}
			}
			st := s.app.turn.Stats()
			if st.Allocations[transport] < 2 || st.BytesToPeers == 0 || st.BytesFromPeers == 0 {
				t.Errorf("TURN stats %+v: want at least two %s allocations and bytes both ways", st, transport)
			}
			metrics := string(newClient(t, s.base).do("GET", "/metrics", nil).body)
			for _, m := range []string{`nightcall_turn_allocations_total{transport="` + transport + `"}`, `nightcall_turn_relayed_bytes_total{direction="to_peer"}`, "nightcall_turn_allocations_active"} {
				if !strings.Contains(metrics, m) {
					t.Errorf("/metrics lacks %s", m)
				}
			}
		})
	}
}

// TestICEServersOnlyForWhoMayJoin: the route answers exactly those the
// signalling socket lets in, with the same refusals.
func TestICEServersOnlyForWhoMayJoin(t *testing.T) {
	s := startServer(t, withTURN(t))
	nurse, okafor := s.signedIn("night.rose"), s.signedIn("dr.okafor")
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-102")).json(t)["id"])
	if r := nurse.do("GET", "/api/v1/calls/"+id+"/ice-servers", nil); r.status != 409 {
		t.Errorf("before accept: %d %s", r.status, r.body)
	}
	okafor.do("POST", "/api/v1/escalations/"+id+"/accept", nil)
	for _, c := range []struct {
		name   string
		c      *client
		status int
	}{
		{"no session", newClient(t, s.base), 401},
		{"another home's staff", s.signedIn("night.elm"), 404},
		{"a consultant who did not accept", s.signedIn("dr.patel"), 403},
		{"an auditor", s.signedIn("auditor"), 403},
		{"staff of the home", nurse, 200},
		{"the accepting consultant", okafor, 200},
	} {
		r := c.c.do("GET", "/api/v1/calls/"+id+"/ice-servers", nil)
		if r.status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, r.status, r.body, c.status)
		}
		if r.status != 200 && strings.Contains(string(r.body), "credential") {
			t.Errorf("%s: a refusal carries a credential: %s", c.name, r.body)
		}
	}
	if r := okafor.do("GET", "/api/v1/calls/no-such-escalation/ice-servers", nil); r.status != 404 {
		t.Errorf("unknown escalation: %d", r.status)
	}
	// A guest of this call gets servers; the call over, nobody does.
	inv := okafor.do("POST", "/api/v1/escalations/"+id+"/invites", map[string]string{"role": "gp"})
	gp := newClient(t, s.base)
	if r := gp.do("POST", str(inv.json(t)["url"]), nil); r.status != 204 {
		t.Fatalf("redeem: %d", r.status)
	}
	if r := gp.do("GET", "/api/v1/calls/"+id+"/ice-servers", nil); r.status != 200 {
		t.Errorf("guest: %d %s", r.status, r.body)
	}
	okafor.do("POST", "/api/v1/escalations/"+id+"/decision", map[string]string{"outcome": "stay", "counterfactual": "ed", "rationale": "r", "plan": "p"})
	for name, c := range map[string]*client{"guest": gp, "home": nurse} {
		if r := c.do("GET", "/api/v1/calls/"+id+"/ice-servers", nil); r.status != 409 {
			t.Errorf("%s after the decision: %d", name, r.status)
		}
	}
}

// TestTURNFlags: the TURN flags are checked together at start.
func TestTURNFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--turn-port", "3478"}, "--turn-secret"},
		{[]string{"--turn-urls", "turn:turn.example:3478"}, "--turn-secret"},
		{[]string{"--turn-port", "3478", "--turn-secret", "s", "--turn-tls-port", "5349"}, "--tls-cert"},
		{[]string{"--turn-port", "3478", "--turn-secret", "s", "--turn-relay-ports", "9-2"}, "--turn-relay-ports"},
		{[]string{"--turn-secret", "s", "--turn-urls", "http://turn.example"}, `"turn:" or "turns:"`},
	} {
		if _, err := parseServe(c.args, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want a complaint about %s", c.args, err, c.want)
		}
	}
}
