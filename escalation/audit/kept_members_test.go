package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events"
)

// A snapshot carries each escalation's member in the first kept index; a
// restore into the same zone and window places them without judging them,
// and ends with the very index that judging every escalation afresh builds
// (every bucket, chunk, member, version, sum and place), so its figures
// equal a full scan's. Escalations changed since the index took them (taken
// part-way through a replay, so some are) and those the scan judges are
// judged again; an index of another zone or window judges all.
func TestRestoredMembersBuildTheJudgedIndex(t *testing.T) {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	used, judgedAgain := 0, 0
	for seed := uint64(1); seed <= 12; seed++ {
		rng := rand.New(rand.NewPCG(seed, 11))
		log := genLog(rng, 200+rng.IntN(400))
		m := NewModel()
		m.Keep(loc, 72*time.Hour)
		m.Keep(time.UTC, 24*time.Hour)
		// A query (which flushes) and then a few more events: some
		// escalations are changed since the index took them.
		cut := len(log) - 1 - rng.IntN(20)
		for i, e := range log {
			if i == cut {
				m.Figures(Query{Window: 72 * time.Hour, WindowText: "72h", AsOf: time.Unix(4e9, 0), Location: loc})
			}
			if err := m.Apply(e); err != nil {
				t.Fatal(err)
			}
		}
		_, data, err := m.MarshalState()
		if err != nil {
			t.Fatal(err)
		}
		back := NewModel()
		back.Keep(loc, 72*time.Hour)
		back.Keep(time.UTC, 24*time.Hour)
		if err := back.RestoreState(data); err != nil {
			t.Fatal(err)
		}

		// The same snapshot, every escalation judged afresh.
		st, list, restored, err := decodeStateList(data)
		if err != nil {
			t.Fatal(err)
		}
		if restored.zone != loc.String() || restored.window != 72*time.Hour {
			t.Fatalf("the snapshot carries the members of %s %v, not the first kept index", restored.zone, restored.window)
		}
		fresh := NewModel()
		fresh.escalations, fresh.order, fresh.admissions, fresh.deaths = st.Escalations, st.Order, st.Admissions, st.Deaths
		judgedIx := &index{loc: loc, window: 72 * time.Hour, buckets: map[bucketKey]*bucket{}, homes: map[escalation.CareHomeID][]*bucket{}}
		if n := judgedIx.build(fresh, list, nil); n != len(list) {
			t.Fatalf("without members %d of %d judged", n, len(list))
		}
		withIx := &index{loc: loc, window: 72 * time.Hour, buckets: map[bucketKey]*bucket{}, homes: map[escalation.CareHomeID][]*bucket{}}
		n := withIx.build(fresh, list, restored.members)
		used += len(list) - n
		judgedAgain += n
		if !reflect.DeepEqual(withIx, judgedIx) {
			diffIndexes(t, withIx, judgedIx)
			t.Fatalf("seed %d: the index placed from the snapshot's members differs from one judged afresh", seed)
		}
		for _, q := range []Query{
			{Window: 72 * time.Hour, WindowText: "72h", AsOf: time.Unix(4e9, 0), Location: loc},
			{Window: 24 * time.Hour, WindowText: "24h", AsOf: spring.Add(40 * 24 * time.Hour), Location: time.UTC},
		} {
			g, _ := json.Marshal(back.Figures(q))
			w, _ := json.Marshal(back.FiguresByScan(q))
			o, _ := json.Marshal(m.Figures(q))
			if !bytes.Equal(g, w) || !bytes.Equal(g, o) {
				t.Fatalf("seed %d, %v: restored %s, scan %s, the model snapshotted %s", seed, q.Location, g, w, o)
			}
		}
	}
	if used < 4*judgedAgain {
		t.Fatalf("%d escalations placed from the snapshot's members, %d judged again: the members were hardly used", used, judgedAgain)
	}
	if judgedAgain == 0 {
		t.Fatal("no escalation was judged again: none was dirty or scanned, so that path went untested")
	}
}

