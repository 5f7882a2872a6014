package escalation

import (
	"context"
	"errors"
	"slices"
)

// Importing residents in bulk (from CSV, csvimport.go): every valid row is
// admitted and every bad one reported, or, in a dry run, only checked.

// ImportRow is the outcome of one row of an import.
type ImportRow struct {
	Row     int        `json:"row"`
	ID      ResidentID `json:"id,omitempty"`
	Code    string     `json:"code,omitempty"`
	Field   string     `json:"field,omitempty"`
	Message string     `json:"message,omitempty"`
}

// ImportReport says what an import did, or would do.
type ImportReport struct {
	DryRun   bool        `json:"dry_run"`
	Rows     int         `json:"rows"`
	Imported int         `json:"imported"`
	Valid    int         `json:"valid"`
	Errors   []ImportRow `json:"errors"`
}

// ImportResidents admits every valid row and reports every bad one; a dry run
// checks all rows and appends nothing. Duplicates within the file count too.
func (s *Service) ImportResidents(ctx context.Context, meta Meta, rows []ResidentInput, rowErrs []ImportRow, dryRun bool) (ImportReport, error) {
	if err := requireAdmin(meta.Actor); err != nil {
		return ImportReport{}, err
	}
	rep := ImportReport{DryRun: dryRun, Rows: len(rows) + len(rowErrs), Errors: append([]ImportRow{}, rowErrs...)}
	seenID, seenNHS := map[ResidentID]bool{}, map[string]bool{}
	for i, in := range rows {
		rowNum := in.rowNumber(i)
		fail := func(err error) {
			row := ImportRow{Row: rowNum, ID: in.ID, Message: err.Error()}
			var ie *InputError
			var de *DuplicateError
			switch {
			case errors.As(err, &ie):
				row.Code, row.Field, row.Message = string(ie.Kind), ie.Field, ie.Message
			case errors.As(err, &de):
				row.Code, row.Field, row.Message = "duplicate", de.Field, de.Message
			}
			rep.Errors = append(rep.Errors, row)
		}
		if err := s.checkNewResident(ctx, &in); err != nil {
			var ie *InputError
			var de *DuplicateError
			if !errors.As(err, &ie) && !errors.As(err, &de) {
				return rep, err
			}
			fail(err)
			continue
		}
		if seenID[in.ID] {
			fail(&DuplicateError{Field: "id", Message: "this id is on an earlier row"})
			continue
		}
		if seenNHS[in.NHSNumber] {
			fail(&DuplicateError{Field: "nhs_number", Message: "this NHS number is on an earlier row"})
			continue
		}
		seenID[in.ID], seenNHS[in.NHSNumber] = true, true
		rep.Valid++
		if dryRun {
			continue
		}
		err := s.admit(ctx, meta, in)
		var de *DuplicateError
		if errors.As(err, &de) {
			fail(err)
			rep.Valid--
			continue
		}
		if err != nil {
			return rep, err
		}
		rep.Imported++
	}
	slices.SortFunc(rep.Errors, func(a, b ImportRow) int { return a.Row - b.Row })
	return rep, nil
}

// rowNumber is the row's line in the file when read from CSV, else its index from 1.
func (in ResidentInput) rowNumber(i int) int {
	if in.Row > 0 {
		return in.Row
	}
	return i + 1
}
