package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The hazard log's fields, in the order DCB0129 asks for them.
var hazardFields = []string{"Hazard", "Causes", "Effect", "Harm", "Initial risk",
	"Controls (design)", "Controls (test)", "Controls (training)", "Controls (process)",
	"Residual risk", "Status", "Evidence"}

// The hazards the log must hold at least (issue 10), by a phrase of their title.
var requiredHazards = []string{"page is not delivered", "wrong resident", "NEWS2", "advance care plan",
	"decision not relayed", "fallback number", "frozen video", "failover", "admission avoided", "wrong person"}

var (
	severities  = map[string]int{"Minor": 1, "Significant": 2, "Considerable": 3, "Major": 4, "Catastrophic": 5}
	likelihoods = map[string]int{"Very low": 1, "Low": 2, "Medium": 3, "High": 4, "Very high": 5}
	// riskMatrix[likelihood-1][severity-1], NHS Digital DCB0129 guidance.
	riskMatrix = [5][5]int{
		{1, 1, 2, 2, 3}, // very low
		{1, 2, 2, 3, 4}, // low
		{2, 2, 3, 3, 4}, // medium
		{2, 3, 3, 4, 5}, // high
		{3, 4, 4, 5, 5}, // very high
	}
	riskRe     = regexp.MustCompile(`^(Minor|Significant|Considerable|Major|Catastrophic) × (Very low|Low|Medium|High|Very high) → ([1-5])$`)
	fieldRe    = regexp.MustCompile(`^- \*\*(.+?)\*\*: (.+)$`)
	evidenceRe = regexp.MustCompile("`([a-z0-9/]+|[a-z0-9]+)\\.(Test[A-Za-z0-9_]+)`")
)

type hazard struct {
	id, title string
	fields    map[string]string
}

func parseHazardLog(text string) ([]hazard, error) {
	var out []hazard
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "## HAZ-") {
			id, title, _ := strings.Cut(strings.TrimPrefix(line, "## "), " ")
			out = append(out, hazard{id: id, title: title, fields: map[string]string{}})
			continue
		}
		if m := fieldRe.FindStringSubmatch(line); m != nil && len(out) > 0 {
			out[len(out)-1].fields[m[1]] = m[2]
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no hazards (## HAZ-NN) found")
	}
	return out, nil
}

// testFuncs lists the Test functions declared in the _test.go files of dir.
func testFuncs(dir string) (map[string]bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no test files in %s", dir)
	}
	fset := token.NewFileSet()
	names := map[string]bool{}
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, d := range af.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Test") &&
				fn.Type.Params != nil && len(fn.Type.Params.List) == 1 {
				names[fn.Name.Name] = true
			}
		}
	}
	return names, nil
}

// checkHazardLog returns every problem with the log, read against the
// repository at root.
func checkHazardLog(root, text string) []string {
	hazards, err := parseHazardLog(text)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	bad := func(h hazard, format string, args ...any) {
		problems = append(problems, h.id+": "+fmt.Sprintf(format, args...))
	}
	seen := map[string]bool{}
	cache := map[string]map[string]bool{}
	for _, h := range hazards {
		if seen[h.id] {
			bad(h, "the ID is used twice")
		}
		seen[h.id] = true
		for _, f := range hazardFields {
			if strings.TrimSpace(h.fields[f]) == "" {
				bad(h, "field %q is missing", f)
			}
		}
		ratings := map[string]int{}
		for _, f := range []string{"Initial risk", "Residual risk"} {
			m := riskRe.FindStringSubmatch(h.fields[f])
			if m == nil {
				bad(h, "%s %q is not 'Severity × Likelihood → N'", f, h.fields[f])
				continue
			}
			want := riskMatrix[likelihoods[m[2]]-1][severities[m[1]]-1]
			if got := int(m[3][0] - '0'); got != want {
				bad(h, "%s: %s × %s is %d by the matrix, not %d", f, m[1], m[2], want, got)
			}
			ratings[f] = want
		}
		if ratings["Residual risk"] > ratings["Initial risk"] {
			bad(h, "the residual risk is above the initial risk")
		}
		if s := h.fields["Status"]; !strings.HasPrefix(s, "open") && !strings.HasPrefix(s, "controlled") && !strings.HasPrefix(s, "closed") {
			bad(h, "status %q is not open, controlled or closed", s)
		}
		ev := evidenceRe.FindAllStringSubmatch(h.fields["Evidence"], -1)
		if len(ev) == 0 {
			bad(h, "no evidence: name the tests as `dir.TestName`")
		}
		for _, m := range ev {
			dir, name := m[1], m[2]
			funcs, ok := cache[dir]
			if !ok {
				funcs, err = testFuncs(filepath.Join(root, filepath.FromSlash(dir)))
				if err != nil {
					bad(h, "evidence %s.%s: %v", dir, name, err)
				}
				cache[dir] = funcs
			}
			if funcs != nil && !funcs[name] {
				bad(h, "evidence %s.%s: no such test in %s", dir, name, dir)
			}
		}
	}
	for _, want := range requiredHazards {
		found := false
		for _, h := range hazards {
			found = found || strings.Contains(strings.ToLower(h.title), strings.ToLower(want))
		}
		if !found {
			problems = append(problems, fmt.Sprintf("no hazard about %q", want))
		}
	}
	return problems
}

// TestHazardLog holds docs/clinical-safety/hazard-log.md to the code: every
// field present, every risk as the matrix gives it, every test it names real,
// and the safety case citing every hazard.
func TestHazardLog(t *testing.T) {
	root := filepath.Join("..", "..")
	b, err := os.ReadFile(filepath.Join(root, "docs", "clinical-safety", "hazard-log.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range checkHazardLog(root, string(b)) {
		t.Error(p)
	}
	hazards, _ := parseHazardLog(string(b))
	sc, err := os.ReadFile(filepath.Join(root, "docs", "clinical-safety", "safety-case.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hazards {
		if !strings.Contains(string(sc), h.id) {
			t.Errorf("the safety case does not cite %s", h.id)
		}
	}

	// The check bites: a log naming a test that does not exist, a wrong
	// rating and a missing field are each reported.
	doctored := strings.Replace(string(b), "`escalation.TestPartialSetFromTheIssue`", "`escalation.TestNoSuchTest`", 1)
	doctored = strings.Replace(doctored, "Catastrophic × Medium → 4", "Catastrophic × Medium → 2", 1)
	doctored = strings.Replace(doctored, "- **Harm**: wrong treatment", "- **Hurt**: wrong treatment", 1)
	got := strings.Join(checkHazardLog(root, doctored), "\n")
	for _, want := range []string{"escalation.TestNoSuchTest: no such test", "is 4 by the matrix, not 2", `field "Harm" is missing`} {
		if !strings.Contains(got, want) {
			t.Errorf("a doctored log was not caught for %q; problems:\n%s", want, got)
		}
	}
}
