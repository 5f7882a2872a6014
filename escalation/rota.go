package escalation

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Rota events, on stream "rota". Who was on call at any instant can be
// recomputed from them, so the rota is auditable.
const (
	TypeRotaShiftSet        = "rota.shift_set"
	TypeRotaShiftRemoved    = "rota.shift_removed"
	TypeRotaOverrideSet     = "rota.override_set"
	TypeRotaOverrideRemoved = "rota.override_removed"
)

// Shift is a weekly recurring period of cover with ordered levels. It starts
// on each of Days at Start (local time in the rota's zone) and ends at End,
// EndDayOffset days later (default: the same day when End is after Start,
// else the next day).
type Shift struct {
	ID           string       `json:"id"`
	Name         string       `json:"name"`
	Days         []string     `json:"days"`  // mon … sun: the days a shift starts on
	Start        string       `json:"start"` // HH:MM
	End          string       `json:"end"`   // HH:MM
	EndDayOffset *int         `json:"end_day_offset,omitempty"`
	Levels       [][]Username `json:"levels"`
}

// Override has By cover Covered's place on the rota for [From, To).
type Override struct {
	ID      string    `json:"id"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Covered Username  `json:"covered"`
	By      Username  `json:"by"`
}

// RotaShiftSet: a shift was created or replaced.
type RotaShiftSet struct {
	Shift Shift `json:"shift"`
}

// RotaShiftRemoved: a shift was removed.
type RotaShiftRemoved struct {
	ShiftID string `json:"shift_id"`
}

// RotaOverrideSet: an override was added.
type RotaOverrideSet struct {
	Override Override `json:"override"`
}

// RotaOverrideRemoved: an override was removed.
type RotaOverrideRemoved struct {
	OverrideID string `json:"override_id"`
}

func (RotaShiftSet) EventType() string        { return TypeRotaShiftSet }
func (RotaShiftRemoved) EventType() string    { return TypeRotaShiftRemoved }
func (RotaOverrideSet) EventType() string     { return TypeRotaOverrideSet }
func (RotaOverrideRemoved) EventType() string { return TypeRotaOverrideRemoved }

func init() {
	register(
		func() Event { return &RotaShiftSet{} },
		func() Event { return &RotaShiftRemoved{} },
		func() Event { return &RotaOverrideSet{} },
		func() Event { return &RotaOverrideRemoved{} },
	)
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func parseClock(s string) (int, int, error) {
	var h, m int
	if _, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil || len(s) != 5 || h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, 0, fmt.Errorf("%q is not a time HH:MM", s)
	}
	return h, m, nil
}

// Validate checks a shift, naming the field at fault.
func (s Shift) Validate() error {
	switch {
	case strings.TrimSpace(s.ID) == "":
		return inputErr(KindMissingField, "id", "a shift needs an id")
	case len(s.Days) == 0:
		return inputErr(KindMissingField, "days", "give the days the shift starts on (mon … sun)")
	case len(s.Levels) == 0:
		return inputErr(KindMissingField, "levels", "give at least one level of consultants")
	}
	for i, d := range s.Days {
		if _, ok := weekdays[d]; !ok {
			return inputErr(KindInvalidValue, fmt.Sprintf("days[%d]", i), "%q is not one of mon, tue, wed, thu, fri, sat, sun", d)
		}
	}
	if _, _, err := parseClock(s.Start); err != nil {
		return inputErr(KindInvalidValue, "start", "%v", err)
	}
	if _, _, err := parseClock(s.End); err != nil {
		return inputErr(KindInvalidValue, "end", "%v", err)
	}
	if s.EndDayOffset != nil && (*s.EndDayOffset < 0 || *s.EndDayOffset > 7) {
		return inputErr(KindInvalidValue, "end_day_offset", "must be 0 to 7")
	}
	for i, l := range s.Levels {
		if len(l) == 0 {
			return inputErr(KindInvalidValue, fmt.Sprintf("levels[%d]", i), "a level needs at least one consultant")
		}
	}
	return nil
}

// occurrence returns the shift's period starting on the local date of day.
func (s Shift) occurrence(day time.Time, loc *time.Location) (time.Time, time.Time) {
	sh, sm, _ := parseClock(s.Start)
	eh, em, _ := parseClock(s.End)
	y, mo, d := day.Date()
	start := time.Date(y, mo, d, sh, sm, 0, 0, loc)
	offset := 0
	if s.EndDayOffset != nil {
		offset = *s.EndDayOffset
	} else if eh*60+em <= sh*60+sm {
		offset = 1
	}
	end := time.Date(y, mo, d+offset, eh, em, 0, 0, loc)
	return start, end
}

// activeAt reports whether the shift covers instant t.
func (s Shift) activeAt(t time.Time, loc *time.Location) bool {
	local := t.In(loc)
	y, mo, d := local.Date()
	// An occurrence can start up to 8 days before t (end_day_offset ≤ 7).
	for back := 0; back <= 8; back++ {
		day := time.Date(y, mo, d-back, 12, 0, 0, 0, loc)
		if !slices.ContainsFunc(s.Days, func(name string) bool { return weekdays[name] == day.Weekday() }) {
			continue
		}
		start, end := s.occurrence(day, loc)
		if !t.Before(start) && t.Before(end) {
			return true
		}
	}
	return false
}

// Rota is the on-call schedule: standing levels (always on call), weekly
// shifts and overrides.
type Rota struct {
	Standing  [][]Username `json:"standing"`
	Shifts    []Shift      `json:"shifts"`
	Overrides []Override   `json:"overrides"`
}

func (r *Rota) apply(ev Event) {
	switch e := ev.(type) {
	case *RotaLevelsSet:
		r.Standing = e.Levels
	case *RotaShiftSet:
		r.Shifts = slices.DeleteFunc(r.Shifts, func(s Shift) bool { return s.ID == e.Shift.ID })
		r.Shifts = append(r.Shifts, e.Shift)
	case *RotaShiftRemoved:
		r.Shifts = slices.DeleteFunc(r.Shifts, func(s Shift) bool { return s.ID == e.ShiftID })
	case *RotaOverrideSet:
		r.Overrides = append(r.Overrides, e.Override)
	case *RotaOverrideRemoved:
		r.Overrides = slices.DeleteFunc(r.Overrides, func(o Override) bool { return o.ID == e.OverrideID })
	}
}

// LevelsAt returns who is on call at t, level by level: standing levels and
// every active shift merged by level, with overrides applied. A consultant
// appears once, at their highest (first) level.
func (r *Rota) LevelsAt(t time.Time, loc *time.Location) [][]Username {
	var levels [][]Username
	add := func(ls [][]Username) {
		for i, l := range ls {
			for len(levels) <= i {
				levels = append(levels, nil)
			}
			levels[i] = append(levels[i], l...)
		}
	}
	add(r.Standing)
	for _, s := range r.Shifts {
		if s.activeAt(t, loc) {
			add(s.Levels)
		}
	}
	seen := map[Username]bool{}
	out := make([][]Username, 0, len(levels))
	for _, l := range levels {
		var level []Username
		for _, u := range l {
			for _, o := range r.Overrides {
				if o.Covered == u && !t.Before(o.From) && t.Before(o.To) {
					u = o.By
				}
			}
			if !seen[u] {
				seen[u] = true
				level = append(level, u)
			}
		}
		if len(level) > 0 {
			out = append(out, level)
		}
	}
	return out
}

// clone returns a copy of r that shares nothing with it.
func (r *Rota) clone() Rota {
	c := Rota{Standing: cloneLevels(r.Standing), Shifts: slices.Clone(r.Shifts), Overrides: slices.Clone(r.Overrides)}
	for i, sh := range c.Shifts {
		c.Shifts[i].Days = slices.Clone(sh.Days)
		c.Shifts[i].EndDayOffset = clonePtr(sh.EndDayOffset)
		c.Shifts[i].Levels = cloneLevels(sh.Levels)
	}
	return c
}

// cloneLevels copies rota levels, each level included.
func cloneLevels(levels [][]Username) [][]Username {
	if levels == nil {
		return nil
	}
	out := make([][]Username, len(levels))
	for i, l := range levels {
		out[i] = slices.Clone(l)
	}
	return out
}
