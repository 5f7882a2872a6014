package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func cli(t *testing.T, input string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	old := stdin
	stdin = strings.NewReader(input)
	defer func() { stdin = old }()
	err := run(context.Background(), args, &out, &out)
	return out.String(), err
}

func mustCLI(t *testing.T, input string, args ...string) string {
	t.Helper()
	out, err := cli(t, input, args...)
	if err != nil {
		t.Fatalf("nightcall %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

const importCSV = `id,care_home_id,name,date_of_birth,room,nhs_number,spo2_scale,spo2_scale_set_by,baseline_news2,baseline_notes,acp_has_respect_form,acp_focus,acp_hospital_admission,acp_cpr,acp_summary,acp_review_due,allergies
oak-1,oak-lodge,Edith Crane,1937-05-01,4,9990000360,1,,2,Usually chatty,yes,balance,discuss,do_not_attempt,Treat reversible causes at home,2027-05-01,penicillin;latex
oak-2,oak-lodge,Frank Moss,1940-08-08,5,9990000433,2,Dr Rao,3,COPD type 2,yes,comfort,not_wanted,do_not_attempt,Comfort first,2027-01-01,
oak-3,oak-lodge,Bad Number,1940-08-08,6,9990000434,1,,1,,,,,,,,
oak-4,oak-lodge,Future Born,2090-01-01,7,9990000506,1,,1,,,,,,,,
oak-5,oak-lodge,No Clinician,1941-01-01,8,9990000018,2,,1,,,,,,,,
oak-1,oak-lodge,Twice,1941-01-01,9,9990000085,1,,1,,,,,,,,
oak-7,oak-lodge,Bad Plan,1941-01-01,9,9990000158,1,,1,,yes,maybe,discuss,attempt,,,
oak-8,oak-lodge,Bad Scale,1941-01-01,9,9990000220,x,,1,,,,,,,,
`

func TestAdministrationFromAFreshDataDir(t *testing.T) {
	dir := t.TempDir()
	d := []string{"--data-dir", dir}
	mustCLI(t, "", append([]string{"home", "add", "--id", "oak-lodge", "--name", "Oak Lodge", "--fallback-phone", "+44 1632 960003"}, d...)...)
	if out, err := cli(t, "", append([]string{"home", "add", "--id", "oak-lodge", "--name", "Again", "--fallback-phone", "+44 1632 960003"}, d...)...); err == nil || !strings.Contains(err.Error(), "id") {
		t.Errorf("duplicate home: %v %s", err, out)
	}
	mustCLI(t, "", append([]string{"resident", "add", "--id", "oak-0", "--home", "oak-lodge", "--name", "Ada Byron", "--dob", "1939-02-02", "--nhs", "9990000298", "--room", "1"}, d...)...)
	for _, c := range []struct {
		args  []string
		field string
	}{
		{[]string{"--id", "oak-x", "--home", "oak-lodge", "--name", "X", "--dob", "1939-02-02", "--nhs", "9990000299"}, "nhs_number"},
		{[]string{"--id", "oak-0", "--home", "oak-lodge", "--name", "X", "--dob", "1939-02-02", "--nhs", "9990000360"}, "id"},
		{[]string{"--id", "oak-x", "--home", "oak-lodge", "--name", "X", "--dob", "2099-02-02", "--nhs", "9990000360"}, "date_of_birth"},
		{[]string{"--id", "oak-x", "--home", "oak-lodge", "--name", "X", "--dob", "1939-02-02", "--nhs", "9990000360", "--scale", "2"}, "spo2_scale_set_by"},
		{[]string{"--id", "oak-x", "--home", "nowhere", "--name", "X", "--dob", "1939-02-02", "--nhs", "9990000360"}, "care_home_id"},
	} {
		out, err := cli(t, "", append(append([]string{"resident", "add"}, c.args...), d...)...)
		if err == nil || !strings.HasPrefix(err.Error(), c.field+":") {
			t.Errorf("resident add %v: %v, want an error naming %s\n%s", c.args, err, c.field, out)
		}
	}
	mustCLI(t, "a-long-staff-password\n", append([]string{"user", "add", "--username", "night.oak", "--name", "Olu Night", "--role", "carehome", "--home", "oak-lodge"}, d...)...)
	mustCLI(t, "a-long-admin-password\n", append([]string{"user", "add", "--username", "boss", "--name", "Bo Ss", "--role", "admin"}, d...)...)
	if _, err := cli(t, "short\n", append([]string{"user", "add", "--username", "weak", "--name", "W", "--role", "auditor"}, d...)...); err == nil || !strings.HasPrefix(err.Error(), "password:") {
		t.Errorf("short password accepted: %v", err)
	}

	csvPath := filepath.Join(dir, "residents.csv")
	if err := os.WriteFile(csvPath, []byte(importCSV), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := cli(t, "", append([]string{"resident", "import", "--file", csvPath, "--dry-run"}, d...)...)
	var rep struct {
		DryRun   bool `json:"dry_run"`
		Rows     int  `json:"rows"`
		Valid    int  `json:"valid"`
		Imported int  `json:"imported"`
		Errors   []struct {
			Row   int    `json:"row"`
			Field string `json:"field"`
		} `json:"errors"`
	}
	if jerr := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &rep); jerr != nil || err == nil {
		t.Fatalf("dry run: %v %v\n%s", err, jerr, out)
	}
	wantBad := map[int]string{4: "nhs_number", 5: "date_of_birth", 6: "spo2_scale_set_by", 7: "id", 8: "advance_care_plan.focus", 9: "spo2_scale"}
	got := map[int]string{}
	for _, e := range rep.Errors {
		got[e.Row] = e.Field
	}
	if !rep.DryRun || rep.Rows != 8 || rep.Valid != 2 || rep.Imported != 0 || len(got) != len(wantBad) {
		t.Errorf("dry run report: %+v", rep)
	}
	for row, field := range wantBad {
		if got[row] != field {
			t.Errorf("row %d: field %q, want %q", row, got[row], field)
		}
	}
	if strings.Contains(mustCLI(t, "", append([]string{"resident", "list"}, d...)...), "oak-1") {
		t.Fatal("the dry run imported something")
	}
	out, err = cli(t, "", append([]string{"resident", "import", "--file", csvPath}, d...)...)
	if !strings.Contains(out, `"imported": 2`) {
		t.Fatalf("real import: %v %s", err, out)
	}

	// The server on that data dir: raise for an imported resident.
	s := startServer(t, func(c *serveConfig) { c.DataDir, c.Demo = dir, false })
	staff := newClient(t, s.base)
	staff.signIn("night.oak", "a-long-staff-password")
	res := staff.do("GET", "/api/v1/residents/oak-1", nil).json(t)
	if res["baseline"].(map[string]any)["news2_total"] != 2.0 || res["advance_care_plan"].(map[string]any)["hospital_admission"] != "discuss" ||
		res["advance_care_plan"].(map[string]any)["cpr"] != "do_not_attempt" || len(res["allergies"].([]any)) != 2 {
		t.Errorf("imported resident: %v", res)
	}
	if r := staff.do("POST", "/api/v1/escalations", raiseBody("oak-1")); r.status != 201 {
		t.Fatalf("raise for an imported resident: %d %s", r.status, r.body)
	}
	// oak-2 is on Scale 2: SpO2 90 % on air scores 0 there (3 on Scale 1).
	low := with("oak-2", func(b, o map[string]any) { o["spo2"] = 90 })
	esc := staff.do("POST", "/api/v1/escalations", low).json(t)
	if sub := esc["news2"].(map[string]any)["subscores"].(map[string]any); sub["spo2"] != 0.0 {
		t.Errorf("Scale 2 resident scored spo2 %v, want 0", sub["spo2"])
	}
	if r2 := staff.do("GET", "/api/v1/residents/oak-2", nil).json(t); r2["spo2_scale"] != 2.0 || r2["spo2_scale_set_by"] != "Dr Rao" {
		t.Errorf("scale 2 with its clinician: %v %v", r2["spo2_scale"], r2["spo2_scale_set_by"])
	}
}

func TestResidentChangesAndInactiveResidents(t *testing.T) {
	s := startServer(t)
	admin, nurse, elm := s.signedIn("admin"), s.signedIn("night.rose"), s.signedIn("night.elm")

	// Changing the scale records who and when.
	n := s.streamLen("rc-102")
	if r := admin.do("POST", "/api/v1/residents/rc-102/spo2-scale", map[string]any{"spo2_scale": 2}); r.status != 400 || r.apiErr(t)["field"] != "set_by" {
		t.Errorf("Scale 2 without a clinician: %d %s", r.status, r.body)
	}
	if s.streamLen("rc-102") != n {
		t.Fatal("a refused change appended")
	}
	r := admin.do("POST", "/api/v1/residents/rc-102/spo2-scale", map[string]any{"spo2_scale": 2, "set_by": "Dr Rao (respiratory)", "set_at": "2026-11-20T10:00:00Z"})
	if r.status != 200 || r.json(t)["spo2_scale"] != 2.0 || r.json(t)["spo2_scale_set_at"] != "2026-11-20T10:00:00Z" {
		t.Fatalf("scale change: %d %s", r.status, r.body)
	}

	// Routine observations form a series in order of taken_at.
	for _, at := range []string{"2026-11-23T01:00:00Z", "2026-11-22T23:00:00Z", "2026-11-23T00:00:00Z"} {
		o := raiseBody("x")["observations"].(map[string]any)
		o["taken_at"] = at
		if r := nurse.do("POST", "/api/v1/residents/rc-101/observations", map[string]any{"observations": o}); r.status != 201 {
			t.Fatalf("observations: %d %s", r.status, r.body)
		}
	}
	series := nurse.do("GET", "/api/v1/residents/rc-101", nil).json(t)["recent_observations"].([]any)
	var times []string
	for _, o := range series {
		times = append(times, str(o.(map[string]any)["taken_at"]))
	}
	if strings.Join(times, " ") != "2026-11-22T23:00:00Z 2026-11-23T00:00:00Z 2026-11-23T01:00:00Z" {
		t.Errorf("series: %v", times)
	}

	// Moving with an open escalation is refused, naming it.
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-103")).json(t)["id"])
	n = s.streamLen("rc-103")
	if r := admin.do("POST", "/api/v1/residents/rc-103/move", map[string]any{"care_home_id": "elm-house"}); r.status != 409 || r.apiErr(t)["escalation_id"] != id {
		t.Errorf("move with an open escalation: %d %s", r.status, r.body)
	}
	if s.streamLen("rc-103") != n {
		t.Fatal("refused move appended")
	}
	nurse.do("POST", "/api/v1/escalations/"+id+"/withdraw", map[string]string{"reason": "better"})
	if r := admin.do("POST", "/api/v1/residents/rc-103/move", map[string]any{"care_home_id": "elm-house", "room": "9"}); r.status != 200 {
		t.Fatalf("move: %d %s", r.status, r.body)
	}
	if r := nurse.do("GET", "/api/v1/residents/rc-103", nil); r.status != 404 {
		t.Errorf("old home still sees the moved resident: %d", r.status)
	}
	if r := elm.do("GET", "/api/v1/residents/rc-103", nil); r.status != 200 || r.json(t)["room"] != "9" {
		t.Errorf("new home: %d %s", r.status, r.body)
	}

	// A resident who died cannot be escalated; the history stays readable.
	died := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	if r := nurse.do("POST", "/api/v1/residents/rc-101/died", map[string]any{"at": died, "expected": true}); r.status != 200 || r.json(t)["status"] != "died" {
		t.Fatalf("record death: %d %s", r.status, r.body)
	}
	n = s.streamLen("rc-101")
	if r := nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")); r.status != 409 || r.apiErr(t)["code"] != "resident_inactive" {
		t.Errorf("raise for a resident who died: %d %s", r.status, r.body)
	}
	if s.streamLen("rc-101") != n {
		t.Fatal("refused raise appended")
	}
	if evs := nurse.do("GET", "/api/v1/residents/rc-101/events", nil).list(t); len(evs) != n || evs[len(evs)-1]["type"] != "resident.died" {
		t.Errorf("history after death: %d events", len(evs))
	}

	// Homes and accounts through the API.
	if r := admin.do("POST", "/api/v1/care-homes", map[string]any{"id": "ash-court", "name": "Ash Court", "fallback_phone": "+44 1632 960004"}); r.status != 201 {
		t.Fatalf("create home: %d %s", r.status, r.body)
	}
	if r := admin.do("PATCH", "/api/v1/care-homes/ash-court", map[string]any{"fallback_phone": "not a phone"}); r.status != 400 || r.apiErr(t)["field"] != "fallback_phone" {
		t.Errorf("bad phone: %d %s", r.status, r.body)
	}
	if r := admin.do("POST", "/api/v1/users", map[string]any{"username": "night.ash", "name": "N", "role": "carehome", "care_home_id": "ash-court", "password": "correct horse battery"}); r.status != 201 {
		t.Fatalf("create user: %d %s", r.status, r.body)
	}
	if r := nurse.do("POST", "/api/v1/users", map[string]any{"username": "x", "name": "N", "role": "admin", "password": "correct horse battery"}); r.status != 403 {
		t.Errorf("staff creating an admin: %d", r.status)
	}
	ash := newClient(t, s.base)
	ash.signIn("night.ash", "correct horse battery")
	if r := admin.do("POST", "/api/v1/care-homes/ash-court/deactivate", nil); r.status != 200 || r.json(t)["active"] != false {
		t.Errorf("deactivate: %d %s", r.status, r.body)
	}
}
