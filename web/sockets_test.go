package web

import (
	"sync"
	"testing"
)

// The bound holds under a burst of parallel upgrades, a released slot makes
// room, and a revocation that arrives while a socket is being upgraded
// closes it as soon as it is attached.
func TestSocketSlots(t *testing.T) {
	s := newSocketSlots(8)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var got []*socketSlot
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if slot, ok := s.take("dr.okafor", "session-1"); ok {
				mu.Lock()
				got = append(got, slot)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(got) != 8 || s.count("dr.okafor") != 8 {
		t.Fatalf("%d slots taken by 50 parallel upgrades, want 8", len(got))
	}
	if _, ok := s.take("dr.patel", "session-2"); !ok {
		t.Fatal("one user's bound refused another user")
	}
	got[0].release()
	if _, ok := s.take("dr.okafor", "session-1"); !ok {
		t.Fatal("a released slot made no room")
	}

	closed := map[string]string{}
	closer := func(name string) func(string) { return func(reason string) { closed[name] = reason } }
	a, _ := s.take("night.rose", "rose-phone")
	a.attach(closer("phone"))
	b, _ := s.take("night.rose", "rose-laptop")
	b.attach(closer("laptop"))
	upgrading, _ := s.take("night.rose", "rose-tablet")
	if n := s.closeSession("rose-phone", "signed out"); n != 1 || closed["phone"] != "signed out" || closed["laptop"] != "" {
		t.Fatalf("close one session: %d %v", n, closed)
	}
	if n := s.closeUser("night.rose", "account disabled"); n != 2 || closed["laptop"] != "account disabled" {
		t.Fatalf("close the user: %d %v", n, closed)
	}
	upgrading.attach(closer("tablet"))
	if closed["tablet"] != "account disabled" {
		t.Fatalf("a socket attached after its user was revoked stayed open: %v", closed)
	}
	if s.closeSession("", "x") != 0 {
		t.Fatal("an empty session hash matched sockets")
	}
}
