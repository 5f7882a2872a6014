package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/account"
	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/events/argon2id"
)

// adminFlags are the flags every admin command takes.
func adminFlags(name string) (*flag.FlagSet, *string, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	return fs, fs.String("data-dir", "./data", "data directory"), fs.String("timezone", "Europe/London", "time zone")
}

// parseAndOpen parses an admin command's flags (made by adminFlags) and
// opens the data dir they name.
func parseAndOpen(ctx context.Context, fs *flag.FlagSet, args []string) (*offline, error) {
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return openOffline(ctx, fs.Lookup("data-dir").Value.String(), fs.Lookup("timezone").Value.String())
}

func printJSON(w io.Writer, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintln(w, string(b))
}

// explain turns a field error into a line naming the field.
func explain(err error) error {
	var ie *escalation.InputError
	if errors.As(err, &ie) {
		return fmt.Errorf("%s: %s", ie.Field, ie.Message)
	}
	var de *escalation.DuplicateError
	if errors.As(err, &de) {
		return fmt.Errorf("%s: %s", de.Field, de.Message)
	}
	return err
}

const homeUsage = `usage: nightcall home add --id ID --name NAME --fallback-phone PHONE [--out-of-hours-contact TEXT]
       nightcall home list
common flags: --data-dir (./data)`

func homeCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(homeUsage)
	}
	fs, _, _ := adminFlags("home " + args[0])
	id := fs.String("id", "", "home id")
	name := fs.String("name", "", "name")
	phone := fs.String("fallback-phone", "", "fallback phone number")
	contact := fs.String("out-of-hours-contact", "", "out-of-hours contact")
	o, err := parseAndOpen(ctx, fs, args[1:])
	if err != nil {
		return err
	}
	defer o.Close()
	switch args[0] {
	case "add":
		h, err := o.service.RegisterCareHome(ctx, cliAdmin, escalation.CareHomeInput{ID: escalation.CareHomeID(*id), Name: *name, FallbackPhone: *phone, OutOfHoursContact: *contact})
		if err != nil {
			return explain(err)
		}
		printJSON(stdout, h)
	case "list":
		printJSON(stdout, o.read.Homes())
	default:
		return errors.New(homeUsage)
	}
	return nil
}

const residentUsage = `usage: nightcall resident add --id ID --home HOME --name NAME --dob YYYY-MM-DD --nhs NUMBER [--room R] [--scale 2 --scale-set-by CLINICIAN]
       nightcall resident import --file residents.csv [--dry-run]
       nightcall resident list
common flags: --data-dir (./data)
CSV columns: ` + "id, care_home_id, name, date_of_birth, room, nhs_number, spo2_scale, spo2_scale_set_by, baseline_news2, baseline_notes, acp_has_respect_form, acp_focus, acp_hospital_admission, acp_cpr, acp_summary, acp_recorded_at, acp_review_due, allergies (;-separated)"

func residentCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(residentUsage)
	}
	fs, _, _ := adminFlags("resident " + args[0])
	id := fs.String("id", "", "resident id")
	home := fs.String("home", "", "care home id")
	name := fs.String("name", "", "name")
	dob := fs.String("dob", "", "date of birth YYYY-MM-DD")
	nhs := fs.String("nhs", "", "NHS number")
	room := fs.String("room", "", "room")
	scale := fs.Int("scale", 1, "SpO2 scale")
	setBy := fs.String("scale-set-by", "", "clinician who set Scale 2")
	file := fs.String("file", "", "CSV file to import")
	dry := fs.Bool("dry-run", false, "check the import without recording anything")
	o, err := parseAndOpen(ctx, fs, args[1:])
	if err != nil {
		return err
	}
	defer o.Close()
	switch args[0] {
	case "add":
		in := escalation.ResidentInput{ID: escalation.ResidentID(*id), CareHomeID: escalation.CareHomeID(*home), Name: *name,
			DateOfBirth: *dob, NHSNumber: *nhs, Room: *room, SpO2Scale: news2.Scale(*scale), SpO2ScaleSetBy: *setBy}
		if in.SpO2Scale == news2.Scale2 {
			now := time.Now().UTC()
			in.SpO2ScaleSetAt = &now
		}
		r, err := o.service.AdmitResident(ctx, cliAdmin, in)
		if err != nil {
			return explain(err)
		}
		printJSON(stdout, map[string]any{"id": r.ID, "care_home_id": r.CareHomeID, "status": r.Status, "spo2_scale": r.SpO2Scale})
	case "import":
		f, err := os.Open(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		rows, bad, err := escalation.ParseResidentsCSV(f)
		if err != nil {
			return explain(err)
		}
		rep, err := o.service.ImportResidents(ctx, cliAdmin, rows, bad, *dry)
		if err != nil {
			return err
		}
		printJSON(stdout, rep)
		if len(rep.Errors) > 0 {
			return fmt.Errorf("%d bad rows (listed above)", len(rep.Errors))
		}
	case "list":
		var out []map[string]any
		for _, r := range o.read.Residents() {
			out = append(out, map[string]any{"id": r.ID, "care_home_id": r.CareHomeID, "status": r.Status})
		}
		printJSON(stdout, out)
	default:
		return errors.New(residentUsage)
	}
	return nil
}

const userUsage = `usage: nightcall user add --username U --name NAME --role carehome|consultant|auditor|admin|gp [--home HOME] [--homes HOME,HOME]
The password is read from standard input (never from a flag or the environment).
common flags: --data-dir (./data)`

func userCmd(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		return errors.New(userUsage)
	}
	fs, dataDir, tz := adminFlags("user add")
	username := fs.String("username", "", "username")
	name := fs.String("name", "", "name")
	role := fs.String("role", "", "role")
	home := fs.String("home", "", "care home (staff only)")
	homes := fs.String("homes", "", "comma-separated care homes a GP is bound to (gp only)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	fmt.Fprint(os.Stderr, "password: ")
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	o, err := openOffline(ctx, *dataDir, *tz)
	if err != nil {
		return err
	}
	defer o.Close()
	accounts, err := account.New(account.Config{Store: o.store, Hasher: argon2id.Hasher{}, Domain: o.service})
	if err != nil {
		return err
	}
	acct, err := accounts.Create(ctx, cliAdmin, account.Input{
		Username: *username, Name: *name, Role: *role, CareHomeID: *home, CareHomeIDs: splitList(*homes), Password: strings.TrimRight(line, "\r\n"),
	})
	if err != nil {
		return explain(err)
	}
	out := map[string]any{"username": acct.Username, "role": acct.Role, "care_home_id": acct.CareHomeID}
	if len(acct.CareHomeIDs) > 0 {
		out["care_home_ids"] = acct.CareHomeIDs
	}
	printJSON(stdout, out)
	return nil
}
