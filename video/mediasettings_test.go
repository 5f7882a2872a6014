package video

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/pion/ice/v2"
	"github.com/pion/webrtc/v3"
)

// socketInodes are the inodes of this process's open sockets.
func socketInodes(t *testing.T) map[string]bool {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			out[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	return out
}

// udpPortsOpen lists this process's UDP sockets bound to port.
func udpPortsOpen(t *testing.T, port int) []string {
	t.Helper()
	mine := socketInodes(t)
	var open []string
	for _, f := range []string{"/proc/self/net/udp", "/proc/self/net/udp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 {
				continue
			}
			local, inode := fields[1], fields[9]
			if strings.HasSuffix(local, fmt.Sprintf(":%04X", port)) && mine[inode] {
				open = append(open, local)
			}
		}
	}
	return open
}

// A peer connection of the SFU gathers its candidates without opening an
// mDNS socket (0.0.0.0:5353, multicast joins off loopback), whether or not
// loopback candidates are included.
func TestSFUPeersOpenNoMulticastDNSSocket(t *testing.T) {
	for _, loopback := range []bool{false, true} {
		s, err := New(Config{Interfaces: []string{"lo"}, IncludeLoopback: loopback})
		if err != nil {
			t.Fatal(err)
		}
		api, _, err := s.newAPI()
		if err != nil {
			t.Fatal(err)
		}
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
		offer, err := pc.CreateOffer(nil)
		if err != nil {
			t.Fatal(err)
		}
		gathered := webrtc.GatheringCompletePromise(pc)
		if err := pc.SetLocalDescription(offer); err != nil {
			t.Fatal(err)
		}
		select {
		case <-gathered:
		case <-time.After(20 * time.Second):
			t.Fatal("gathering did not complete")
		}
		if open := udpPortsOpen(t, 5353); len(open) > 0 {
			t.Errorf("loopback %v: the SFU's peer holds mDNS sockets %v", loopback, open)
		}
		pc.Close()
		s.Close()
	}
}

// Every SFU, whatever its network, has mDNS off and offers SRTP with
// AES-128-GCM first (read from its setting engine: Pion keeps them unexported).
func TestSFUSettingsNoMulticastDNSAndGCMFirst(t *testing.T) {
	for _, cfg := range []Config{{}, {IncludeLoopback: true, Interfaces: []string{"lo"}}, {PublicIP: "203.0.113.7"}} {
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		se := reflect.ValueOf(&s.setting).Elem()
		if mode := se.FieldByName("candidates").FieldByName("MulticastDNSMode").Uint(); mode != uint64(ice.MulticastDNSModeDisabled) {
			t.Errorf("%+v: mDNS mode %d, want disabled", cfg, mode)
		}
		profiles := se.FieldByName("srtpProtectionProfiles")
		if profiles.Len() == 0 || dtls.SRTPProtectionProfile(profiles.Index(0).Uint()) != dtls.SRTP_AEAD_AES_128_GCM {
			t.Errorf("%+v: SRTP profiles %v, want AEAD_AES_128_GCM first", cfg, profiles)
		}
		if last := profiles.Index(profiles.Len() - 1).Uint(); dtls.SRTPProtectionProfile(last) != dtls.SRTP_AES128_CM_HMAC_SHA1_80 {
			t.Errorf("%+v: AES-CM-HMAC-SHA1 is not kept for browsers without GCM", cfg)
		}
		s.Close()
	}
}
