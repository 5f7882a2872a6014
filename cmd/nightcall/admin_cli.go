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
	"text/tabwriter"
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
		f, err := os.Open(*file) // #nosec G703 -- the operator's own --file on their own machine
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
       nightcall user disable --username U    revoke every session at once; it cannot sign in
       nightcall user enable --username U
       nightcall user passwd --username U     a new password; every session is revoked
       nightcall user list [--json]
Passwords are read from standard input (never from a flag or the environment).
A running service on the same data dir closes the account's sockets within a second.
common flags: --data-dir (./data)`

func userCmd(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(userUsage)
	}
	cmd := args[0]
	switch cmd {
	case "add", "disable", "enable", "passwd", "list":
	default:
		return errors.New(userUsage)
	}
	fs, dataDir, tz := adminFlags("user " + cmd)
	username := fs.String("username", "", "username")
	name := fs.String("name", "", "name")
	role := fs.String("role", "", "role")
	home := fs.String("home", "", "care home (staff only)")
	homes := fs.String("homes", "", "comma-separated care homes a GP is bound to (gp only)")
	asJSON := fs.Bool("json", false, "list as JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if cmd != "add" && cmd != "list" && *username == "" {
		return errors.New("--username: give the account's username")
	}
	var password string
	if cmd == "add" || cmd == "passwd" {
		fmt.Fprint(os.Stderr, "password: ")
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		password = strings.TrimRight(line, "\r\n")
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
	u := escalation.Username(*username)
	switch cmd {
	case "add":
		acct, err := accounts.Create(ctx, cliAdmin, account.Input{
			Username: *username, Name: *name, Role: *role, CareHomeID: *home, CareHomeIDs: splitList(*homes), Password: password,
		})
		if err != nil {
			return explain(err)
		}
		out := map[string]any{"username": acct.Username, "role": acct.Role, "care_home_id": acct.CareHomeID}
		if len(acct.CareHomeIDs) > 0 {
			out["care_home_ids"] = acct.CareHomeIDs
		}
		printJSON(stdout, out)
	case "disable", "enable":
		disable := cmd == "disable"
		if err := accounts.SetDisabled(ctx, u, disable); err != nil {
			return userErr(u, err)
		}
		var ev escalation.AccountEvent = &escalation.UserEnabled{Username: u}
		if disable {
			ev = &escalation.UserDisabled{Username: u}
		}
		if _, err := o.service.RecordAccountEvent(ctx, cliAdmin, ev, nil); err != nil {
			return err
		}
		printJSON(stdout, map[string]any{"username": u, "disabled": disable})
	case "passwd":
		if password == "" {
			return errors.New("password: give the new password on standard input")
		}
		if err := accounts.ChangePassword(ctx, u, password); err != nil {
			return userErr(u, explain(err))
		}
		if _, err := o.service.RecordAccountEvent(ctx, cliAdmin, &escalation.UserPasswordChanged{Username: u}, nil); err != nil {
			return err
		}
		printJSON(stdout, map[string]any{"username": u, "password_changed": true, "sessions_revoked": true})
	case "list":
		users, err := o.store.Users(ctx)
		if err != nil {
			return err
		}
		return printUsers(stdout, users, *asJSON)
	}
	return nil
}

// userErr names an unknown account.
func userErr(u escalation.Username, err error) error {
	if errors.Is(err, account.ErrNotFound) {
		return fmt.Errorf("username: no account %q", u)
	}
	return err
}

// printUsers lists accounts: username, name, role, home(s) and whether
// disabled; never a hash.
func printUsers(w io.Writer, users []account.Account, asJSON bool) error {
	type row struct {
		Username escalation.Username     `json:"username"`
		Name     string                  `json:"name"`
		Role     escalation.Role         `json:"role"`
		Homes    []escalation.CareHomeID `json:"care_home_ids"`
		Disabled bool                    `json:"disabled"`
	}
	rows := make([]row, 0, len(users))
	for _, a := range users {
		homes := a.CareHomeIDs
		if a.CareHomeID != "" {
			homes = []escalation.CareHomeID{a.CareHomeID}
		}
		if homes == nil {
			homes = []escalation.CareHomeID{}
		}
		rows = append(rows, row{a.Username, a.Name, a.Role, homes, a.Disabled})
	}
	if asJSON {
		printJSON(w, rows)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tNAME\tROLE\tHOMES\tDISABLED")
	for _, r := range rows {
		homes := make([]string, len(r.Homes))
		for i, h := range r.Homes {
			homes[i] = string(h)
		}
		h := strings.Join(homes, ",")
		if h == "" {
			h = "-"
		}
		disabled := "no"
		if r.Disabled {
			disabled = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Username, r.Name, r.Role, h, disabled)
	}
	return tw.Flush()
}
