package escalation

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/events"
)

// scribble changes every value reachable from v through pointers, slices and
// maps: whatever a caller could write through a view it was handed.
func scribble(v reflect.Value) {
	if v.Type() == reflect.TypeFor[time.Time]() {
		if v.CanSet() {
			v.Set(reflect.ValueOf(time.Unix(1, 0).UTC()))
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			scribble(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() {
				scribble(f)
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			scribble(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			scribble(e)
			v.SetMapIndex(k, e)
		}
	case reflect.String:
		v.SetString(v.String() + "!")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() + 1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(v.Float() + 1)
	}
}

// busyResident is a resident with every kind of state a view holds: a
// baseline, plan, allergies, scale, series, admission, and escalations
// decided (with a follow-up), called, photographed and open.
func busyResident(t *testing.T) *Resident {
	t.Helper()
	plan := AdvanceCarePlan{Focus: FocusExtendLife, HospitalAdmission: AdmissionWanted, CPR: CPRAttempt, Summary: "s"}
	set := t0.Add(-time.Hour)
	r, err := NewResident(ResidentInput{ID: "r1", CareHomeID: "h1", Name: "Test", DateOfBirth: "1940-01-02", NHSNumber: "9990000018",
		SpO2Scale: news2.Scale2, SpO2ScaleSetBy: "Dr A", SpO2ScaleSetAt: &set, Baseline: &Baseline{NEWS2Total: 1, Notes: "n"},
		AdvanceCarePlan: &plan, Allergies: []string{"penicillin"}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	o := obs(95, true)
	o.Absent = map[string]AbsentReason{"x": "refused"}
	if _, err := r.RecordObservations(*o, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Raise("e1", o, []SoftSign{"breathless"}, SBARD{Situation: "s"}, staff, t0); err != nil {
		t.Fatal(err)
	}
	r.record(&Paged{EscalationID: "e1", PageID: "p1", Level: 1, Consultants: []Username{"a"}}, t0) // the read model's paging, here for its delivery
	must(t, r.Accept("e1", drA, t0.Add(time.Minute)))
	r.record(&CallStarted{EscalationID: "e1", CallID: "c1"}, t0.Add(2*time.Minute))
	r.record(&CallParticipantJoined{CallParticipant{EscalationID: "e1", CallID: "c1", Role: CallRoleConsultant}}, t0.Add(2*time.Minute))
	r.record(&SnapshotTaken{EscalationID: "e1", SnapshotID: "s1", ContentType: ImagePNG, Bytes: 3, Width: 1, Height: 1, SHA256: "h", Stream: "snapshot-s1", Parts: 1, TakenBy: "a"}, t0.Add(3*time.Minute))
	must(t, r.Decide("e1", DecisionInput{Outcome: OutcomeStay, Counterfactual: CounterfactualED, Rationale: "r", Plan: "p"}, drA, t0.Add(4*time.Minute)))
	must(t, r.FollowUp("e1", FollowUpAtHome, t0.Add(5*time.Minute), t0.Add(5*time.Minute)))
	must(t, r.RecordHospitalAdmission(HospitalAdmissionRecorded{At: t0, Kind: AdmissionKindAdmission, Reason: "r"}, t0.Add(6*time.Minute)))
	if _, err := r.Raise("e2", nil, []SoftSign{"breathless"}, SBARD{Situation: "s"}, staff, t0.Add(7*time.Minute)); err != nil {
		t.Fatal(err)
	}
	must(t, r.Accept("e2", drA, t0.Add(8*time.Minute)))
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// streamOf is r's recorded events as the global log would hold them, paging
// events on their own stream as the pager appends them.
func streamOf(t *testing.T, r *Resident) []events.Envelope {
	t.Helper()
	var envs []events.Envelope
	for i, p := range r.pending {
		data, err := marshal(p.event)
		must(t, err)
		stream := ResidentStream("r1")
		if _, paging := p.event.(*Paged); paging {
			stream = PagingStream("e1")
		}
		envs = append(envs, events.Envelope{ID: string(rune('a' + i)), Stream: stream, Version: int64(i + 1), Position: int64(i + 1),
			Type: p.event.EventType(), RecordedAt: p.at, Data: data})
	}
	return envs
}

// TestNoPointerIntoTheAggregateOrTheReadModelEscapes: every value handed out
// by the resident aggregate (View, Escalation, OpenEscalation, a command's
// result) and by the read model (Resident, Residents, Escalations, a view's
// Escalation) is a copy: writing through everything reachable from it
// changes neither the aggregate nor the read model. The check is shown to
// catch sharing: scribbling on a shallow copy of the state is caught.
func TestNoPointerIntoTheAggregateOrTheReadModelEscapes(t *testing.T) {
	r := busyResident(t)
	want := r.View()
	if len(want.Escalations) != 2 || want.Escalations[0].Delivery.Pages == nil || len(want.Escalations[0].Snapshots) != 1 ||
		want.Escalations[0].Decision == nil || len(want.Observations) != 2 || len(want.Admissions) != 1 || want.SpO2ScaleSetAt == nil {
		t.Fatalf("the fixture lacks state to share: %+v", want)
	}
	v := r.View()
	scribble(reflect.ValueOf(&v))
	if reflect.DeepEqual(v, want) {
		t.Fatal("scribble changed nothing")
	}
	scribble(reflect.ValueOf(r.Escalation("e1")))
	scribble(reflect.ValueOf(r.OpenEscalation()))
	rec, err := r.RecordObservations(*obs(96, false), t0.Add(9*time.Minute))
	must(t, err)
	scribble(reflect.ValueOf(&rec))
	want = r.View() // now with the new set, which rec was a copy of
	scribble(reflect.ValueOf(&rec))
	if got := r.View(); !reflect.DeepEqual(got, want) {
		t.Fatalf("writing through what the aggregate handed out changed it:\n got %+v\nwant %+v", got, want)
	}

	p := NewProjection(time.UTC)
	for _, env := range streamOf(t, r) {
		must(t, p.Apply(env))
	}
	before, err := p.Digest()
	must(t, err)
	wantView := p.Resident("r1")
	if wantView == nil || len(wantView.Escalations) != 2 || wantView.Escalations[0].Delivery.Pages == nil {
		t.Fatalf("read model: %+v", wantView)
	}
	scribble(reflect.ValueOf(p.Resident("r1")))
	scribble(reflect.ValueOf(p.Residents()))
	scribble(reflect.ValueOf(p.Escalations()))
	scribble(reflect.ValueOf(p.EscalationsWhere(Selection{}, func(*EscalationView) bool { return true })))
	scribble(reflect.ValueOf(p.EscalationsWhere(Selection{Open: true, Home: "h1"}, func(*EscalationView) bool { return true })))
	scribble(reflect.ValueOf(p.ResidentsWhere(Selection{Home: "h1"}, func(*ResidentView) bool { return true })))
	scribble(reflect.ValueOf(p.Resident("r1").Escalation("e1")))
	if after, _ := p.Digest(); after != before || !reflect.DeepEqual(p.Resident("r1"), wantView) {
		t.Fatalf("writing through what the read model handed out changed it: %+v", p.Resident("r1"))
	}

	// The check catches sharing: a shallow copy shares the state's pointers.
	shared := busyResident(t)
	wantShared := shared.View()
	shallow := shared.state
	scribble(reflect.ValueOf(&shallow))
	if reflect.DeepEqual(shared.View(), wantShared) {
		t.Fatal("a shallow copy was scribbled on and the check saw no change")
	}
}

// TestResidentIsValidFromItsConstructors: NewResident refuses an invalid
// admission, and Rehydrate a stream that does not open with one.
func TestResidentIsValidFromItsConstructors(t *testing.T) {
	if _, err := NewResident(ResidentInput{ID: "r1", CareHomeID: "h1", Name: "Test", DateOfBirth: "1940-01-02", NHSNumber: "123"}, t0); err == nil {
		t.Error("an invalid NHS number was admitted")
	}
	r, err := NewResident(ResidentInput{ID: "r1", CareHomeID: "h1", Name: "Test", DateOfBirth: "1940-01-02", NHSNumber: "999 000 0018"}, t0)
	if err != nil || r.ID() != "r1" || r.CareHomeID() != "h1" || !r.Active() || r.Version() != 1 || r.View().NHSNumber != "9990000018" {
		t.Fatalf("admitted: %v %+v", err, r)
	}
	admitted, _ := marshal(&ResidentAdmitted{ResidentID: "r1", CareHomeID: "h1"})
	moved, _ := marshal(&ResidentMoved{From: "h1", To: "h2"})
	for _, envs := range [][]events.Envelope{
		nil,
		{{Version: 1, Type: TypeResidentMoved, Data: moved}},
		{{Version: 1, Type: TypeResidentAdmitted, Data: []byte(`{"care_home_id":"h1"}`)}},
	} {
		if _, err := Rehydrate(envs); !errors.Is(err, ErrNotAResidentStream) {
			t.Errorf("rehydrate %v: %v", envs, err)
		}
	}
	r, err = Rehydrate([]events.Envelope{{Version: 1, Type: TypeResidentAdmitted, Data: admitted}, {Version: 2, Type: TypeResidentMoved, Data: moved}})
	if err != nil || r.CareHomeID() != "h2" || r.Version() != 2 {
		t.Fatalf("rehydrated: %v %+v", err, r)
	}
}
