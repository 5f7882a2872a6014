package video

import (
	"testing"
	"time"
)

// feed counts recv packets received and lost lost in dl's feedback.
func feed(dl *downlink, recv, lost uint64) {
	dl.recv.Add(recv)
	dl.lost.Add(lost)
}

// TestDownlinkFloorRidesOutOneDelayDip: one cut of the congestion
// controller's estimate with nothing lost is held at the estimate before
// it while the controller climbs back; repeated cuts (a queue building up),
// an estimate that stays down, or loss let the estimate fall.
func TestDownlinkFloorRidesOutOneDelayDip(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * adaptEvery) }
	effective := func(dl *downlink, i int, gcc float64) float64 {
		feed(dl, 100, 0)
		return max(gcc, dl.tick(at(i), gcc))
	}

	t.Run("one dip without loss", func(t *testing.T) {
		dl := &downlink{}
		for i := range 4 {
			effective(dl, i, 2_000_000)
		}
		if got := effective(dl, 4, 1_000_000); got != 2_000_000 {
			t.Fatalf("after one cut with nothing lost the estimate is %.0f, want the 2,000,000 before it", got)
		}
		// The controller climbs back: the floor holds until it is passed.
		for i, gcc := range []float64{1_080_000, 1_170_000, 1_260_000, 1_360_000} {
			if got := effective(dl, 5+i, gcc); got != 2_000_000 {
				t.Fatalf("climbing back at %.0f the estimate is %.0f, want 2,000,000", gcc, got)
			}
		}
		if got := effective(dl, 9, 2_100_000); got != 2_100_000 || dl.floor != 0 {
			t.Fatalf("past the floor the estimate is %.0f (floor %.0f), want the controller's 2,100,000 and no floor", got, dl.floor)
		}
		if dl.dips != 1 {
			t.Fatalf("dips = %d, want 1", dl.dips)
		}
	})

	t.Run("repeated cuts are congestion", func(t *testing.T) {
		dl := &downlink{}
		for i := range 4 {
			effective(dl, i, 2_000_000)
		}
		effective(dl, 4, 1_600_000)
		effective(dl, 5, 1_300_000)
		if got := effective(dl, 6, 1_000_000); got != 1_000_000 {
			t.Fatalf("after three cuts in %s the estimate is %.0f, want the controller's 1,000,000", 3*adaptEvery, got)
		}
		if got := effective(dl, 7, 1_050_000); got != 1_050_000 {
			t.Fatalf("after congestion the estimate is %.0f, want the controller's 1,050,000", got)
		}
	})

	t.Run("an estimate that stays down", func(t *testing.T) {
		dl := &downlink{}
		for i := range 4 {
			effective(dl, i, 2_000_000)
		}
		effective(dl, 4, 1_000_000)
		got := []float64{effective(dl, 5, 1_000_000), effective(dl, 6, 1_000_000), effective(dl, 7, 1_000_000)}
		if got[0] != 2_000_000 || got[1] != 1_000_000 || got[2] != 1_000_000 {
			t.Fatalf("with the controller flat at 1,000,000 after a cut the estimate went %v, want 2,000,000 for one tick then 1,000,000", got)
		}
	})

	t.Run("loss", func(t *testing.T) {
		dl := &downlink{}
		for i := range 4 {
			effective(dl, i, 2_000_000)
		}
		feed(dl, 80, 20)
		if got := max(1_000_000, dl.tick(at(4), 1_000_000)); got != 1_000_000 {
			t.Fatalf("a cut with 20%% loss leaves the estimate at %.0f, want the controller's 1,000,000", got)
		}
	})

	t.Run("cuts far apart are each a dip", func(t *testing.T) {
		dl := &downlink{}
		i := 0
		for range 3 {
			for range 2 * int(congestionWindow/adaptEvery) {
				effective(dl, i, 2_000_000)
				i++
			}
			if got := effective(dl, i, 1_000_000); got != 2_000_000 {
				t.Fatalf("a lone cut at tick %d leaves the estimate at %.0f, want 2,000,000", i, got)
			}
			i++
		}
	})
}
