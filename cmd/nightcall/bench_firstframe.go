package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// benchTURNScenario runs, from the source tree, the Go benchmarks that need
// network namespaces and Chromium (run as root): accept → first decoded
// frame on both call pages with the care home's Chromium behind a network
// that drops UDP (TURN over TCP) beside direct UDP, ten each in the same
// run; the server's CPU per forwarded packet with every peer relayed
// through the embedded TURN server beside direct; and the seconds from a
// 300 kbit/s limit on a subscriber to its simulcast layer switch (read
// from TestSimulcastSubscriberUnderARateLimit).
func benchTURNScenario(ctx context.Context, env *benchEnv) ([]benchResult, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	runs := 2 * max(env.sizes.AcceptRuns, 1)
	// Each part on its own, so that one that fails leaves the others' figures.
	var out []byte
	var failed []string
	for _, args := range [][]string{
		{"-run", "^$", "-bench", "^BenchmarkFirstFrameTURNvsUDP$", "-benchtime", fmt.Sprintf("%dx", runs)},
		{"-run", "^$", "-bench", "^BenchmarkSFUCPUPerRelayedPacket$", "-benchtime", "1x"},
		{"-run", "^TestSimulcastSubscriberUnderARateLimit$", "-v"},
	} {
		cmd := exec.CommandContext(ctx, "go", append(append([]string{"test"}, args...), "./cmd/nightcall/")...)
		cmd.Dir = root
		o, err := cmd.CombinedOutput()
		out = append(out, o...)
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", strings.Join(args, " "), err))
		}
	}
	m := benchMetrics(string(out))
	var res []benchResult
	if udp, ok := m["udp-median-ms"]; ok {
		turn := m["turn-median-ms"]
		r := result("turn", "accept → first decoded frame on both pages, TURN over TCP (UDP dropped), median", "ms", turn,
			"direct UDP, same run", udp, "TURN/TCP median ≤ 2× direct", met(turn <= 2*udp))
		r.Params = map[string]any{"runs_each": runs / 2}
		res = append(res, r)
	}
	if direct, ok := m["direct-us/pkt"]; ok {
		relayed := m["relayed-us/pkt"]
		res = append(res, result("turn", "server CPU per forwarded packet, every peer relayed by the embedded TURN", "µs", relayed,
			"direct, same run", direct, "reported", nil))
	}
	if sw := regexp.MustCompile(`simulcast: limit→switch ([0-9.]+) s, lift→climb ([0-9.]+) s`).FindStringSubmatch(string(out)); sw != nil {
		down, _ := strconv.ParseFloat(sw[1], 64)
		up, _ := strconv.ParseFloat(sw[2], 64)
		r := result("turn", "300 kbit/s limit on a subscriber → its switch to the low layer", "s", down, "", 0, "≤ 5 s", met(down <= 5))
		r.Extra = map[string]float64{"limit_lifted_to_higher_layer_s": up}
		res = append(res, r)
	}
	if len(res) == 0 || len(failed) > 0 {
		printResults(env.out, res)
		return nil, fmt.Errorf("%d part(s) failed (%s):\n%s", len(failed), strings.Join(failed, "; "), out)
	}
	return res, nil
}

// benchMetrics reads the custom metrics of `go test -bench` lines.
func benchMetrics(out string) map[string]float64 {
	m := map[string]float64{}
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, "ns/op") { // Pion may log between a benchmark's name and its figures
			continue
		}
		f := strings.Fields(line)
		for i := 1; i+1 < len(f); i++ {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil && strings.Contains(f[i+1], "-") {
				m[f[i+1]] = v
			}
		}
	}
	return m
}
