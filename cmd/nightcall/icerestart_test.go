package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
)

// TestICERestartKeepsTheCall: the home's peer restarts ICE mid-call (as a
// tablet does when it changes network): it gathers new addresses, media
// resumes on them, and the call is the same call (no second call.started).
// A flood of restarts is refused, and the call goes on.
func TestICERestartKeepsTheCall(t *testing.T) {
	s := startServer(t, loopbackVideo)
	id, nurse, okafor := acceptedEscalation(t, s)
	home, doctor := callOn(t, s, id, nurse, okafor)
	before := home.SelectedPair()
	if before == nil {
		t.Fatal("no selected pair")
	}
	oldAddr := before.Local.Address + ":" + itoaPort(before.Local.Port)

	home.RestartICE()
	waitFor(t, 15*time.Second, "the home on a new address", func() bool {
		p := home.SelectedPair()
		return p != nil && p.Local.Address+":"+itoaPort(p.Local.Port) != oldAddr
	})
	from := sum(doctor.Counts("video"))
	waitFor(t, 5*time.Second, "the home's media resumes", func() bool { return sum(doctor.Counts("video")) >= from+50 })

	// A flood: the budget refuses the extra ones with rate_limited.
	for i := 0; i < 5; i++ {
		home.RestartICE()
	}
	waitFor(t, 10*time.Second, "restarts refused", func() bool { return count(home.Errors(), "rate_limited") >= 4 })
	from = sum(doctor.Counts("video"))
	waitFor(t, 15*time.Second, "media after the flood", func() bool { return sum(doctor.Counts("video")) >= from+50 })

	var types []string
	for _, e := range nurse.do("GET", "/api/v1/residents/rc-101/events", nil).list(t) {
		types = append(types, str(e["type"]))
	}
	if n := count(types, escalation.TypeCallStarted); n != 1 {
		t.Errorf("%d call.started, want 1: %s", n, strings.Join(types, ","))
	}
	if count(types, escalation.TypeCallEnded) != 0 {
		t.Errorf("the call ended on a restart: %v", types)
	}
}

func sum(m map[string]uint64) (n uint64) {
	for _, v := range m {
		n += v
	}
	return n
}

func itoaPort(p uint16) string { return strconv.Itoa(int(p)) }
