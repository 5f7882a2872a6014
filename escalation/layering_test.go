package escalation

import (
	"go/build"
	"strings"
	"testing"
)

// TestDomainImportsOnlyStandardLibraryAndEvents holds the layering: the
// domain packages import the standard library, the events port and each
// other, nothing else; the events port imports the standard library and the
// UUID package its DeterministicID is built on.
func TestDomainImportsOnlyStandardLibraryAndEvents(t *testing.T) {
	const module = "github.com/nightcall-health/nightcall/"
	allowed := map[string][]string{
		"escalation":        {module + "events", module + "escalation"},
		"escalation/news2":  nil,
		"escalation/paging": {module + "events", module + "escalation"},
		"escalation/audit":  {module + "events", module + "escalation"},
		"events":            {"github.com/google/uuid"},
	}
	for dir, extra := range allowed {
		pkg, err := build.Import(module+dir, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range pkg.Imports {
			if !strings.Contains(strings.Split(imp, "/")[0], ".") {
				continue // the standard library
			}
			ok := false
			for _, a := range extra {
				ok = ok || imp == a || strings.HasPrefix(imp, a+"/") && a != module+"events"
			}
			if !ok {
				t.Errorf("%s imports %s", dir, imp)
			}
		}
	}
}
