package video

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// Probing. Google congestion control raises its estimate only to about
// 1.5 times what it sees delivered: a subscriber moved to the low layer
// never shows it could take more. So, while a subscriber could use a
// higher layer than its estimate allows, the SFU sends it padding for a
// moment at a little more than the rate that layer needs (probeOver),
// and reads the subscriber's transport-wide feedback: without loss, the
// probed rate counts as its estimate (a floor that holds while the subscriber loses nothing);
// with loss, the next probe waits twice as long. Probes are padding
// only: the video stays on its layer during one.
const (
	probeFor = 2 * time.Second
	// probeOver is how far above what the next layer needs a probe goes: a
	// link's buffer (a policer's burst, a router's queue) hides a small
	// excess for the length of a probe, and a probe that passes only
	// because of it sends the subscriber up into loss.
	probeOver      = 1.15
	probeSettle    = 500 * time.Millisecond // feedback to wait for after a probe
	probeFirst     = 3 * time.Second        // clean time before a probe
	probeBackoff   = 5 * time.Second
	probeMaxWait   = 40 * time.Second
	probeLossOK    = 0.02
	floorLossLimit = 0.05
	floorHold      = 8 * time.Second
	// congestionFalls cuts of the estimate within congestionWindow are
	// congestion, not jitter.
	congestionFalls  = 3
	congestionWindow = 2 * time.Second
	// dipFlat ticks without a rise end a dip's floor.
	dipFlat = 2
)

// downlink is what the SFU learns of one subscriber's downlink from its
// feedback, and the probes it sends.
type downlink struct {
	recv, lost atomic.Uint64 // packet statuses in its TWCC feedback

	// seen are the last feedback packets counted (base sequence number and
	// feedback count): Pion hands a compound RTCP packet to every sender
	// it names, so one feedback can come more than once.
	seenMu sync.Mutex
	seen   [32]uint32
	seenAt int

	mu                 sync.Mutex
	lastRecv, lastLost uint64
	cleanSince         time.Time
	floor              float64
	floorUntil         time.Time
	probing            bool
	probeRate          float64
	probeEnd           time.Time
	probeRecv0         uint64
	probeLost0         uint64
	nextProbe          time.Time
	backoff            time.Duration
	probes, probesOK   int
	lastGCC            float64
	falls              [congestionFalls]time.Time // the last cuts of the estimate
	fallAt             int
	dip                bool // the floor is a dip's, not a probe's
	flat               int  // ticks since the controller last rose, in a dip
	dips               int  // cuts ridden out
}

// feedback counts the statuses of one TWCC feedback packet.
func (dl *downlink) feedback(fb *rtcp.TransportLayerCC) {
	key := uint32(fb.BaseSequenceNumber)<<8 | uint32(fb.FbPktCount) | 1<<31
	dl.seenMu.Lock()
	for _, k := range dl.seen {
		if k == key {
			dl.seenMu.Unlock()
			return
		}
	}
	dl.seen[dl.seenAt] = key
	dl.seenAt = (dl.seenAt + 1) % len(dl.seen)
	dl.seenMu.Unlock()
	left := int(fb.PacketStatusCount)
	var recv, lost uint64
	count := func(symbol uint16, n int) {
		n = min(n, left)
		left -= n
		if symbol == rtcp.TypeTCCPacketNotReceived {
			lost += uint64(n) // #nosec G115 -- a run length, never negative
		} else {
			recv += uint64(n) // #nosec G115 -- a run length, never negative
		}
	}
	for _, c := range fb.PacketChunks {
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			count(c.PacketStatusSymbol, int(c.RunLength))
		case *rtcp.StatusVectorChunk:
			for _, s := range c.SymbolList {
				count(s, 1)
			}
		}
	}
	dl.recv.Add(recv)
	dl.lost.Add(lost)
}

