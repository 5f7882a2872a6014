package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/web"
)

const handoverUsage = `usage: nightcall handover --home ID [--date YYYY-MM-DD] [--format text|json|fhir]
The morning handover on --date (default today): every escalation the home raised from 08:00
the day before to 08:00 on that date in --timezone, the night's out-of-hours ones first.
The read is put on the access log as the command line's.
common flags: --data-dir (./data), --timezone (Europe/London)`

// handoverCmd prints a home's morning handover from the data dir.
func handoverCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs, dataDir, tz := adminFlags("handover")
	home := fs.String("home", "", "care home id")
	date := fs.String("date", "", "date of the handover, YYYY-MM-DD (default today)")
	format := fs.String("format", "text", "text, json or fhir")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v\n%s", fs.Args(), handoverUsage)
	}
	switch {
	case *home == "":
		return errors.New("--home is required\n" + handoverUsage)
	case *format != "text" && *format != "json" && *format != "fhir":
		return fmt.Errorf("--format %q: must be text, json or fhir", *format)
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return fmt.Errorf("--timezone %q: %w", *tz, err)
	}
	o, err := openOffline(ctx, *dataDir, *tz)
	if err != nil {
		return err
	}
	defer o.Close()
	h, err := o.service.Handover(ctx, cliAdmin.Actor, web.HandoverQuery(escalation.CareHomeID(*home), *date, loc))
	if errors.Is(err, escalation.ErrNotFound) {
		return fmt.Errorf("there is no care home %q", *home)
	}
	if err != nil {
		return explain(err)
	}
	switch *format {
	case "json":
		printJSON(stdout, h)
	case "fhir":
		b, err := web.HandoverBundle(h, loc)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
	default:
		web.WriteHandoverText(stdout, h, loc)
	}
	return nil
}
