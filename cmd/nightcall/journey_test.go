package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
)

func TestJourneyRaiseAcceptDecide(t *testing.T) {
	s := startServer(t)
	nurse := s.signedIn("night.rose")
	okafor := s.signedIn("dr.okafor")
	patel := s.signedIn("dr.patel")

	me := nurse.do("GET", "/api/v1/me", nil).json(t)
	if me["role"] != "carehome" || me["care_home_id"] != "rose-court" {
		t.Fatalf("me: %v", me)
	}
	if m := okafor.do("GET", "/api/v1/me", nil).json(t); m["on_call"] != true {
		t.Fatalf("dr.okafor should be on call in the demo: %v", m)
	}

	resp := nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101"))
	if resp.status != http.StatusCreated {
		t.Fatalf("raise: %d %s", resp.status, resp.body)
	}
	esc := resp.json(t)
	id := str(esc["id"])
	score := esc["news2"].(map[string]any)
	if score["total"] != 8.0 || score["risk"] != "high" || score["partial"] != false {
		t.Errorf("NEWS2 of the API.md example: %v, want total 8 high", score)
	}
	sub := score["subscores"].(map[string]any)
	for k, want := range map[string]float64{"respiration_rate": 2, "spo2": 2, "air_or_oxygen": 0, "systolic_bp": 1, "pulse": 2, "consciousness": 0, "temperature": 1} {
		if sub[k] != want {
			t.Errorf("subscore %s = %v, want %v", k, sub[k], want)
		}
	}
	if esc["status"] != "paging" || esc["fallback_phone"] != "+44 1632 960001" || esc["care_home_id"] != "rose-court" {
		t.Errorf("raised escalation: %v", esc)
	}
	if adv := esc["advice"].(map[string]any); adv["level"] != "emergency" {
		t.Errorf("advice for NEWS2 8: %v", adv)
	}

	// The consultant on call sees it among the open escalations.
	open := okafor.do("GET", "/api/v1/escalations?status=open", nil).list(t)
	if len(open) != 1 || open[0]["id"] != id {
		t.Fatalf("open escalations for dr.okafor: %v", open)
	}

	resp = okafor.do("POST", "/api/v1/escalations/"+id+"/accept", nil)
	if resp.status != http.StatusOK {
		t.Fatalf("accept: %d %s", resp.status, resp.body)
	}
	if by := resp.json(t)["accepted_by"].(map[string]any); by["username"] != "dr.okafor" || by["name"] != "Dr Chidi Okafor" {
		t.Errorf("accepted_by: %v", by)
	}
	if again := okafor.do("POST", "/api/v1/escalations/"+id+"/accept", nil); again.status != http.StatusOK {
		t.Errorf("same consultant accepting again: %d %s", again.status, again.body)
	}
	resp = patel.do("POST", "/api/v1/escalations/"+id+"/accept", nil)
	if resp.status != http.StatusConflict {
		t.Fatalf("second consultant: %d %s", resp.status, resp.body)
	}
	if e := resp.apiErr(t); e["code"] != "already_accepted" || e["accepted_by"].(map[string]any)["username"] != "dr.okafor" {
		t.Errorf("second consultant error: %v", e)
	}

	resp = okafor.do("POST", "/api/v1/escalations/"+id+"/decision", map[string]string{
		"outcome": "stay", "counterfactual": "ed", "rationale": "Chest infection, manageable at home", "plan": "Oral antibiotics; obs 4-hourly; call back if NEWS2 rises",
	})
	if resp.status != http.StatusCreated {
		t.Fatalf("decision: %d %s", resp.status, resp.body)
	}
	decided := resp.json(t)
	dec := decided["decision"].(map[string]any)
	if decided["status"] != "decided" || dec["outcome"] != "stay" || dec["counterfactual"] != "ed" || dec["decided_by"] != "dr.okafor" || dec["decided_by_name"] != "Dr Chidi Okafor" {
		t.Errorf("decided escalation: %v", decided)
	}

	// The home reads the decision; the resident's stream holds the journey.
	got := nurse.do("GET", "/api/v1/escalations/"+id, nil).json(t)
	if got["status"] != "decided" {
		t.Errorf("home's view after the decision: %v", got["status"])
	}
	evs := nurse.do("GET", "/api/v1/residents/rc-101/events", nil).list(t)
	var types []string
	for i, e := range evs {
		if e["version"] != float64(i+1) || e["stream"] != "resident-rc-101" {
			t.Errorf("event %d: version %v stream %v", i, e["version"], e["stream"])
		}
		types = append(types, str(e["type"]))
	}
	want := []string{"escalation.raised", "escalation.accepted", "escalation.decided"}
	tail := types[len(types)-3:]
	if fmt.Sprint(tail) != fmt.Sprint(want) {
		t.Fatalf("resident stream ends %v, want %v (all: %v)", tail, want, types)
	}
	last := evs[len(evs)-1]["data"].(map[string]any)
	if last["outcome"] != "stay" || last["counterfactual"] != "ed" || last["decided_by"] != "dr.okafor" {
		t.Errorf("decided event data: %v", last)
	}

	// The resident view shows the raise's observations and the escalation.
	res := nurse.do("GET", "/api/v1/residents/rc-101", nil).json(t)
	if obs := res["recent_observations"].([]any); len(obs) != 1 {
		t.Errorf("recent observations: %v", obs)
	}
	if recent := res["recent_escalations"].([]any); len(recent) != 1 || recent[0].(map[string]any)["outcome"] != "stay" {
		t.Errorf("recent escalations: %v", recent)
	}
	// The reads were put on record.
	access, err := s.app.store.Load(t.Context(), "access-log", 0)
	if err != nil || len(access) < 3 {
		t.Fatalf("access log: %d entries, %v", len(access), err)
	}
	var lastAccess map[string]any
	_ = json.Unmarshal(access[len(access)-1].Data, &lastAccess)
	if lastAccess["username"] != "night.rose" || lastAccess["resident_id"] != "rc-101" {
		t.Errorf("last access entry: %v", lastAccess)
	}
	listed := 0
	for _, e := range access {
		var m map[string]any
		_ = json.Unmarshal(e.Data, &m)
		if m["what"] == "escalation_list" && m["username"] == "dr.okafor" {
			listed++
		}
	}
	if listed != 1 {
		t.Errorf("dr.okafor's list read is on record %d times, want once", listed)
	}
}