// tick takes the loss since the last tick, updates the floor and ends a
// probe whose feedback is in. It returns the floor to add to gcc, the
// congestion controller's estimate.
//
// The floor gives way at once to loss. To the delay signal, which comes
// before any loss, it gives way when the estimate keeps falling: a queue
// that builds up because the floor holds the rate above what the link
// carries makes the controller cut again and again (congestionFalls in
// congestionWindow). One cut with nothing lost, the controller climbing
// straight back after it, is the receiver's clock or scheduler, not the
// link (a busy machine, a phone waking its radio): the floor rides it out
// at the estimate before the cut, so one jittery moment does not drop the
// picture to its lowest layer for the ten seconds the controller takes to
// climb back. An estimate that stays down (dipFlat ticks without a rise)
// is the link's, and the floor goes.
func (dl *downlink) tick(now time.Time, gcc float64) float64 {
	recv, lost := dl.recv.Load(), dl.lost.Load()
	dl.mu.Lock()
	defer dl.mu.Unlock()
	falling := gcc < 0.95*dl.lastGCC
	rising := gcc > dl.lastGCC
	before := max(dl.lastGCC, dl.floor)
	dl.lastGCC = gcc
	if falling {
		dl.falls[dl.fallAt] = now
		dl.fallAt = (dl.fallAt + 1) % len(dl.falls)
	}
	recent := 0
	for _, at := range dl.falls {
		if !at.IsZero() && now.Sub(at) < congestionWindow {
			recent++
		}
	}
	congested := recent >= congestionFalls
	if dl.backoff == 0 {
		dl.backoff = probeBackoff
		dl.nextProbe = now.Add(probeFirst)
	}
	dr, dlost := recv-dl.lastRecv, lost-dl.lastLost
	dl.lastRecv, dl.lastLost = recv, lost
	loss := 0.0
	if dr+dlost > 0 {
		loss = float64(dlost) / float64(dr+dlost)
	}
	if loss > probeLossOK/2 {
		dl.cleanSince = time.Time{}
	} else if dl.cleanSince.IsZero() {
		dl.cleanSince = now
	}
	if dl.probing && !now.Before(dl.probeEnd.Add(probeSettle)) {
		dl.probing = false
		pr, pl := recv-dl.probeRecv0, lost-dl.probeLost0
		if pr > 0 && float64(pl)/float64(pr+pl) < probeLossOK {
			dl.floor, dl.floorUntil, dl.dip = dl.probeRate, now.Add(floorHold), false
			dl.backoff = probeBackoff
			dl.nextProbe = now.Add(time.Second)
			dl.probesOK++
		} else {
			dl.backoff = min(2*dl.backoff, probeMaxWait)
			dl.nextProbe = now.Add(dl.backoff)
		}
	}
	// A dip is ridden out while the controller climbs back; an estimate
	// that stays down is the link's.
	if dl.dip && !falling {
		if rising {
			dl.flat = 0
		} else if dl.flat++; dl.flat >= dipFlat {
			dl.floor, dl.dip = 0, false
		}
	}
	switch {
	case loss > floorLossLimit || congested:
		dl.floor, dl.dip = 0, false
	case falling && loss <= probeLossOK:
		dl.floor, dl.floorUntil, dl.dip, dl.flat = before, now.Add(floorHold), true, 0
		dl.dips++
	case dl.floor > 0 && loss <= probeLossOK && !dl.probing:
		dl.floorUntil = now.Add(floorHold) // it holds while nothing is lost
	}
	if now.After(dl.floorUntil) || (dl.floor > 0 && gcc >= dl.floor && !dl.probing) {
		dl.floor, dl.dip = 0, false // expired, or the controller is back above it
	}
	return dl.floor
}

// startProbe begins a probe at rate (bits per second in all) when one is
// due and the downlink has been clean; it reports whether it did.
func (dl *downlink) startProbe(rate float64, now time.Time) bool {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	if dl.probing || now.Before(dl.nextProbe) || dl.cleanSince.IsZero() || now.Sub(dl.cleanSince) < probeFirst/2 {
		return false
	}
	dl.probing, dl.probeRate, dl.probeEnd = true, rate, now.Add(probeFor)
	dl.probeRecv0, dl.probeLost0 = dl.recv.Load(), dl.lost.Load()
	dl.probes++
	return true
}

func (dl *downlink) isProbing() bool {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	return dl.probing
}

// pad sends padding on d at bps bits per second until the probe ends.
func (d *downTrack) pad(bps float64, until time.Time) {
	const every = 10 * time.Millisecond
	size := int(bps / 8 / float64(time.Second/every))
	t := time.NewTicker(every)
	defer t.Stop()
	for now := time.Now(); now.Before(until); now = <-t.C {
		for left := size; left > 0; left -= 255 {
			if !d.writePadding(byte(min(left, 255))) {
				return
			}
		}
	}
}

// writePadding sends one padding-only packet in the subscriber's stream:
// the next sequence number, the last timestamp; the media after it moves
// up by one.
func (d *downTrack) writePadding(n byte) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.cur == nil || n == 0 {
		return false
	}
	d.seqOffset++
	d.lastSeq++
	// The padding bytes are the payload, the last one their count (RFC
	// 3550 5.1), so each layer below writes them as they are.
	pad := make([]byte, n)
	pad[n-1] = n
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Padding: true, SequenceNumber: d.lastSeq, Timestamp: d.lastTS}, Payload: pad}
	return d.local.WriteRTP(pkt) == nil
}
