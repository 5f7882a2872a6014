package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/audit"
	"github.com/nightcall-health/nightcall/web/fhirtest"
)

// night is one night of a home: three escalations, one admitted, one
// staying and one withdrawn, and the handover that holds them.
type night struct {
	s          *testServer
	ids        map[string]string // admit, stay, withdrawn, elm → escalation id
	date       string            // the handover that holds them
	elmDate    string            // the handover that holds Elm House's
	wantOrder  []string          // escalation ids, as the handover must list them
	rose, dctr *client
}

// gpBody is a request to create a GP bound to homes.
func gpBody(username string, homes ...string) map[string]any {
	return map[string]any{"username": username, "name": "Dr " + username, "role": "gp", "care_home_ids": homes, "password": "test-password"}
}

// aNight raises for rc-101 (admitted), rc-102 (a partial set, stays) and
// rc-103 (withdrawn) at Rose Court, and for eh-201 at Elm House, and creates
// the GPs dr.rosegp (Rose Court) and dr.elmgp (Elm House).
func aNight(t *testing.T, opts ...func(*serveConfig)) *night {
	s := startServer(t, opts...)
	n := &night{s: s, ids: map[string]string{}, rose: s.signedIn("night.rose"), dctr: s.signedIn("dr.okafor")}
	admin := s.signedIn("admin")
	for _, gp := range []map[string]any{gpBody("dr.rosegp", "rose-court"), gpBody("dr.elmgp", "elm-house")} {
		if r := admin.do("POST", "/api/v1/users", gp); r.status != 201 {
			t.Fatalf("create gp: %d %s", r.status, r.body)
		}
	}
	raise := func(c *client, resident string, body map[string]any) (string, time.Time) {
		r := c.do("POST", "/api/v1/escalations", body)
		if r.status != 201 {
			t.Fatalf("raise %s: %d %s", resident, r.status, r.body)
		}
		m := r.json(t)
		at, _ := time.Parse(time.RFC3339Nano, str(m["raised_at"]))
		return str(m["id"]), at
	}
	decide := func(id, outcome, plan string) {
		if r := n.dctr.do("POST", "/api/v1/escalations/"+id+"/accept", nil); r.status != 200 {
			t.Fatalf("accept: %d %s", r.status, r.body)
		}
		r := n.dctr.do("POST", "/api/v1/escalations/"+id+"/decision", map[string]string{"outcome": outcome, "counterfactual": "ed", "rationale": "Reviewed by video", "plan": plan})
		if r.status != 201 {
			t.Fatalf("decide: %d %s", r.status, r.body)
		}
	}
	type raised struct {
		id string
		at time.Time
	}
	var rose []raised
	id, at := raise(n.rose, "rc-101", raiseBody("rc-101"))
	decide(id, "admit", "Ambulance to the acute medical unit")
	n.ids["admit"], rose = id, append(rose, raised{id, at})

	partial := raiseBody("rc-102")
	obs := partial["observations"].(map[string]any)
	delete(obs, "systolic_bp")
	obs["absent"] = map[string]string{"systolic_bp": "refused"}
	id, at = raise(n.rose, "rc-102", partial)
	decide(id, "stay", "Amoxicillin; observations 4-hourly; call back if NEWS2 rises")
	n.ids["stay"], rose = id, append(rose, raised{id, at})

	id, at = raise(n.rose, "rc-103", raiseBody("rc-103"))
	if r := n.rose.do("POST", "/api/v1/escalations/"+id+"/withdraw", map[string]string{"reason": "Settled after fluids"}); r.status != 200 {
		t.Fatalf("withdraw: %d %s", r.status, r.body)
	}
	n.ids["withdrawn"], rose = id, append(rose, raised{id, at})

	var elmAt time.Time
	n.ids["elm"], elmAt = raise(s.signedIn("night.elm"), "eh-201", raiseBody("eh-201"))

	// The handover that holds the first raise; the order it must give: the
	// night's out-of-hours ones first, each group in the order raised.
	loc, _ := time.LoadLocation("Europe/London")
	n.date = escalation.HandoverDateFor(rose[0].at, loc)
	n.elmDate = escalation.HandoverDateFor(elmAt, loc)
	slices.SortStableFunc(rose, func(a, b raised) int {
		ao, bo := audit.OutOfHours(a.at, loc), audit.OutOfHours(b.at, loc)
		if ao != bo {
			if ao {
				return -1
			}
			return 1
		}
		return a.at.Compare(b.at)
	})
	for _, r := range rose {
		if escalation.HandoverDateFor(r.at, loc) == n.date { // three unless the raises straddled 08:00
			n.wantOrder = append(n.wantOrder, r.id)
		}
	}
	return n
}

