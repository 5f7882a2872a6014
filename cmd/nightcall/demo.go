package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/account"
	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/argon2id"
)

// The demo data of API.md. Names and NHS numbers are fictitious (999 is the
// NHS test range).
var demoHomes = []escalation.CareHome{
	{ID: "rose-court", Name: "Rose Court", FallbackPhone: "+44 1632 960001"},
	{ID: "elm-house", Name: "Elm House", FallbackPhone: "+44 1632 960002"},
}

type demoResident struct {
	admitted escalation.ResidentAdmitted
	baseline escalation.Baseline
	plan     escalation.AdvanceCarePlan
}

var demoResidents = []demoResident{
	{escalation.ResidentAdmitted{ResidentID: "rc-101", CareHomeID: "rose-court", Name: "Margaret Ellis", DateOfBirth: "1938-04-12", Room: "3", NHSNumber: "9990000018", SpO2Scale: news2.Scale1},
		escalation.Baseline{NEWS2Total: 1, Notes: "Mild dementia, long-standing; walks with a frame."},
		escalation.AdvanceCarePlan{HasRespectForm: true, Focus: "balance", HospitalAdmission: "discuss", CPR: "do_not_attempt",
			Summary: "Would want treatment for reversible causes; avoid hospital if it can be managed at home.", RecordedAt: "2026-03-02", ReviewDue: "2027-03-02"}},
	{escalation.ResidentAdmitted{ResidentID: "rc-102", CareHomeID: "rose-court", Name: "Arthur Penrose", DateOfBirth: "1941-09-30", Room: "7", NHSNumber: "9990000085", SpO2Scale: news2.Scale1},
		escalation.Baseline{NEWS2Total: 0, Notes: "Independent, alert, heart failure on diuretics."},
		escalation.AdvanceCarePlan{HasRespectForm: true, Focus: "extend_life", HospitalAdmission: "wanted", CPR: "attempt",
			Summary: "Wants all appropriate treatment including hospital.", RecordedAt: "2026-01-15", ReviewDue: "2027-01-15"}},
	{escalation.ResidentAdmitted{ResidentID: "rc-103", CareHomeID: "rose-court", Name: "Doris Whitfield", DateOfBirth: "1935-12-03", Room: "11", NHSNumber: "9990000158", SpO2Scale: news2.Scale2},
		escalation.Baseline{NEWS2Total: 2, Notes: "COPD with confirmed hypercapnic respiratory failure; SpO2 target 88–92%."},
		escalation.AdvanceCarePlan{HasRespectForm: true, Focus: "comfort", HospitalAdmission: "not_wanted", CPR: "do_not_attempt",
			Summary: "Prioritise comfort; does not want hospital admission.", RecordedAt: "2026-06-20", ReviewDue: "2026-12-20"}},
	{escalation.ResidentAdmitted{ResidentID: "eh-201", CareHomeID: "elm-house", Name: "Harold Baines", DateOfBirth: "1944-02-18", Room: "2", NHSNumber: "9990000220", SpO2Scale: news2.Scale1},
		escalation.Baseline{NEWS2Total: 1, Notes: "Parkinson's disease; usually chatty."},
		escalation.AdvanceCarePlan{HasRespectForm: false, Focus: "balance", HospitalAdmission: "discuss", CPR: "attempt",
			Summary: "No ReSPECT form yet; family to be consulted.", RecordedAt: "2026-05-01", ReviewDue: "2026-11-01"}},
	{escalation.ResidentAdmitted{ResidentID: "eh-202", CareHomeID: "elm-house", Name: "Ivy Mortimer", DateOfBirth: "1933-07-07", Room: "5", NHSNumber: "9990000298", SpO2Scale: news2.Scale1},
		escalation.Baseline{NEWS2Total: 1, Notes: "Frail, bed-bound, eats little."},
		escalation.AdvanceCarePlan{HasRespectForm: true, Focus: "comfort", HospitalAdmission: "not_wanted", CPR: "do_not_attempt",
			Summary: "End-of-life care in the home.", RecordedAt: "2026-08-09", ReviewDue: "2027-02-09"}},
}

var demoUsers = []account.Account{
	{Username: "night.rose", Name: "Nina Okoro (night nurse)", Role: "carehome", CareHomeID: "rose-court"},
	{Username: "day.rose", Name: "Dan Rowe (day nurse)", Role: "carehome", CareHomeID: "rose-court"},
	{Username: "night.elm", Name: "Ella Marsh (night carer)", Role: "carehome", CareHomeID: "elm-house"},
	{Username: "dr.okafor", Name: "Dr Chidi Okafor", Role: "consultant", Phone: "+447700900101"},
	{Username: "dr.patel", Name: "Dr Priya Patel", Role: "consultant", Phone: "+447700900102"},
	{Username: "dr.adams", Name: "Dr Grace Adams", Role: "consultant", Phone: "+447700900103"},
	{Username: "auditor", Name: "Alex Auditor", Role: "auditor"},
	{Username: "admin", Name: "Sam Admin", Role: "admin"},
}

// seedDemo puts the demo data in an empty store. Each stream is appended
// with expected version NoStream and each account created once, so running
// it again (a restart, or a crash half-way) adds nothing twice.
func seedDemo(ctx context.Context, store events.Store, accounts account.Store, password string) (bool, error) {
	seeded := false
	appendOnce := func(stream string, evs ...escalation.Event) error {
		newEvs := make([]events.NewEvent, len(evs))
		for i, e := range evs {
			data, err := jsonOf(e)
			if err != nil {
				return err
			}
			newEvs[i] = events.NewEvent{ID: uuid.NewString(), Type: e.EventType(), Actor: "demo", Data: data}
		}
		_, err := store.Append(ctx, stream, events.NoStream, newEvs, events.AppendOptions{})
		if errors.Is(err, events.ErrVersionConflict) {
			return nil
		}
		if err == nil {
			seeded = true
		}
		return err
	}
	for _, h := range demoHomes {
		if err := appendOnce(escalation.CareHomeStream(h.ID), &escalation.CareHomeRegistered{CareHome: h}); err != nil {
			return false, fmt.Errorf("seed home %s: %w", h.ID, err)
		}
	}
	for _, r := range demoResidents {
		evs := []escalation.Event{&r.admitted, &escalation.BaselineRecorded{Baseline: r.baseline}, &escalation.CarePlanRecorded{Plan: r.plan}}
		if r.admitted.SpO2Scale == news2.Scale2 {
			evs = append(evs, &escalation.SpO2ScaleChanged{Scale: news2.Scale2, SetBy: "dr.okafor", SetAt: mustTime("2026-06-20T10:00:00Z")})
		}
		if err := appendOnce(escalation.ResidentStream(r.admitted.ResidentID), evs...); err != nil {
			return false, fmt.Errorf("seed resident %s: %w", r.admitted.ResidentID, err)
		}
	}
	if err := appendOnce(escalation.RotaStream(), &escalation.RotaLevelsSet{Levels: [][]escalation.Username{{"dr.okafor"}, {"dr.patel"}}}); err != nil {
		return false, fmt.Errorf("seed rota: %w", err)
	}
	for _, u := range demoUsers {
		hash, err := argon2id.Hash(password)
		if err != nil {
			return false, err
		}
		u.PasswordHash = hash
		switch err := accounts.CreateUser(ctx, u); {
		case errors.Is(err, account.ErrExists):
		case err != nil:
			return false, fmt.Errorf("seed user %s: %w", u.Username, err)
		default:
			seeded = true
		}
	}
	return seeded, nil
}
