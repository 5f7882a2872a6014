package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v2"
	"github.com/pion/transport/v2"
	"github.com/pion/transport/v2/stdnet"
	"github.com/pion/webrtc/v3"

	"github.com/nightcall-health/nightcall/video/videoclient"
)

// TestMain lets the test binary double as the care home's peer inside a
// network namespace (the helper cannot be a goroutine: a namespace belongs
// to an OS thread, and Pion runs on many).
func TestMain(m *testing.M) {
	// `nightcall bench video` starts its clients as a child of the running
	// binary, which in tests is this test binary.
	// Every `bench …-clients` child (video, pager) runs as the command.
	if len(os.Args) > 2 && os.Args[1] == "bench" && strings.HasSuffix(os.Args[2], "-clients") {
		if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, os.Args[2]+":", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv("NIGHTCALL_NETNS_HELPER") == "simulcast" { // simulcast_netns_test.go
		if err := simulcastHelper(); err != nil {
			fmt.Fprintln(os.Stderr, "simulcast helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv("NIGHTCALL_NETNS_HELPER") == "relay-clients" { // simulcast_netns_test.go
		if err := relayClients(); err != nil {
			fmt.Fprintln(os.Stderr, "relay clients:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv("NIGHTCALL_NETNS_HELPER") == "1" {
		if err := netnsHelper(); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// netnsHelper joins a call as the care home from inside the namespace and
// prints what it receives twice a second as JSON lines.
func netnsHelper() error {
	base, esc, cookie, iface, network := os.Getenv("NC_BASE"), os.Getenv("NC_ESC"), os.Getenv("NC_COOKIE"), os.Getenv("NC_IFACE"), os.Getenv("NC_NETWORK")
	d, err := time.ParseDuration(os.Getenv("NC_DURATION"))
	if err != nil {
		return err
	}
	h := http.Header{"Cookie": {cookie}, "Origin": {base}}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/api/v1/calls/"+esc+"/signal", h)
	if err != nil {
		return err
	}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return err
	}
	se := webrtc.SettingEngine{}
	se.SetInterfaceFilter(func(name string) bool { return name == iface })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if network == "tcp" {
		// UDP is offered too: the namespace drops it, so the pair that works is TCP.
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	if v := os.Getenv("NC_DELAY"); v != "" {
		delay, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		std, err := stdnet.NewNet()
		if err != nil {
			return err
		}
		se.SetNet(&delayedNet{Net: std, delay: delay})
	}
	p, err := videoclient.Join(videoclient.Config{API: webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))}, ws)
	if err != nil {
		return err
	}
	defer p.Close()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		time.Sleep(500 * time.Millisecond)
		b, _ := json.Marshal(map[string]any{"video": p.Counts("video"), "audio": p.Counts("audio")})
		fmt.Println(string(b))
	}
	return nil
}

// delayedNet holds every UDP datagram the peer sends for a fixed delay: the
// egress delay that tc netem would add, which this machine's kernel lacks.
type delayedNet struct {
	*stdnet.Net
	delay time.Duration
}

func (n *delayedNet) ListenUDP(network string, addr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, addr)
	if err != nil {
		return nil, err
	}
	return &delayedConn{UDPConn: c, delay: n.delay}, nil
}

type delayedConn struct {
	transport.UDPConn
	delay time.Duration
}

func (c *delayedConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	b := append([]byte(nil), p...)
	time.AfterFunc(c.delay, func() { _, _ = c.UDPConn.WriteTo(b, addr) })
	return len(p), nil
}

func (c *delayedConn) WriteToUDP(p []byte, addr *net.UDPAddr) (int, error) { return c.WriteTo(p, addr) }

// netns is a network namespace with a veth pair to the host, made by the test.
type netns struct {
	name, hostIf, nsIf string
	hostIP, nsIP       string
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("iproute2 is needed (make test installs it): %v", err)
	}
	id := os.Getpid()
	n := &netns{name: fmt.Sprintf("nctest%d", id), hostIf: fmt.Sprintf("nch%d", id), nsIf: fmt.Sprintf("ncn%d", id),
		hostIP: "10.213.7.1", nsIP: "10.213.7.2"}
	sweepStaleNetns("nctest", "nch")
	_ = exec.Command("ip", "netns", "del", n.name).Run()
	_ = exec.Command("ip", "link", "del", n.hostIf).Run()
	sh(t, "ip", "netns", "add", n.name)
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", n.name).Run()
		_ = exec.Command("ip", "link", "del", n.hostIf).Run()
	})
	sh(t, "ip", "link", "add", n.hostIf, "type", "veth", "peer", "name", n.nsIf)
	sh(t, "ip", "link", "set", n.nsIf, "netns", n.name)
	sh(t, "ip", "addr", "add", n.hostIP+"/30", "dev", n.hostIf)
	sh(t, "ip", "link", "set", n.hostIf, "up")
	sh(t, "ip", "netns", "exec", n.name, "ip", "addr", "add", n.nsIP+"/30", "dev", n.nsIf)
	sh(t, "ip", "netns", "exec", n.name, "ip", "link", "set", n.nsIf, "up")
	sh(t, "ip", "netns", "exec", n.name, "ip", "link", "set", "lo", "up")
	return n
}