// A kept member that could not have been judged (versions out of order, a
// code the figures do not know, more versions than a member holds) is
// ErrStateCorrupt; every byte of a snapshot with members changed decodes to
// a state or ErrStateCorrupt, never a panic, and a model restored from one
// that decodes still answers.
func TestDamagedKeptMembersAreCorrupt(t *testing.T) {
	loc, _ := time.LoadLocation("Europe/London")
	m := NewModel()
	m.Keep(loc, 72*time.Hour)
	for _, e := range genLog(rand.New(rand.NewPCG(5, 5)), 60) {
		if err := m.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	m.mu.Lock()
	m.flush()
	m.mu.Unlock()
	_, data, err := m.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, kept, err := decodeStateList(data); err != nil || countKept(kept) == 0 {
		t.Fatalf("the snapshot carries %d members: %v", countKept(kept), err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	q := Query{Window: 72 * time.Hour, WindowText: "72h", AsOf: time.Unix(4e9, 0), Location: loc}
	for i := range 4000 {
		bad := bytes.Clone(data)
		bad[i%len(bad)] ^= byte(1 + rng.IntN(255))
		back := NewModel()
		back.Keep(loc, 72*time.Hour)
		if err := back.RestoreState(bad); err != nil {
			if !errors.Is(err, events.ErrStateCorrupt) {
				t.Fatalf("byte %d changed: %v", i%len(bad), err)
			}
			continue
		}
		_ = back.Figures(q)
	}
	w := events.NewStateWriter(64)
	e := &Escalation{RaisedAt: spring}
	for name, write := range map[string]func(){
		"versions out of order": func() {
			w.Uvarint(2)
			w.Varint(0)
			w.Varint(0)
			w.Uvarint(0)
			w.Varint(-5)
			w.Uvarint(0)
			w.Uvarint(0)
		},
		"an unknown code": func() { w.Uvarint(1); w.Varint(0); w.Varint(0); w.Uvarint(uint64(len(stayCodes)) << codeStayShift) },
		"seven versions":  func() { w.Uvarint(maxVersions + 1) },
	} {
		w = events.NewStateWriter(64)
		write()
		d := &stateDecoder{r: events.NewStateReader(w.Bytes())}
		var mb member
		d.member(e, &mb)
		if err := d.r.Finish(); !errors.Is(err, events.ErrStateCorrupt) {
			t.Errorf("%s: %v, want ErrStateCorrupt", name, err)
		}
	}
}

func countKept(k restoredMembers) (n int) {
	for _, mb := range k.members {
		if mb != nil {
			n++
		}
	}
	return n
}

func diffIndexes(t *testing.T, a, b *index) {
	t.Helper()
	if len(a.list) != len(b.list) {
		t.Logf("%d buckets, %d", len(a.list), len(b.list))
		return
	}
	for i := range a.list {
		x, y := a.list[i], b.list[i]
		if x.key != y.key {
			t.Logf("bucket %d key %+v, %+v", i, x.key, y.key)
			return
		}
		if !reflect.DeepEqual(x.sums, y.sums) {
			t.Logf("bucket %d sums\n%+v\n%+v", i, x.sums, y.sums)
		}
		for d := range x.days {
			if !reflect.DeepEqual(x.days[d], y.days[d]) {
				if x.days[d] == nil || y.days[d] == nil {
					t.Logf("bucket %d day %d nil", i, d)
					continue
				}
				for k := range x.days[d].members {
					mx, my := x.days[d].members[k], y.days[d].members[k]
					if !reflect.DeepEqual(mx, my) {
						t.Logf("bucket %d day %d member %d\n%+v\n%+v", i, d, k, mx, my)
						return
					}
				}
				t.Logf("bucket %d day %d sums\n%+v\n%+v", i, d, x.days[d].sums, y.days[d].sums)
			}
		}
	}
}
