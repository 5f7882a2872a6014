package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events/redis/redistest"
)

// Two instances on one real redis-server: a raise on one pages a consultant
// connected to the other; an accept there is seen at once on the first;
// paging decisions are made once although both instances run the pager.
func TestTwoInstancesOnRedis(t *testing.T) {
	url := redistest.Start(t)
	onRedis := func(c *serveConfig) { c.Store, c.RedisURL = "redis", url; c.PageTimeout = time.Second }
	a := startServer(t, onRedis)
	b := startServer(t, onRedis)

	patel := b.signedIn("dr.patel")
	tab := patel.pager("b-tab")
	nurse := a.signedIn("night.rose")
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])
	// Level 1 (dr.okafor) times out after a second; level 2 is dr.patel, connected to b.
	page := tab.expect("page", 10*time.Second)
	if pageEscalationID(page) != id {
		t.Fatalf("page on instance b: %v", page)
	}
	if r := patel.do("POST", "/api/v1/escalations/"+id+"/accept", nil); r.status != 200 {
		t.Fatalf("accept on b: %d %s", r.status, r.body)
	}
	// Read your writes across instances.
	if got := nurse.do("GET", "/api/v1/escalations/"+id, nil).json(t); got["status"] != "accepted" || got["accepted_by"].(map[string]any)["username"] != "dr.patel" {
		t.Fatalf("instance a after the accept on b: %v", got["status"])
	}
	if open := a.signedIn("dr.okafor").do("GET", "/api/v1/escalations?status=open", nil).list(t); len(open) != 1 || open[0]["status"] != "accepted" {
		t.Errorf("open list on a: %v", open)
	}
	// Both pagers ran; each page was recorded once.
	evs, err := a.app.store.Load(t.Context(), escalation.PagingStream(escalation.EscalationID(id)), 0)
	if err != nil {
		t.Fatal(err)
	}
	levels := map[int]int{}
	for _, e := range evs {
		if e.Type == escalation.TypePaged {
			var p escalation.Paged
			_ = json.Unmarshal(e.Data, &p)
			if p.Round == 0 {
				levels[p.Level]++
			}
		}
	}
	if levels[1] != 1 || levels[2] != 1 {
		t.Errorf("round-0 pages by level across two instances: %v, want one each", levels)
	}
	// The demo was seeded once although both instances ran --demo.
	if users, _ := b.app.store.Users(t.Context()); len(users) != len(demoUsers) {
		t.Errorf("%d accounts, want %d", len(users), len(demoUsers))
	}
}

// A call's participants meet on one instance's SFU whichever instance they
// reach: the first instance claims the room, the other relays signalling.
func TestCallAcrossInstances(t *testing.T) {
	url := redistest.Start(t)
	addrA, addrB := freeAddr(t), freeAddr(t)
	inst := func(addr string) func(*serveConfig) {
		return func(c *serveConfig) {
			c.Store, c.RedisURL, c.Addr, c.AdvertiseURL = "redis", url, addr, "http://"+addr
			loopbackVideo(c)
		}
	}
	a := startServer(t, inst(addrA))
	b := startServer(t, inst(addrB))
	nurse, okafor := a.signedIn("night.rose"), b.signedIn("dr.okafor")
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-102")).json(t)["id"])
	if r := okafor.do("POST", "/api/v1/escalations/"+id+"/accept", nil); r.status != 200 {
		t.Fatalf("accept on b: %d %s", r.status, r.body)
	}
	home := joinCall(t, nurse, id)    // reaches a, which claims the room
	doctor := joinCall(t, okafor, id) // reaches b, which relays to a
	waitFor(t, 20*time.Second, "media both ways across instances", func() bool { return home.ReceivingFrom(1, 30) && doctor.ReceivingFrom(1, 30) })
	if a.app.sfu.Rooms() != 1 || b.app.sfu.Rooms() != 0 {
		t.Errorf("rooms: a %d, b %d; want the call hosted on a only", a.app.sfu.Rooms(), b.app.sfu.Rooms())
	}
	// The decision, recorded on b, ends the call hosted on a.
	if r := okafor.do("POST", "/api/v1/escalations/"+id+"/decision", map[string]string{"outcome": "admit", "counterfactual": "ed", "rationale": "r"}); r.status != 201 {
		t.Fatalf("decide: %d", r.status)
	}
	waitFor(t, 10*time.Second, "the call ends on a", func() bool { return a.app.sfu.Rooms() == 0 && home.GotBye() && doctor.GotBye() })
}
