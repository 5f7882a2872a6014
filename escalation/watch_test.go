package escalation

import (
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// A watch wakes on an event of a stream it watches, and only then; a
// redelivered event (at or before the checkpoint) wakes nothing; stopping
// forgets the watch, so Apply looks up nothing once none is left.
func TestAWatchWakesOnItsOwnStreamsOnly(t *testing.T) {
	p := NewProjection(time.UTC)
	pos := int64(0)
	apply := func(stream string, e Event) events.Envelope {
		t.Helper()
		pos++
		data, err := marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		env := events.Envelope{ID: stream + string(rune('a'+pos)), Stream: stream, Version: pos, Position: pos, Type: e.EventType(), Data: data}
		if err := p.Apply(env); err != nil {
			t.Fatal(err)
		}
		return env
	}
	woken := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	first := apply(ResidentStream("r1"), &ResidentAdmitted{ResidentID: "r1", CareHomeID: "h1"})

	ch, stop := p.WatchStreams(ResidentStream("r1"), PagingStream("e1"))
	other, stopOther := p.WatchStreams(ResidentStream("r2"))
	if err := p.Apply(first); err != nil { // redelivered
		t.Fatal(err)
	}
	if woken(ch) {
		t.Fatal("a redelivered event woke the watch")
	}
	apply(ResidentStream("r2"), &ResidentAdmitted{ResidentID: "r2", CareHomeID: "h1"})
	if woken(ch) || !woken(other) {
		t.Fatalf("an event on r2: r1's watch woken %v, r2's %v; want only r2's", woken(ch), woken(other))
	}
	apply(ResidentStream("r1"), &EscalationRaised{EscalationID: "e1", CareHomeID: "h1"})
	if !woken(ch) {
		t.Fatal("an event on r1 did not wake r1's watch")
	}
	apply(ResidentStream("r1"), &EscalationAccepted{EscalationID: "e1", By: Person{Username: "dr.a"}}) // woken once, closed once
	stop()
	stop()
	stopOther()
	if n := p.watching.Load(); n != 0 {
		t.Fatalf("%d watches left after every one stopped", n)
	}
	p.watchMu.Lock()
	left := len(p.watches)
	p.watchMu.Unlock()
	if left != 0 {
		t.Fatalf("%d streams still watched", left)
	}
}
