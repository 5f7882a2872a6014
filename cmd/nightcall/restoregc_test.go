package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// The collector is off while any restore is under way, the memory limit
// bounded meanwhile, and both are as they were once the last one resumes,
// however the pauses interleave.
func TestPauseGCRestoresTheSettings(t *testing.T) {
	if availableMemory() <= 0 {
		t.Fatal("no memory size known on this machine: pauseGC would do nothing")
	}
	before := debug.SetGCPercent(73)
	defer debug.SetGCPercent(before)
	percent := func() int { p := debug.SetGCPercent(0); debug.SetGCPercent(p); return p }
	limit := func() int64 { return debug.SetMemoryLimit(-1) }
	limitBefore := limit()

	first := pauseGC()
	if p := percent(); p != -1 {
		t.Fatalf("GC percent %d during a restore, want off (-1)", p)
	}
	if l := limit(); l >= limitBefore && limitBefore == math.MaxInt64 {
		t.Fatalf("memory limit %d during a restore: not bounded", l)
	}
	second := pauseGC()
	first()
	first() // twice changes nothing
	if p := percent(); p != -1 {
		t.Fatalf("GC percent %d with one restore still under way, want off", p)
	}
	second()
	if p, l := percent(), limit(); p != 73 || l != limitBefore {
		t.Fatalf("after both resumed: GC percent %d, limit %d; want 73, %d", p, l, limitBefore)
	}
}
