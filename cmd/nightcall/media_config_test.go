package main

import (
	"io"
	"strings"
	"testing"
)

// TestServeRefusesMediaSettingsWithoutCandidates: media settings that cannot
// give a browser a usable candidate are refused at start, with the fix named;
// an interface the host lacks, beside one that works, is a warning.
func TestServeRefusesMediaSettingsWithoutCandidates(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		refused string // "" when accepted
		warning string
	}{
		{"loopback only, loopback candidates dropped", []string{"--webrtc-interfaces", "lo"}, "--webrtc-loopback", ""},
		{"loopback only, with loopback candidates", []string{"--webrtc-interfaces", "lo", "--webrtc-loopback"}, "", ""},
		{"an interface the host lacks", []string{"--webrtc-interfaces", "nightcall-none0"}, "none of these interfaces", "does not have"},
		{"a missing one beside loopback", []string{"--webrtc-interfaces", "lo,nightcall-none0", "--webrtc-loopback"}, "", "nightcall-none0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseServe(append([]string{"--data-dir", t.TempDir()}, tc.args...), io.Discard)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
				t.Fatalf("got %v, want a refusal naming %q", err, tc.refused)
			}
			warnings, _ := cfg.mediaInterfaces()
			if tc.warning != "" && !strings.Contains(strings.Join(warnings, "\n"), tc.warning) {
				t.Errorf("warnings %q, want one about %q", warnings, tc.warning)
			}
		})
	}
}
