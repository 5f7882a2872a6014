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
// moment at the rate that layer needs, and reads the subscriber's
// transport-wide feedback: without loss, the probed rate counts as
// its estimate (a floor that holds while the subscriber loses nothing);
// with loss, the next probe waits twice as long. Probes are padding
// only: the video stays on its layer during one.
const (
	probeFor       = 1500 * time.Millisecond
	probeSettle    = 500 * time.Millisecond // feedback to wait for after a probe
	probeFirst     = 3 * time.Second        // clean time before a probe
	probeBackoff   = 5 * time.Second
	probeMaxWait   = 40 * time.Second
	probeLossOK    = 0.02
	floorLossLimit = 0.05
	floorHold      = 8 * time.Second
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
			lost += uint64(n)
		} else {
			recv += uint64(n)
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
// congestion controller's estimate: a floor gives way as soon as that
// estimate falls (its delay signal comes before any loss).
func (dl *downlink) tick(now time.Time, gcc float64) float64 {
	recv, lost := dl.recv.Load(), dl.lost.Load()
	dl.mu.Lock()
	defer dl.mu.Unlock()
	falling := gcc < 0.95*dl.lastGCC
	dl.lastGCC = gcc
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
			dl.floor, dl.floorUntil = dl.probeRate, now.Add(floorHold)
			dl.backoff = probeBackoff
			dl.nextProbe = now.Add(time.Second)
			dl.probesOK++
		} else {
			dl.backoff = min(2*dl.backoff, probeMaxWait)
			dl.nextProbe = now.Add(dl.backoff)
		}
	}
	switch {
	case loss > floorLossLimit || falling:
		dl.floor = 0
	case dl.floor > 0 && loss <= probeLossOK && !dl.probing:
		dl.floorUntil = now.Add(floorHold) // it holds while nothing is lost
	}
	if now.After(dl.floorUntil) {
		dl.floor = 0
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
