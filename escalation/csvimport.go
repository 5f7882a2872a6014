package escalation

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nightcall-health/nightcall/escalation/news2"
)

// CSVColumns are the columns a resident import may have; id, care_home_id,
// name, date_of_birth and nhs_number are required.
var CSVColumns = []string{
	"id", "care_home_id", "name", "date_of_birth", "room", "nhs_number", "spo2_scale", "spo2_scale_set_by",
	"baseline_news2", "baseline_notes", "acp_has_respect_form", "acp_focus", "acp_hospital_admission", "acp_cpr",
	"acp_summary", "acp_recorded_at", "acp_review_due", "allergies",
}

// ParseResidentsCSV reads a resident import. A file-level problem (no
// header, an unknown column) is an error; a row that cannot be read is
// reported in the returned rows and left out.
func ParseResidentsCSV(r io.Reader) ([]ResidentInput, []ImportRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, inputErr(KindMissingField, "", "the file is empty: it needs a header line")
	}
	if err != nil {
		return nil, nil, inputErr(KindInvalidValue, "", "the file is not CSV: %v", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		known := false
		for _, c := range CSVColumns {
			if c == h {
				known = true
			}
		}
		if !known {
			return nil, nil, inputErr(KindInvalidValue, h, "unknown column %q; the columns are %s", h, strings.Join(CSVColumns, ", "))
		}
		col[h] = i
	}
	for _, req := range []string{"id", "care_home_id", "name", "date_of_birth", "nhs_number"} {
		if _, ok := col[req]; !ok {
			return nil, nil, inputErr(KindMissingField, req, "the header lacks the column %q", req)
		}
	}
	var rows []ResidentInput
	var bad []ImportRow
	line := 1
	for {
		rec, err := cr.Read()
		line++
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			bad = append(bad, ImportRow{Row: line, Code: string(KindInvalidValue), Message: err.Error()})
			continue
		}
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		in, rowErr := rowInput(get)
		in.Row = line
		if rowErr != nil {
			rowErr.Row, rowErr.ID = line, in.ID
			bad = append(bad, *rowErr)
			continue
		}
		rows = append(rows, in)
	}
	return rows, bad, nil
}

func rowInput(get func(string) string) (ResidentInput, *ImportRow) {
	in := ResidentInput{
		ID: ResidentID(get("id")), CareHomeID: CareHomeID(get("care_home_id")), Name: get("name"),
		DateOfBirth: get("date_of_birth"), Room: get("room"), NHSNumber: get("nhs_number"), SpO2ScaleSetBy: get("spo2_scale_set_by"),
	}
	bad := func(field, format string, args ...any) (ResidentInput, *ImportRow) {
		return in, &ImportRow{Code: string(KindInvalidValue), Field: field, Message: fmt.Sprintf(format, args...)}
	}
	if v := get("spo2_scale"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return bad("spo2_scale", "the SpO2 scale is 1 or 2")
		}
		in.SpO2Scale = news2.Scale(n)
		if in.SpO2Scale == news2.Scale2 {
			now := time.Now().UTC()
			in.SpO2ScaleSetAt = &now
		}
	}
	if v := get("baseline_news2"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return bad("baseline_news2", "the baseline NEWS2 is a whole number 0 to 20")
		}
		in.Baseline = &Baseline{NEWS2Total: n, Notes: get("baseline_notes")}
	}
	if get("acp_focus") != "" || get("acp_hospital_admission") != "" || get("acp_cpr") != "" {
		in.AdvanceCarePlan = &AdvanceCarePlan{
			HasRespectForm: strings.EqualFold(get("acp_has_respect_form"), "true") || get("acp_has_respect_form") == "yes",
			Focus:          CareFocus(get("acp_focus")), HospitalAdmission: AdmissionPreference(get("acp_hospital_admission")), CPR: CPRDecision(get("acp_cpr")),
			Summary: get("acp_summary"), RecordedAt: get("acp_recorded_at"), ReviewDue: get("acp_review_due"),
		}
	}
	for _, a := range strings.Split(get("allergies"), ";") {
		if a = strings.TrimSpace(a); a != "" {
			in.Allergies = append(in.Allergies, a)
		}
	}
	return in, nil
}
