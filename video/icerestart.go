package video

import (
	"sync"
	"time"
)

// ICE restart: a participant whose network changed (a tablet moving from
// Wi-Fi to 4G, a laptop waking up) asks for {"type":"restart"}; the server,
// which makes every offer, sends a new offer with fresh ICE credentials and
// the participant's media resumes on its new address in the same call: the
// room, its call ID and the other participants are untouched.

// Restart bounds: a flood of restarts costs the server a gathering and a
// renegotiation each, so each participant gets one every restartEvery and
// at most maxRestarts in a call.
const (
	restartEvery = 2 * time.Second
	maxRestarts  = 30
)

// restartBudget is one participant's allowance of ICE restarts.
type restartBudget struct {
	mu   sync.Mutex
	last time.Time
	used int
}

// allow reports whether a restart may run at now, and spends it.
func (b *restartBudget) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used >= maxRestarts || (!b.last.IsZero() && now.Sub(b.last) < restartEvery) {
		return false
	}
	b.last = now
	b.used++
	return true
}

// restartICE sends an offer that restarts ICE, or marks the next offer to
// when one is already waiting for its answer.
func (p *peer) restartICE() {
	p.negMu.Lock()
	p.restart = true
	p.negMu.Unlock()
	p.negotiate()
}
