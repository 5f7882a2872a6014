package audit

import (
	"testing"
	"time"
)

func TestOutOfHours(t *testing.T) {
	loc, _ := time.LoadLocation("Europe/London")
	cases := []struct {
		at  string
		ooh bool
	}{
		{"2026-11-23T08:00:00Z", false}, // Monday 08:00 GMT: in hours
		{"2026-11-23T07:59:00Z", true},
		{"2026-11-23T18:29:00Z", false},
		{"2026-11-23T18:30:00Z", true},
		{"2026-11-28T12:00:00Z", true}, // Saturday
		{"2026-11-29T12:00:00Z", true}, // Sunday
		{"2026-12-28T12:00:00Z", true}, // Boxing Day substitute
		{"2026-04-03T12:00:00Z", true}, // Good Friday
		{"2026-04-07T12:00:00Z", false},
		// Summer time: 08:00 BST is 07:00Z and 18:30 BST is 17:30Z.
		{"2026-07-01T07:00:00Z", false},
		{"2026-07-01T06:59:00Z", true},
		{"2026-07-01T17:29:00Z", false},
		{"2026-07-01T17:30:00Z", true},
		// The Monday after the clocks go forward (2026-03-30) and back (2026-10-26).
		{"2026-03-30T06:59:00Z", true}, {"2026-03-30T07:00:00Z", false},
		{"2026-10-26T07:59:00Z", true}, {"2026-10-26T08:00:00Z", false},
		// Midnight London on a bank holiday, still 23:xx UTC the day before in summer.
		{"2026-08-30T23:30:00Z", true}, // 00:30 BST on Monday 31 August, a bank holiday
	}
	for _, c := range cases {
		at, _ := time.Parse(time.RFC3339, c.at)
		if got := OutOfHours(at, loc); got != c.ooh {
			t.Errorf("%s: out of hours %v, want %v", c.at, got, c.ooh)
		}
	}
}

func TestParseWindow(t *testing.T) {
	for in, want := range map[string]time.Duration{"72h": 72 * time.Hour, "7d": 7 * 24 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := ParseWindow(in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "0d", "-1h", "7x", "400d"} {
		if _, err := ParseWindow(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestNearestRank(t *testing.T) {
	p := percentiles([]float64{15, 20, 35, 40, 50})
	if *p.P50 != 35 || *p.P90 != 50 {
		t.Errorf("p50 %v p90 %v", *p.P50, *p.P90)
	}
	if p := percentiles(nil); p.P50 != nil {
		t.Error("empty sample has a percentile")
	}
}
