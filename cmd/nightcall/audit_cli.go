package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/audit"
	"github.com/nightcall-health/nightcall/escalation/paging"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/sqlite"
)

// replay feeds the whole log to apply, reporting progress on progress.
func replay(ctx context.Context, store *sqlite.Store, progress io.Writer, apply func(e events.Envelope) error) (int, time.Duration, error) {
	head, err := store.Head(ctx)
	if err != nil {
		return 0, 0, err
	}
	start, last := time.Now(), time.Now()
	var after int64
	n := 0
	for {
		evs, err := store.ReadAll(ctx, after, 8192)
		if err != nil {
			return n, 0, err
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			if err := apply(e); err != nil {
				return n, 0, err
			}
			after = e.Position
			n++
		}
		if progress != nil && (time.Since(last) > 200*time.Millisecond || after >= head) {
			last = time.Now()
			progressBar(progress, after, head, n, time.Since(start))
		}
	}
	if progress != nil {
		progressBar(progress, after, head, n, time.Since(start))
		fmt.Fprintln(progress)
	}
	return n, time.Since(start), nil
}

func progressBar(w io.Writer, pos, head int64, n int, d time.Duration) {
	const width = 30
	frac := 1.0
	if head > 0 {
		frac = float64(pos) / float64(head)
	}
	filled := int(frac * width)
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = '.'
		if i < filled {
			bar[i] = '#'
		}
	}
	fmt.Fprintf(w, "\r[%s] %3.0f%% %d events, %.0f events/s", bar, frac*100, n, float64(n)/max(d.Seconds(), 1e-9))
}

const auditUsage = `usage: nightcall audit [--from RFC3339] [--to RFC3339] [--care-home ID] [--window 72h|7d] [--as-of RFC3339] [--format table|json|csv]
common flags: --data-dir (./data), --timezone (Europe/London)`

func auditCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs, dataDir, tz := adminFlags("audit")
	from := fs.String("from", "", "raised at or after")
	to := fs.String("to", "", "raised before")
	home := fs.String("care-home", "", "one care home")
	window := fs.String("window", "72h", "follow-up window")
	asOf := fs.String("as-of", "", "compute as of this instant (default now)")
	format := fs.String("format", "table", "table, json or csv")
	if err := fs.Parse(args); err != nil {
		return err
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return err
	}
	q := audit.Query{CareHome: escalation.CareHomeID(*home), WindowText: *window, AsOf: time.Now(), Location: loc}
	for _, p := range []struct {
		name, v string
		dst     *time.Time
	}{{"--from", *from, &q.From}, {"--to", *to, &q.To}, {"--as-of", *asOf, &q.AsOf}} {
		if p.v == "" {
			continue
		}
		if *p.dst, err = time.Parse(time.RFC3339, p.v); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	if q.Window, err = audit.ParseWindow(*window); err != nil {
		return fmt.Errorf("--window: %w", err)
	}
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(*dataDir, "nightcall.db")})
	if err != nil {
		return err
	}
	defer store.Close()
	m := audit.NewModel()
	if _, _, err := replay(ctx, store, nil, m.Apply); err != nil {
		return err
	}
	f := m.Figures(q)
	switch *format {
	case "json":
		printJSON(stdout, f)
	case "csv":
		cw := csv.NewWriter(stdout)
		_ = cw.Write(append([]string{"care_home_id"}, countNames...))
		_ = cw.Write(append([]string{"all"}, countValues(f.Counts)...))
		for _, h := range f.ByCareHome {
			_ = cw.Write(append([]string{string(h.CareHomeID)}, countValues(h.Counts)...))
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return fmt.Errorf("audit: writing the figures: %w", err)
		}
	case "table":
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "as of %s, window %s\t\n", f.AsOf.Format(time.RFC3339), f.Window)
		header := "\t"
		for _, h := range f.ByCareHome {
			header += string(h.CareHomeID) + "\t"
		}
		fmt.Fprintln(tw, "figure\tall\t"+header)
		all := countValues(f.Counts)
		for i, name := range countNames {
			line := name + "\t" + all[i] + "\t"
			for _, h := range f.ByCareHome {
				line += countValues(h.Counts)[i] + "\t"
			}
			fmt.Fprintln(tw, line)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("audit: writing the figures: %w", err)
		}
	default:
		return errors.New(auditUsage)
	}
	return nil
}

var countNames = []string{"escalations", "decided", "admit", "stay", "withdrawn", "ever_unanswered", "admissions_avoided",
	"avoided_unconfirmed", "failed_stays", "pending_window", "deaths_in_window", "out_of_hours",
	"seconds_to_accept_p50", "seconds_to_accept_p90", "seconds_to_decision_p50", "seconds_to_decision_p90"}

func countValues(c audit.Counts) []string {
	p := func(v *float64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatFloat(*v, 'f', -1, 64)
	}
	return []string{strconv.Itoa(c.Escalations), strconv.Itoa(c.Decided), strconv.Itoa(c.Admit), strconv.Itoa(c.Stay),
		strconv.Itoa(c.Withdrawn), strconv.Itoa(c.EverUnanswered), strconv.Itoa(c.AdmissionsAvoided), strconv.Itoa(c.AvoidedUnconfirmed),
		strconv.Itoa(c.FailedStays), strconv.Itoa(c.PendingWindow), strconv.Itoa(c.DeathsInWindow), strconv.Itoa(c.OutOfHours),
		p(c.SecondsToAccept.P50), p(c.SecondsToAccept.P90), p(c.SecondsToDecision.P50), p(c.SecondsToDecision.P90)}
}

// projectionsCmd rebuilds every projection from the log, with a progress
// bar, and reports how long it took.
func projectionsCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "rebuild" {
		return errors.New("usage: nightcall projections rebuild [--data-dir ./data] [--timezone Europe/London]")
	}
	fs, dataDir, tz := adminFlags("projections rebuild")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return err
	}
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(*dataDir, "nightcall.db")})
	if err != nil {
		return err
	}
	defer store.Close()
	read, m := escalation.NewProjection(loc), audit.NewModel()
	pager, err := paging.New(paging.Config{Store: store, Service: &escalation.Service{}, Rota: read.RotaLevelsAt, NewID: newID,
		Policy: paging.Policy{PageTimeout: time.Minute, ReceiptTimeout: time.Minute}}, 0)
	if err != nil {
		return err
	}
	n, d, err := replay(ctx, store, os.Stderr, func(e events.Envelope) error {
		if err := read.Apply(e); err != nil {
			return err
		}
		if err := m.Apply(e); err != nil {
			return err
		}
		return pager.Apply(e)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rebuilt the read model, the audit model and the pager state from %d events in %v (%.0f events/s)\n",
		n, d.Round(time.Millisecond), float64(n)/max(d.Seconds(), 1e-9))
	return nil
}
