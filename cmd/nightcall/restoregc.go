package main

import (
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Collecting while the models are restored and catch up on the tail only
// marks, again and again, a heap that is all live and still growing: at 10M
// events about a third of a restart (nightcall bench --scenario restart). So
// the collector is off from the start of a restore until the models reach
// the log's head, with a memory limit as the backstop: past it the collector
// runs whatever the setting. Past the restore it is back as it was (GOGC and
// GOMEMLIMIT as configured).

// restoreMemoryShare is the share of the machine's memory (or the cgroup's
// limit, when lower) the heap may take while the collector is off.
const restoreMemoryShare = 0.75

// gcPause counts the restores under way in the process (tests run several
// services in one): the first pause keeps the settings, the last resume
// puts them back.
var gcPause struct {
	sync.Mutex
	n              int
	percent, limit int64
}

// pauseGC turns the collector off, with the memory limit bounded, and
// returns the function that turns it back on (safe to call more than once).
// Where no bound on memory is known it changes nothing.
func pauseGC() (resume func()) {
	gcPause.Lock()
	defer gcPause.Unlock()
	if gcPause.n == 0 {
		limit := debug.SetMemoryLimit(-1) // reads it
		bound := limit
		if avail := availableMemory(); avail > 0 {
			bound = min(limit, int64(float64(avail)*restoreMemoryShare))
		}
		if bound == math.MaxInt64 {
			return func() {}
		}
		gcPause.limit = debug.SetMemoryLimit(bound)
		gcPause.percent = int64(debug.SetGCPercent(-1))
	}
	gcPause.n++
	var once sync.Once
	return func() {
		once.Do(func() {
			gcPause.Lock()
			defer gcPause.Unlock()
			if gcPause.n--; gcPause.n == 0 {
				debug.SetGCPercent(int(gcPause.percent))
				debug.SetMemoryLimit(gcPause.limit)
			}
		})
	}
}

// gcPaused reports whether a restore has the collector off.
func gcPaused() bool {
	gcPause.Lock()
	defer gcPause.Unlock()
	return gcPause.n > 0
}

// availableMemory is the machine's physical memory or the cgroup's memory
// limit, the lower; 0 when neither is known.
func availableMemory() int64 {
	var mem int64
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil {
		mem = int64(si.Totalram) * int64(si.Unit) // #nosec G115 -- bytes of RAM fit an int64
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && (mem == 0 || n < mem) {
			mem = n
		}
	}
	return mem
}