func TestFiftyConcurrentAcceptsOneWinner(t *testing.T) {
	s := startServer(t)
	nurse := s.signedIn("night.rose")
	consultants := map[string]*client{"dr.okafor": s.signedIn("dr.okafor"), "dr.patel": s.signedIn("dr.patel")}
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-102")).json(t)["id"])
	before := s.streamLen("rc-102")

	type result struct {
		who    string
		status int
		winner string
	}
	results := make(chan result, 50)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 50; i++ {
		who := "dr.okafor"
		if i%2 == 1 {
			who = "dr.patel"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp := consultants[who].do("POST", "/api/v1/escalations/"+id+"/accept", nil)
			r := result{who: who, status: resp.status}
			switch resp.status {
			case http.StatusOK:
				r.winner = str(resp.json(t)["accepted_by"].(map[string]any)["username"])
			case http.StatusConflict:
				r.winner = str(resp.apiErr(t)["accepted_by"].(map[string]any)["username"])
			}
			results <- r
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	winners := map[string]bool{}
	for r := range results {
		switch {
		case r.status == http.StatusOK && r.who == r.winner:
		case r.status == http.StatusConflict && r.who != r.winner:
		default:
			t.Errorf("%s got %d naming winner %q", r.who, r.status, r.winner)
		}
		winners[r.winner] = true
	}
	if len(winners) != 1 {
		t.Fatalf("winners: %v, want exactly one", winners)
	}
	evs, _ := s.app.store.Load(t.Context(), "resident-rc-102", 0)
	accepted := 0
	for _, e := range evs {
		if e.Type == "escalation.accepted" {
			accepted++
		}
	}
	if accepted != 1 || len(evs) != before+1 {
		t.Fatalf("%d escalation.accepted events and %d new events, want 1 and 1", accepted, len(evs)-before)
	}
}
