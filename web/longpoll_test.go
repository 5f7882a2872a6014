package web

import (
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
)

// TestConditionalHeadersAreReadStrictly: only one strong tag makes a GET
// conditional (a list, "*", a weak or an unquoted tag are answered in
// full), and only a whole positive number of seconds makes it wait, never
// longer than the bound.
func TestConditionalHeadersAreReadStrictly(t *testing.T) {
	for h, want := range map[string]escalation.EscalationTag{
		`"3.1.abc"`:   "3.1.abc",
		` "3.1.abc" `: "3.1.abc",
		``:            "",
		`*`:           "",
		`""`:          "",
		`W/"3.1.abc"`: "",
		`3.1.abc`:     "",
		`"a", "b"`:    "",
		`"a"b"`:       "",
		`"3.1.abc`:    "",
	} {
		if got := etagOf(h); got != want {
			t.Errorf("etagOf(%q) = %q, want %q", h, got, want)
		}
	}
	most := 25 * time.Second
	for _, c := range []struct {
		prefer []string
		want   time.Duration
	}{
		{nil, 0},
		{[]string{"wait=10"}, 10 * time.Second},
		{[]string{"respond-async, wait=3"}, 3 * time.Second},
		{[]string{"return=minimal", " Wait = 4 "}, 4 * time.Second},
		{[]string{`wait="5"`}, 5 * time.Second},
		{[]string{"wait=3600"}, most},
		{[]string{"wait=0"}, 0},
		{[]string{"wait=-5"}, 0},
		{[]string{"wait=1.5"}, 0},
		{[]string{"wait=soon"}, 0},
		{[]string{"waiting=9"}, 0},
		{[]string{"wait=99999999999999999999"}, 0},
	} {
		if got := preferredWait(c.prefer, most); got != c.want {
			t.Errorf("preferredWait(%q) = %v, want %v", c.prefer, got, c.want)
		}
	}
}
