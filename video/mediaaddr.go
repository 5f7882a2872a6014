package video

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// ErrNoMediaPort means the SFU takes media on ephemeral ports, so nothing
// can be limited to its media addresses (set UDPPort or MuxUDP).
var ErrNoMediaPort = errors.New("video: the SFU has no single UDP media port")

// mediaIPs lists the addresses the SFU announces and takes media on: the
// public IP, the listen IP when one is given, otherwise every IPv4 address
// of the interfaces it gathers on (loopback only when it gathers loopback).
func mediaIPs(cfg Config) (map[netip.Addr]bool, error) {
	ips := map[netip.Addr]bool{}
	if a, err := netip.ParseAddr(cfg.PublicIP); err == nil {
		ips[a.Unmap()] = true
	}
	if a, err := netip.ParseAddr(cfg.ListenIP); err == nil && !a.IsUnspecified() {
		ips[a.Unmap()] = true
		return ips, nil
	}
	allowed := map[string]bool{}
	for _, i := range cfg.Interfaces {
		allowed[i] = true
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("video: list interfaces: %w", err)
	}
	for _, iface := range ifaces {
		if len(allowed) > 0 && !allowed[iface.Name] {
			continue
		}
		if iface.Flags&net.FlagUp == 0 || (iface.Flags&net.FlagLoopback != 0 && !cfg.IncludeLoopback) {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, addr := range addrs {
			ipn, ok := addr.(*net.IPNet)
			if !ok || ipn.IP.To4() == nil {
				continue
			}
			if a, ok := netip.AddrFromSlice(ipn.IP.To4()); ok {
				ips[a] = true
			}
		}
	}
	return ips, nil
}

// MediaAddrs are the addresses the SFU takes media on (one UDP port on each
// media IP); empty when it uses ephemeral ports.
func (s *SFU) MediaAddrs() []netip.AddrPort {
	if s.mediaPort == 0 {
		return nil
	}
	out := make([]netip.AddrPort, 0, len(s.mediaIPs))
	for ip := range s.mediaIPs {
		out = append(out, netip.AddrPortFrom(ip, uint16(s.mediaPort))) // #nosec G115 -- a bound UDP socket's port
	}
	return out
}

// isMediaIP reports whether ip is one of the SFU's media addresses.
func (s *SFU) isMediaIP(ip netip.Addr) bool {
	return s.mediaPort != 0 && s.mediaIPs[ip.Unmap()]
}

// isMediaAddr reports whether ap is the SFU's media port on a media IP.
func (s *SFU) isMediaAddr(ap netip.AddrPort) bool {
	return s.isMediaIP(ap.Addr()) && int(ap.Port()) == s.mediaPort
}

// relayIP is the address a relay is announced on when none is configured:
// the public IP, else a media IP that is not loopback, else loopback.
func (s *SFU) relayIP() (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s.cfg.PublicIP); err == nil {
		return a.Unmap(), true
	}
	var loop netip.Addr
	var best netip.Addr
	for ip := range s.mediaIPs {
		switch {
		case ip.IsLoopback():
			if !loop.IsValid() || ip.Less(loop) {
				loop = ip
			}
		case !best.IsValid() || ip.Less(best):
			best = ip
		}
	}
	if best.IsValid() {
		return best, true
	}
	return loop, loop.IsValid()
}