func (n *night) path(home string, extra ...string) string {
	q := url.Values{"date": {n.date}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return "/api/v1/care-homes/" + home + "/handover?" + q.Encode()
}

// TestHandoverNight: the morning handover after a night of three
// escalations (admit, stay, withdrawn) holds exactly those, in order, with
// what the day team needs; as a FHIR document it is valid R4 with the
// Composition first; the CLI prints the same; a GP of another home, another
// home's staff and other roles cannot read it; a GP can read nothing else;
// every read is on the access log.
func TestHandoverNight(t *testing.T) {
	n := aNight(t)
	s := n.s
	gp := s.signedIn("dr.rosegp")

	if me := gp.do("GET", "/api/v1/me", nil).json(t); me["role"] != "gp" || fmt.Sprint(me["care_home_ids"]) != "[rose-court]" {
		t.Errorf("a GP's /me: %v", me)
	}
	var first map[string]any
	for _, who := range []*client{gp, n.rose, s.signedIn("day.rose"), s.signedIn("admin")} {
		r := who.do("GET", n.path("rose-court"), nil)
		if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("handover: %d %q %s", r.status, r.header.Get("Cache-Control"), r.body)
		}
		if first == nil {
			first = r.json(t)
		}
	}
	h := first
	if h["care_home_id"] != "rose-court" || h["date"] != n.date {
		t.Errorf("handover header: %v %v", h["care_home_id"], h["date"])
	}
	from, _ := time.Parse(time.RFC3339, str(h["from"]))
	to, _ := time.Parse(time.RFC3339, str(h["to"]))
	if d := to.Sub(from); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("window %v – %v", from, to)
	}
	entries := h["escalations"].([]any)
	var got []string
	byID := map[string]map[string]any{}
	for _, e := range entries {
		m := e.(map[string]any)
		got = append(got, str(m["id"]))
		byID[str(m["id"])] = m
	}
	if fmt.Sprint(got) != fmt.Sprint(n.wantOrder) {
		t.Fatalf("handover lists %v, want %v (Elm House's %s must not appear)", got, n.wantOrder, n.ids["elm"])
	}
	if len(got) != 3 {
		t.Logf("the raises straddled 08:00: %d of 3 in the handover on %s", len(got), n.date)
	}
	if e := byID[n.ids["admit"]]; e != nil {
		if e["outcome"] != "admit" || e["status"] != "decided" || e["decided_by"] != "dr.okafor" || e["decided_at"] == nil ||
			e["follow_up_due_at"] != nil || e["plan"] != "Ambulance to the acute medical unit" || len(e["still_open"].([]any)) != 0 {
			t.Errorf("admitted: %v", e)
		}
		if r := e["resident"].(map[string]any); r["id"] != "rc-101" || r["name"] != "Margaret Ellis" {
			t.Errorf("resident: %v", r)
		}
		if e["news2_label"] != "8" || e["observations"] == nil {
			t.Errorf("admitted NEWS2 %v, observations %v", e["news2_label"], e["observations"])
		}
	}
	if e := byID[n.ids["stay"]]; e != nil {
		open := e["still_open"].([]any)
		if e["outcome"] != "stay" || e["counterfactual"] != "ed" || e["follow_up_due_at"] == nil || len(open) != 1 ||
			open[0].(map[string]any)["code"] != "follow_up_due" {
			t.Errorf("stay: %v", e)
		}
		if e["news2_label"] != "partial, at least 7" || e["news2"].(map[string]any)["total"] != nil {
			t.Errorf("a partial set is handed over as %v / %v", e["news2_label"], e["news2"])
		}
	}
	if e := byID[n.ids["withdrawn"]]; e != nil {
		if e["status"] != "withdrawn" || e["outcome"] != nil || e["decided_by"] != nil || e["withdrawal"].(map[string]any)["reason"] != "Settled after fluids" {
			t.Errorf("withdrawn: %v", e)
		}
	}

	// The FHIR document, by Accept and by ?format=.
	for _, r := range []response{
		gp.do("GET", n.path("rose-court"), nil, "Accept", "application/fhir+json"),
		gp.do("GET", n.path("rose-court", "format", "fhir"), nil),
	} {
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/fhir+json") || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("FHIR handover: %d %s %s", r.status, r.header, r.body)
		}
		fhirtest.Check(t, r.body)
		var doc struct {
			Type  string `json:"type"`
			Entry []struct {
				Resource struct {
					ResourceType string            `json:"resourceType"`
					Section      []json.RawMessage `json:"section"`
				} `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(r.body, &doc); err != nil || doc.Type != "document" || len(doc.Entry) == 0 || doc.Entry[0].Resource.ResourceType != "Composition" {
			t.Fatalf("not a document with the Composition first: %v %.300s", err, r.body)
		}
		if len(doc.Entry[0].Resource.Section) != len(n.wantOrder) {
			t.Errorf("%d sections for %d escalations", len(doc.Entry[0].Resource.Section), len(n.wantOrder))
		}
	}
	// The printable page and plain text are the same handover.
	page := gp.do("GET", n.path("rose-court"), nil, "Accept", "text/html")
	if page.status != 200 || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") || !strings.Contains(page.header.Get("Content-Security-Policy"), "script-src 'self'") ||
		!strings.Contains(string(page.body), "Morning handover: Rose Court") || strings.Count(string(page.body), "<article") != len(n.wantOrder) {
		t.Errorf("page: %d %s", page.status, page.header)
	}
	if txt := gp.do("GET", n.path("rose-court", "format", "text"), nil); txt.status != 200 || !strings.Contains(string(txt.body), "Margaret Ellis") {
		t.Errorf("text: %d %s", txt.status, txt.body)
	}
	// A GP signing in lands on today's handover of its home.
	if land := gp.do("GET", "/handover", nil); land.status != 200 || !strings.Contains(string(land.body), "Morning handover: Rose Court") {
		t.Errorf("a GP's landing page: %d %.200s", land.status, land.body)
	}

	// Who may not read it, and what a GP may not read.
	elmGP := s.signedIn("dr.elmgp")
	for _, c := range []struct {
		name   string
		who    *client
		path   string
		status int
	}{
		{"a GP of another home", elmGP, n.path("rose-court"), 404},
		{"staff of another home", s.signedIn("night.elm"), n.path("rose-court"), 404},
		{"a consultant", n.dctr, n.path("rose-court"), 403},
		{"an auditor", s.signedIn("auditor"), n.path("rose-court"), 403},
		{"a GP, an escalation", gp, "/api/v1/escalations/" + n.ids["stay"], 403},
		{"a GP, the escalation list", gp, "/api/v1/escalations", 403},
		{"a GP, a resident", gp, "/api/v1/residents/rc-101", 403},
		{"a GP, an escalation's FHIR", gp, "/api/v1/escalations/" + n.ids["stay"] + "/fhir", 403},
		{"a GP, the care homes", gp, "/api/v1/care-homes", 403},
		{"a GP, the rota", gp, "/api/v1/rota/now", 403},
		{"an unknown home", s.signedIn("admin"), n.path("no-such-home"), 404},
	} {
		if r := c.who.do("GET", c.path, nil); r.status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, r.status, r.body, c.status)
		}
	}
	if r := elmGP.do("GET", "/api/v1/care-homes/elm-house/handover?date="+n.elmDate, nil); r.status != 200 || len(r.json(t)["escalations"].([]any)) != 1 {
		t.Errorf("the Elm House GP's own handover: %d %s", r.status, r.body)
	}
	// Bad input is refused precisely.
	for _, c := range []struct{ path, field string }{
		{"/api/v1/care-homes/rose-court/handover?date=2026-13-01", "date"},
		{"/api/v1/care-homes/rose-court/handover?date=24/11/2026", "date"},
		{"/api/v1/care-homes/rose-court/handover?date=" + time.Now().AddDate(0, 0, 3).Format(time.DateOnly), "date"},
		{n.path("rose-court", "format", "pdf"), "format"},
	} {
		r := gp.do("GET", c.path, nil)
		if r.status != 400 || r.apiErr(t)["code"] != "invalid_value" || r.apiErr(t)["field"] != c.field {
			t.Errorf("%s: %d %s", c.path, r.status, r.body)
		}
	}

	// Every handover read is on the access log, one entry per escalation
	// shown (repeated reads of one record are put on record once per period).
	evs, err := s.app.store.Load(t.Context(), escalation.AccessLogStream(), 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range evs {
		var a escalation.RecordAccessed
		if json.Unmarshal(e.Data, &a) == nil && a.What == "handover" && a.Username == "dr.rosegp" {
			seen[string(a.EscalationID)]++
		}
	}
	for _, id := range n.wantOrder {
		if seen[id] == 0 {
			t.Errorf("GP's handover reads of %s on the access log: %d", id, seen[id])
		}
	}

	// The CLI prints the same handover, as JSON, FHIR and text.
	dir := s.app.cfg.DataDir
	out := mustCLI(t, "", "handover", "--data-dir", dir, "--home", "rose-court", "--date", n.date, "--format", "json")
	var cliH struct {
		Escalations []struct {
			ID string `json:"id"`
		} `json:"escalations"`
	}
	if err := json.Unmarshal([]byte(out), &cliH); err != nil {
		t.Fatalf("CLI json: %v\n%s", err, out)
	}
	var cliIDs []string
	for _, e := range cliH.Escalations {
		cliIDs = append(cliIDs, e.ID)
	}
	if fmt.Sprint(cliIDs) != fmt.Sprint(n.wantOrder) {
		t.Errorf("CLI lists %v, want %v", cliIDs, n.wantOrder)
	}
	fhirtest.Check(t, []byte(mustCLI(t, "", "handover", "--data-dir", dir, "--home", "rose-court", "--date", n.date, "--format", "fhir")))
	if txt := mustCLI(t, "", "handover", "--data-dir", dir, "--home", "rose-court", "--date", n.date); !strings.Contains(txt, "Morning handover: Rose Court") ||
		!strings.Contains(txt, "Margaret Ellis") {
		t.Errorf("CLI text:\n%s", txt)
	}
	if _, err := cli(t, "", "handover", "--data-dir", dir, "--home", "no-such-home", "--date", n.date); err == nil || !strings.Contains(err.Error(), "no-such-home") {
		t.Errorf("CLI, unknown home: %v", err)
	}
	if _, err := cli(t, "", "handover", "--data-dir", dir, "--date", n.date); err == nil || !strings.Contains(err.Error(), "--home") {
		t.Errorf("CLI without --home: %v", err)
	}
}

// TestGPAccounts: a GP is created bound to one or more homes, through the
// API and the CLI; without a home, with an unknown one, or with homes on
// another role, it is refused naming care_home_ids.
func TestGPAccounts(t *testing.T) {
	s := startServer(t)
	admin := s.signedIn("admin")
	r := admin.do("POST", "/api/v1/users", gpBody("dr.both", "rose-court", "elm-house", "rose-court"))
	if r.status != 201 || fmt.Sprint(r.json(t)["care_home_ids"]) != "[rose-court elm-house]" || r.json(t)["role"] != "gp" {
		t.Fatalf("create a GP of two homes: %d %s", r.status, r.body)
	}
	both := s.signedIn("dr.both")
	for _, home := range []string{"rose-court", "elm-house"} {
		if r := both.do("GET", "/api/v1/care-homes/"+home+"/handover", nil); r.status != 200 {
			t.Errorf("GP of two homes reading %s: %d %s", home, r.status, r.body)
		}
	}
	for _, c := range []struct {
		name string
		body map[string]any
		code string
	}{
		{"no home", gpBody("dr.none"), "missing_field"},
		{"an unknown home", gpBody("dr.lost", "no-such-home"), "invalid_value"},
		{"homes on a consultant", map[string]any{"username": "dr.x", "name": "Dr X", "role": "consultant", "care_home_ids": []string{"rose-court"}, "password": "test-password"}, "invalid_value"},
	} {
		r := admin.do("POST", "/api/v1/users", c.body)
		if r.status != 400 || r.apiErr(t)["code"] != c.code || r.apiErr(t)["field"] != "care_home_ids" {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
		}
	}
	out := mustCLI(t, "a-long-enough-password\n", "user", "add", "--data-dir", s.app.cfg.DataDir, "--username", "dr.cli", "--name", "Dr Cli",
		"--role", "gp", "--homes", "elm-house, rose-court")
	if !strings.Contains(out, `"care_home_ids"`) || !strings.Contains(out, "elm-house") || !strings.Contains(out, "rose-court") {
		t.Errorf("CLI gp: %s", out)
	}
	if _, err := cli(t, "a-long-enough-password\n", "user", "add", "--data-dir", s.app.cfg.DataDir, "--username", "dr.cli2", "--name", "Dr Cli", "--role", "gp"); err == nil ||
		!strings.Contains(err.Error(), "care_home_ids") {
		t.Errorf("CLI gp without homes: %v", err)
	}
}
