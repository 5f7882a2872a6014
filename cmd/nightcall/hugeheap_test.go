package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

func TestTHPModeIsTheBracketedOne(t *testing.T) {
	for in, want := range map[string]string{
		"always [madvise] never\n": "madvise",
		"[always] madvise never\n": "always",
		"always madvise [never]\n": "never",
		"":                         "",
		"always madvise never":     "",
	} {
		if got := parseTHPMode(in); got != want {
			t.Errorf("parseTHPMode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHugePagesAreAdvisedOnlyWhereTheKernelWaitsForAdvice(t *testing.T) {
	for _, c := range []struct {
		mode, godebug string
		want          bool
	}{
		{"madvise", "", true},
		{"madvise", "madvdontneed=1", true},
		{"madvise", "madvdontneed=1,disablethp=1", false},
		{"madvise", "disablethp=1", false},
		{"always", "", false}, // the kernel gives them anyway
		{"never", "", false},
		{"", "", false},
	} {
		if got := hugeHeapWanted(c.mode, c.godebug); got != c.want {
			t.Errorf("hugeHeapWanted(%q, %q) = %v, want %v", c.mode, c.godebug, got, c.want)
		}
	}
}

// The advice lands on the mapping the kernel keeps for the heap: every
// mapping over the advised range carries VM_HUGEPAGE ("hg" in smaps), and
// none past it was touched.
func TestAHeapGrowthIsAdvisedHugeInWholeHugePages(t *testing.T) {
	b := make([]byte, 64<<20)
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	n := adviseHuge(b).size()
	if n < 60<<20 || n > int64(len(b)) || n%hugePage != 0 {
		t.Fatalf("advised %d bytes of a %d-byte slice: want whole huge pages covering all but its unaligned ends", n, len(b))
	}
	start := addr + (hugePage-addr%hugePage)%hugePage
	covered, err := hugeAdvisedBytes(start, start+uintptr(n))
	if err != nil {
		t.Fatal(err)
	}
	if covered != n {
		t.Fatalf("smaps shows %d of the %d advised bytes with VM_HUGEPAGE", covered, n)
	}
	if adviseHuge(nil).size() != 0 || adviseHuge(make([]byte, 4096)).size() != 0 {
		t.Fatal("a slice holding no whole huge page was advised")
	}
}

// hugeAdvisedBytes is how many bytes of [lo, hi) lie in mappings whose
// VmFlags in /proc/self/smaps include hg (MADV_HUGEPAGE).
func hugeAdvisedBytes(lo, hi uintptr) (int64, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var total int64
	var from, to uintptr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) > 0 && !strings.HasSuffix(fields[0], ":") { // a mapping's first line: "lo-hi perms ..."
			if _, err := fmt.Sscanf(fields[0], "%x-%x", &from, &to); err != nil {
				return 0, fmt.Errorf("smaps: %q: %w", line, err)
			}
			continue
		}
		if flags, ok := strings.CutPrefix(line, "VmFlags:"); ok && from < hi && to > lo {
			for _, fl := range strings.Fields(flags) {
				if fl == "hg" {
					total += int64(min(to, hi) - max(from, lo))
				}
			}
		}
	}
	return total, sc.Err()
}
