package escalation

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestEventTypesGolden holds the event registry to testdata/event-types.golden:
// the stored names are a wire contract, so a renamed type, a name registered
// twice, or two names for one Go type fails here. A new event type is added to
// the golden file in the same change that registers it; a line is never
// removed or edited.
func TestEventTypesGolden(t *testing.T) {
	b, err := os.ReadFile("testdata/event-types.golden")
	if err != nil {
		t.Fatal(err)
	}
	var golden []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			golden = append(golden, line)
		}
	}
	if !slices.IsSorted(golden) || len(slices.Compact(slices.Clone(golden))) != len(golden) {
		t.Fatalf("the golden list must be sorted with no name twice")
	}

	seen := map[string]int{}
	for _, name := range registered {
		seen[name]++
	}
	for name, n := range seen {
		if n > 1 {
			t.Errorf("%s is registered %d times: a name is never reused", name, n)
		}
	}
	got := make([]string, 0, len(registry))
	goTypes := map[reflect.Type]string{}
	for name, mk := range registry {
		got = append(got, name)
		ev := mk()
		if ev.EventType() != name {
			t.Errorf("%s makes a %T, which names itself %s", name, ev, ev.EventType())
		}
		typ := reflect.TypeOf(ev)
		if other, dup := goTypes[typ]; dup {
			t.Errorf("%v is registered as both %s and %s", typ, other, name)
		}
		goTypes[typ] = name
	}
	slices.Sort(got)
	for _, name := range golden {
		if _, ok := registry[name]; !ok {
			t.Errorf("%s is in the golden list but not registered: a stored name was renamed or dropped", name)
		}
	}
	for _, name := range got {
		if !slices.Contains(golden, name) {
			t.Errorf("%s is registered but not in testdata/event-types.golden: add it there", name)
		}
	}
}
