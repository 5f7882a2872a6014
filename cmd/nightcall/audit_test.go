package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation/audit"
	"github.com/nightcall-health/nightcall/web/fhirtest"
)

// nhs returns a valid NHS number in the 999 test range for n.
func nhs(n int) string {
	for ; ; n++ {
		base := fmt.Sprintf("999%06d", n)
		sum := 0
		for i := 0; i < 9; i++ {
			sum += int(base[i]-'0') * (10 - i)
		}
		check := 11 - sum%11
		if check == 11 {
			check = 0
		}
		if check != 10 {
			return base + fmt.Sprint(check)
		}
	}
}

func nearestRank(xs []float64, p float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	r := int(math.Ceil(p / 100 * float64(len(s))))
	return math.Round(s[max(r, 1)-1]*1000) / 1000
}

// The audit scenario: a known set of escalations across two homes, every
// figure asserted at two as_of instants, through the API and the CLI; a
// rebuild and a doubled delivery give the same figures.
func TestAdmissionsAvoidedScenario(t *testing.T) {
	s := startServer(t, timeouts(time.Second, time.Second))
	admin, auditor := s.signedIn("admin"), s.signedIn("auditor")
	rose, elm, okafor := s.signedIn("night.rose"), s.signedIn("night.elm"), s.signedIn("dr.okafor")
	for i, r := range []struct{ id, home string }{{"rc-104", "rose-court"}, {"rc-105", "rose-court"}, {"eh-203", "elm-house"}, {"eh-204", "elm-house"}, {"eh-205", "elm-house"}} {
		resp := admin.do("POST", "/api/v1/residents", map[string]any{"id": r.id, "care_home_id": r.home, "name": "Resident " + r.id, "date_of_birth": "1940-01-01", "nhs_number": nhs(100 + i*10)})
		if resp.status != 201 {
			t.Fatalf("admit %s: %d %s", r.id, resp.status, resp.body)
		}
	}
	from := time.Now().UTC().Add(-time.Minute)
	home := map[string]*client{"rc": rose, "eh": elm}
	raised := map[string]map[string]any{}
	raise := func(resident string) string {
		r := home[resident[:2]].do("POST", "/api/v1/escalations", raiseBody(resident))
		if r.status != 201 {
			t.Fatalf("raise %s: %d %s", resident, r.status, r.body)
		}
		return str(r.json(t)["id"])
	}
	decide := func(id, outcome, cf string) {
		if r := okafor.do("POST", "/api/v1/escalations/"+id+"/accept", nil); r.status != 200 {
			t.Fatalf("accept: %d %s", r.status, r.body)
		}
		r := okafor.do("POST", "/api/v1/escalations/"+id+"/decision", map[string]string{"outcome": outcome, "counterfactual": cf, "rationale": "r", "plan": "p"})
		if r.status != 201 {
			t.Fatalf("decide: %d %s", r.status, r.body)
		}
		raised[id] = r.json(t)
	}
	ids := map[string]string{}
	for _, c := range []struct{ name, resident, outcome, cf string }{
		{"confirmed", "rc-101", "stay", "ed"}, {"unconfirmed", "rc-102", "stay", "ed"}, {"gp", "rc-103", "stay", "gp"},
		{"admit", "eh-201", "admit", "ed"}, {"failed-admission", "eh-202", "stay", "ed"}, {"failed-ae", "eh-203", "stay", "ed"},
		{"death", "eh-204", "stay", "ed"},
	} {
		ids[c.name] = raise(c.resident)
		decide(ids[c.name], c.outcome, c.cf)
	}
	ids["withdrawn"] = raise("rc-105")
	if r := rose.do("POST", "/api/v1/escalations/"+ids["withdrawn"]+"/withdraw", map[string]string{"reason": "settled"}); r.status != 200 {
		t.Fatalf("withdraw: %d", r.status)
	}
	ids["unanswered"] = raise("rc-104")
	// Inside the windows: an unplanned admission, an A&E attendance, a death;
	// and an admission for rc-101 that is planned, which does not fail its stay.
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for _, c := range []struct {
		c        *client
		resident string
		body     map[string]any
	}{
		{elm, "eh-202", map[string]any{"at": now, "kind": "admission", "unplanned": true}},
		{elm, "eh-203", map[string]any{"at": now, "kind": "ed_attendance", "unplanned": true}},
		{rose, "rc-101", map[string]any{"at": now, "kind": "admission", "unplanned": false}},
	} {
		if r := c.c.do("POST", "/api/v1/residents/"+c.resident+"/hospital-admissions", c.body); r.status != 201 {
			t.Fatalf("admission %s: %d %s", c.resident, r.status, r.body)
		}
	}
	if r := elm.do("POST", "/api/v1/residents/eh-204/died", map[string]any{"at": now, "expected": false}); r.status != 200 {
		t.Fatalf("death: %d %s", r.status, r.body)
	}
	waitFor(t, 6*time.Second, "unanswered", func() bool {
		return rose.do("GET", "/api/v1/escalations/"+ids["unanswered"], nil).json(t)["status"] == "unanswered"
	})
	asOf1 := time.Now().UTC()
	time.Sleep(10 * time.Millisecond)
	// The follow-up window is a parameter of the query, not of the log: it is
	// chosen now, a whole number of seconds that leaves every stay's window
	// open as of asOf1 however long the requests above took (seconds, under
	// -race on a loaded machine), so that the three stays not yet failed are
	// pending then by construction rather than by the machine's speed.
	decidedAt := func(name string) time.Time {
		at, err := time.Parse(time.RFC3339Nano, str(raised[ids[name]]["decision"].(map[string]any)["decided_at"]))
		if err != nil {
			t.Fatalf("%s decided_at: %v", name, err)
		}
		return at
	}
	firstDecided := decidedAt("confirmed")
	for _, name := range []string{"unconfirmed", "gp", "failed-admission", "failed-ae", "death"} {
		if at := decidedAt(name); at.Before(firstDecided) {
			firstDecided = at
		}
	}
	windowDur := asOf1.Sub(firstDecided).Truncate(time.Second) + 2*time.Second
	window := fmt.Sprintf("%ds", int(windowDur/time.Second))

	// After the windows end: the home confirms rc-101 at home; a new stay opens its window.
	waitFor(t, windowDur+10*time.Second, "windows end", func() bool {
		for _, name := range []string{"confirmed", "unconfirmed", "gp", "failed-admission", "failed-ae", "death"} {
			if time.Now().Before(decidedAt(name).Add(windowDur + 50*time.Millisecond)) {
				return false
			}
		}
		return true
	})
	if r := rose.do("POST", "/api/v1/escalations/"+ids["confirmed"]+"/follow-up", map[string]any{"status": "at_home", "at": time.Now().UTC()}); r.status != 201 {
		t.Fatalf("follow-up: %d %s", r.status, r.body)
	}
	if r := rose.do("POST", "/api/v1/escalations/"+ids["admit"]+"/follow-up", map[string]any{"status": "at_home", "at": time.Now().UTC()}); r.status != 404 {
		t.Errorf("another home's follow-up: %d", r.status)
	}
	if r := elm.do("POST", "/api/v1/escalations/"+ids["admit"]+"/follow-up", map[string]any{"status": "at_home", "at": time.Now().UTC()}); r.status != 409 || r.apiErr(t)["code"] != "not_a_stay" {
		t.Errorf("follow-up of an admit: %d %s", r.status, r.body)
	}
	ids["open"] = raise("eh-205")
	decide(ids["open"], "stay", "ed")
	asOf2 := time.Now().UTC()
	to := asOf2.Add(time.Hour)

	query := func(asOf time.Time, extra string) map[string]any {
		q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "window": {window}, "as_of": {asOf.Format(time.RFC3339Nano)}}
		r := auditor.do("GET", "/api/v1/audit/admissions-avoided?"+q.Encode()+extra, nil)
		if r.status != 200 {
			t.Fatalf("audit: %d %s", r.status, r.body)
		}
		return r.json(t)
	}
	check := func(label string, got map[string]any, want map[string]int) {
		t.Helper()
		for k, v := range want {
			if got[k] != float64(v) {
				t.Errorf("%s: %s = %v, want %d", label, k, got[k], v)
			}
		}
	}
	f1 := query(asOf1, "")
	check("as_of 1", f1, map[string]int{"escalations": 9, "decided": 7, "admit": 1, "stay": 6, "withdrawn": 1, "ever_unanswered": 1,
		"admissions_avoided": 0, "avoided_unconfirmed": 0, "failed_stays": 2, "pending_window": 3, "deaths_in_window": 1})
	f2 := query(asOf2, "")
	check("as_of 2", f2, map[string]int{"escalations": 10, "decided": 8, "admit": 1, "stay": 7, "withdrawn": 1, "ever_unanswered": 1,
		"admissions_avoided": 1, "avoided_unconfirmed": 1, "failed_stays": 2, "pending_window": 1, "deaths_in_window": 1})
	if f2["window"] != window {
		t.Errorf("window echoed as %v", f2["window"])
	}
	byHome := map[string]map[string]any{}
	for _, h := range f2["by_care_home"].([]any) {
		byHome[str(h.(map[string]any)["care_home_id"])] = h.(map[string]any)
	}
	check("rose-court", byHome["rose-court"], map[string]int{"escalations": 5, "decided": 3, "stay": 3, "withdrawn": 1, "ever_unanswered": 1, "admissions_avoided": 1, "avoided_unconfirmed": 1})
	check("elm-house", byHome["elm-house"], map[string]int{"escalations": 5, "decided": 5, "admit": 1, "stay": 4, "failed_stays": 2, "deaths_in_window": 1, "pending_window": 1})
	check("one home", query(asOf2, "&care_home=elm-house"), map[string]int{"escalations": 5, "admissions_avoided": 0, "failed_stays": 2})

	// Out of hours and the percentiles, from the escalations themselves.
	var accept, decision []float64
	ooh := 0
	loc, _ := time.LoadLocation("Europe/London")
	for _, id := range ids {
		e := rose.do("GET", "/api/v1/escalations/"+id, nil)
		if e.status == 404 {
			e = elm.do("GET", "/api/v1/escalations/"+id, nil)
		}
		m := e.json(t)
		rat, _ := time.Parse(time.RFC3339Nano, str(m["raised_at"]))
		if audit.OutOfHours(rat, loc) {
			ooh++
		}
		if a, ok := m["accepted_at"].(string); ok {
			at, _ := time.Parse(time.RFC3339Nano, a)
			accept = append(accept, at.Sub(rat).Seconds())
		}
		if d, ok := m["decision"].(map[string]any); ok {
			dt, _ := time.Parse(time.RFC3339Nano, str(d["decided_at"]))
			decision = append(decision, dt.Sub(rat).Seconds())
		}
	}
	check("out of hours", f2, map[string]int{"out_of_hours": ooh})
	sta, std := f2["seconds_to_accept"].(map[string]any), f2["seconds_to_decision"].(map[string]any)
	if sta["p50"] != nearestRank(accept, 50) || sta["p90"] != nearestRank(accept, 90) || std["p50"] != nearestRank(decision, 50) || std["p90"] != nearestRank(decision, 90) {
		t.Errorf("percentiles %v %v, want accept %v/%v decision %v/%v", sta, std, nearestRank(accept, 50), nearestRank(accept, 90), nearestRank(decision, 50), nearestRank(decision, 90))
	}

	// The same figures through the CLI.
	for _, c := range []struct {
		asOf time.Time
		api  map[string]any
	}{{asOf1, f1}, {asOf2, f2}} {
		out := mustCLI(t, "", "audit", "--data-dir", s.app.cfg.DataDir, "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339),
			"--window", window, "--as-of", c.asOf.Format(time.RFC3339Nano), "--format", "json")
		var cliFig map[string]any
		if err := json.Unmarshal([]byte(out), &cliFig); err != nil {
			t.Fatalf("CLI json: %v\n%s", err, out)
		}
		a, _ := json.Marshal(c.api)
		b, _ := json.Marshal(cliFig)
		if string(a) != string(b) {
			t.Errorf("CLI and API differ at %v:\nAPI %s\nCLI %s", c.asOf, a, b)
		}
	}
	if out := mustCLI(t, "", "audit", "--data-dir", s.app.cfg.DataDir, "--window", window); !strings.Contains(out, "admissions_avoided") {
		t.Errorf("table output: %s", out)
	}

	// A rebuild from an empty model, and every event delivered twice, give the same figures.
	q := audit.Query{From: from, To: to, Window: windowDur, WindowText: window, AsOf: asOf2, Location: loc}
	rebuilt, twice := audit.NewModel(), audit.NewModel()
	evs, err := s.app.store.ReadAll(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if err := rebuilt.Apply(e); err != nil {
			t.Fatal(err)
		}
		_ = twice.Apply(e)
		_ = twice.Apply(e)
	}
	for i := len(evs) - 1; i >= 0; i-- { // and a late replay of everything
		_ = twice.Apply(evs[i])
	}
	live, _ := json.Marshal(s.app.audit.Figures(q))
	for name, m := range map[string]*audit.Model{"rebuild": rebuilt, "delivered twice": twice} {
		got, _ := json.Marshal(m.Figures(q))
		if string(got) != string(live) {
			t.Errorf("%s differs:\n%s\n%s", name, got, live)
		}
		if m.Digest() != s.app.audit.Digest() {
			t.Errorf("%s: model digest differs from the live model", name)
		}
	}
	if out := mustCLI(t, "", "projections", "rebuild", "--data-dir", s.app.cfg.DataDir); !strings.Contains(out, "events/s") {
		t.Errorf("projections rebuild: %s", out)
	}

	// Exports: CSV without free text unless asked; FHIR for one escalation.
	csvResp := auditor.do("GET", "/api/v1/audit/escalations.csv?from="+url.QueryEscape(from.Format(time.RFC3339)), nil)
	lines := strings.Split(strings.TrimSpace(string(csvResp.body)), "\n")
	if csvResp.status != 200 || len(lines) != 11 || !strings.HasPrefix(lines[0], "escalation_id,resident_id,care_home_id,raised_at") || strings.Contains(string(csvResp.body), "More breathless") {
		t.Errorf("CSV: %d, %d lines\n%s", csvResp.status, len(lines), csvResp.body)
	}
	if txt := auditor.do("GET", "/api/v1/audit/escalations.csv?include_text=true", nil); !strings.Contains(string(txt.body), "More breathless") {
		t.Errorf("CSV with text lacks the situation")
	}
	if r := rose.do("GET", "/api/v1/audit/admissions-avoided", nil); r.status != 403 {
		t.Errorf("staff reading audit figures: %d", r.status)
	}
	if r := auditor.do("GET", "/api/v1/audit/admissions-avoided?window=7x", nil); r.status != 400 || r.apiErr(t)["field"] != "window" {
		t.Errorf("bad window: %d %s", r.status, r.body)
	}
	fhir := auditor.do("GET", "/api/v1/escalations/"+ids["confirmed"]+"/fhir", nil)
	var bundle struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Entry        []struct {
			Resource map[string]any `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(fhir.body, &bundle); err != nil || bundle.ResourceType != "Bundle" || bundle.Type != "collection" {
		t.Fatalf("FHIR: %d %v %s", fhir.status, err, fhir.body)
	}
	fhirtest.Check(t, fhir.body)
	if fhir.header.Get("Cache-Control") != "no-store" {
		t.Errorf("FHIR Cache-Control %q", fhir.header.Get("Cache-Control"))
	}
	kinds := map[string]int{}
	for _, e := range bundle.Entry {
		kinds[str(e.Resource["resourceType"])]++
	}
	// The seven NEWS2 parameters and the score; the stay's plan as a CarePlan.
	if kinds["Observation"] != 8 || kinds["Encounter"] != 1 || kinds["ClinicalImpression"] != 1 || kinds["Patient"] != 1 || kinds["CarePlan"] != 1 {
		t.Errorf("bundle resources: %v", kinds)
	}
	for _, want := range []string{`"9279-1"`, `"2708-6"`, `"1104051000000101"`, `"1104301000000104"`, `"code":"VR"`, `"home"`} {
		if !strings.Contains(string(fhir.body), want) {
			t.Errorf("FHIR bundle lacks %s", want)
		}
	}
	// Every read of a record is listed for auditors.
	access := auditor.do("GET", "/api/v1/audit/access-log", nil).list(t)
	if len(access) == 0 || access[len(access)-1]["username"] != "auditor" || access[len(access)-1]["what"] != "escalation" {
		t.Errorf("access log tail: %v", access[len(access)-1])
	}
}