// sweepStaleNetns removes the namespaces (prefix and the test's process
// ID) and host veths (ifPrefix and the ID) that a test run killed before
// its cleanup left behind: their addresses are the ones every run uses, so
// a stale veth would take this run's traffic.
func sweepStaleNetns(prefix, ifPrefix string) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], prefix) {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimPrefix(f[0], prefix))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // its run is still going
		}
		_ = exec.Command("ip", "netns", "del", f[0]).Run()
		_ = exec.Command("ip", "link", "del", fmt.Sprintf("%s%d", ifPrefix, pid)).Run()
	}
}

// helper starts the care home's peer inside the namespace and returns a
// channel of its reports.
func (n *netns) helper(t *testing.T, base, esc, cookie, network, delay string, d time.Duration) <-chan map[string]map[string]uint64 {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", n.name, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "NIGHTCALL_NETNS_HELPER=1", "NC_BASE="+base, "NC_ESC="+esc, "NC_COOKIE="+cookie,
		"NC_IFACE="+n.nsIf, "NC_NETWORK="+network, "NC_DURATION="+d.String(), "NC_DELAY="+delay)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	reports := make(chan map[string]map[string]uint64, 100)
	go func() {
		defer close(reports)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var r map[string]map[string]uint64
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				reports <- r
			}
		}
	}()
	return reports
}

func total(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

func sessionCookie(c *client) string {
	u, _ := url.Parse(c.base)
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == "nightcall_session" {
			return ck.Name + "=" + ck.Value
		}
	}
	return ""
}

// A bad network on the care home's side, built in a network namespace: with
// 5 % loss and 150 ms delay video keeps flowing both ways; with UDP dropped,
// ICE over TCP carries the call.
func TestCallOverABadNetwork(t *testing.T) {
	n := newNetns(t)
	udp, tcp := freePort(t, "udp"), freePort(t, "tcp")
	s := startServer(t, func(c *serveConfig) {
		c.Addr = n.hostIP + ":0"
		c.WebRTCLoopback, c.WebRTCInterfaces, c.CallRejoinGrace = true, "lo,"+n.hostIf, 2*time.Second
		c.WebRTCUDPPort, c.WebRTCTCPPort = udp, tcp
	})
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatalf("nftables is needed (make test installs it): %v", err)
	}
	// This kernel has no netem and no tc classifiers or actions, so the
	// namespace's firewall (nftables) drops packets and the care home's peer
	// holds its own datagrams for the delay.
	for _, c := range []struct {
		name, resident, network, delay string
		rule                           string
	}{
		{"5% loss and 150 ms delay", "rc-101", "udp", "150ms", "meta l4proto udp numgen random mod 100 < 5 drop"},
		{"UDP dropped, ICE over TCP", "rc-102", "tcp", "", "meta l4proto udp drop"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_ = exec.Command("ip", "netns", "exec", n.name, "nft", "delete", "table", "inet", "nightcall").Run()
			sh(t, "ip", "netns", "exec", n.name, "nft", "add", "table", "inet", "nightcall")
			sh(t, "ip", "netns", "exec", n.name, "nft", "add chain inet nightcall out { type filter hook output priority 0; }")
			sh(t, append([]string{"ip", "netns", "exec", n.name, "nft", "add", "rule", "inet", "nightcall", "out"}, strings.Fields(c.rule)...)...)
			nurse, okafor := s.signedIn("night.rose"), s.signedIn("dr.okafor")
			id := str(nurse.do("POST", "/api/v1/escalations", raiseBody(c.resident)).json(t)["id"])
			if r := okafor.do("POST", "/api/v1/escalations/"+id+"/accept", nil); r.status != 200 {
				t.Fatalf("accept: %d", r.status)
			}
			doctor := joinCall(t, okafor, id)
			reports := n.helper(t, s.base, id, sessionCookie(nurse), c.network, c.delay, 12*time.Second)
			var last map[string]map[string]uint64
			var seen []uint64
			for r := range reports {
				last = r
				seen = append(seen, total(r["video"]))
			}
			homeGot := seen
			docGot := total(doctor.Counts("video"))
			t.Logf("care home received video %v; consultant received %d video packets from the home", homeGot, docGot)
			if len(seen) < 4 || seen[len(seen)-1] < 100 || seen[len(seen)-1] <= seen[len(seen)-3] {
				t.Errorf("care home video did not keep flowing: %v (last report %v)", seen, last)
			}
			if docGot < 100 {
				t.Errorf("consultant got %d video packets from the home", docGot)
			}
			doctor.Close()
			okafor.do("POST", "/api/v1/escalations/"+id+"/decision", map[string]string{"outcome": "admit", "counterfactual": "ed", "rationale": "r"})
		})
	}
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
