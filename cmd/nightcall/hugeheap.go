package main

import (
	"os"
	"runtime"
	"strings"
	"syscall"
	"unsafe"
)

// Transparent huge pages for the heap a restore is about to fill.
//
// A fresh process restoring the models touches memory it has never touched:
// at 10M events some 5.4 GiB. On a VM a page fault is costly (here, nested
// paging and a host that takes freed memory back): touching 1 GiB of fresh
// memory a 4 KiB page at a time took 2.5-3.8 s on this machine, and 0.55 s
// in 2 MiB pages, 512 times fewer faults. Nearly all of a service restart
// was those faults.
//
// Linux gives huge pages to anonymous memory when the system is set to
// "always", or, set to "madvise" (Debian's and Ubuntu's default), to memory
// advised MADV_HUGEPAGE, which the Go runtime no longer does for its heap
// (since Go 1.21.1). So before a restore, where the kernel is set to
// "madvise", growHugeHeap grows the heap by one allocation of about what the
// restore will take, advises that range MADV_HUGEPAGE, and lets it go: the
// collection the restore runs before its decode (restoreFrom) frees it, and
// the models are then built in it, the collector being off meanwhile
// (restoregc.go). The service's restart at 10M events: paging after 5.85 s
// against 7.42 s, ready after 11.7 s against 16.0 s (medians of three each,
// interleaved, docs/bench/service-restart-10m-2026-12-03-amd-hugepages.txt).
//
// GODEBUG=disablethp=1, the runtime's own switch for huge pages on the
// heap, turns it off here too.

// hugePage is the size of a transparent huge page on amd64 and arm64 (4 KiB
// base pages).
const hugePage = 2 << 20

// thpModeFile holds the kernel's transparent huge page mode, the one in
// brackets: "always [madvise] never".
const thpModeFile = "/sys/kernel/mm/transparent_hugepage/enabled"

// thpMode is the kernel's transparent huge page mode ("always", "madvise",
// "never"), or "" where it cannot be read.
func thpMode() string {
	b, err := os.ReadFile(thpModeFile)
	if err != nil {
		return ""
	}
	return parseTHPMode(string(b))
}

// parseTHPMode reads the bracketed mode of thpModeFile's text.
func parseTHPMode(s string) string {
	for _, f := range strings.Fields(s) {
		if len(f) > 2 && f[0] == '[' && f[len(f)-1] == ']' {
			return f[1 : len(f)-1]
		}
	}
	return ""
}

// hugeHeapWanted reports whether growHugeHeap should advise: only where the
// kernel gives huge pages to advised memory alone, and the runtime's
// huge pages are not switched off.
func hugeHeapWanted(mode, godebug string) bool {
	for _, kv := range strings.Split(godebug, ",") {
		if strings.TrimSpace(kv) == "disablethp=1" {
			return false
		}
	}
	return mode == "madvise"
}

// hugeRange is a range of the heap advised MADV_HUGEPAGE: whole huge pages,
// held by no Go value once the allocation that made it is collected.
type hugeRange struct{ lo, hi uintptr }

func (r hugeRange) size() int64 { return int64(r.hi - r.lo) } // #nosec G115 -- a range of one allocation fits an int64

// growHugeHeap grows the heap by about n bytes advised MADV_HUGEPAGE (where
// hugeHeapWanted) and returns the range advised, empty when none was. The
// allocation is garbage on return: it is the caller's next collection that
// hands its pages back for the restore to use.
func growHugeHeap(n int64) hugeRange {
	if n < 4*hugePage || !hugeHeapWanted(thpMode(), os.Getenv("GODEBUG")) {
		return hugeRange{}
	}
	return adviseHuge(make([]byte, n))
}

// adviseHuge advises the whole 2 MiB pages inside b MADV_HUGEPAGE and
// returns their range (empty if there is none, or the call failed). b is
// fresh from a heap growth and untouched, so none of it is faulted in yet.
func adviseHuge(b []byte) hugeRange {
	if len(b) == 0 {
		return hugeRange{}
	}
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(b))) // #nosec G103 -- the address only, to align the advice to huge pages
	lo := (addr + hugePage - 1) &^ (hugePage - 1)        // the first huge page's start
	hi := (addr + uintptr(len(b))) &^ (hugePage - 1)     // the last one's end
	if hi <= lo {
		return hugeRange{}
	}
	err := syscall.Madvise(b[lo-addr:hi-addr], syscall.MADV_HUGEPAGE)
	runtime.KeepAlive(b)
	if err != nil {
		return hugeRange{}
	}
	return hugeRange{lo, hi}
}

// restoreHeapPerSnapshotByte is the heap both models take, restored, per
// byte of the read model's snapshot (the one loaded first): 5.4 GiB for a
// 216 MB snapshot at 10M events.
const restoreHeapPerSnapshotByte = 25

// restoreHeapEstimate is the heap to advise before a restore whose read
// model snapshot is snapBytes long: about what both models will take, and
// never more than a quarter of the memory there is. More than the models
// take costs memory the runtime gives back later, not time.
func restoreHeapEstimate(snapBytes int) int64 {
	n := int64(snapBytes) * restoreHeapPerSnapshotByte
	if avail := availableMemory(); avail > 0 {
		n = min(n, avail/4)
	}
	return n
}
