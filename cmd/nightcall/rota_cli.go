package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/account"
	"github.com/nightcall-health/nightcall/events"
)

// offline is the store and service for an admin command run beside (or
// instead of) the server, on the same data dir.
type offline struct {
	store   backend
	read    *escalation.Projection
	service *escalation.Service
	stop    context.CancelFunc
}

// Close stops feeding the read model and closes the store.
func (o *offline) Close() {
	o.stop()
	_ = o.store.Close() // each append was committed when it returned; a failed close loses none
}

// feed keeps the read model up with the log, as the server's consumer does,
// so that commands which check against it see their own appends.
func feed(ctx context.Context, store events.Store, read *escalation.Projection) {
	for {
		var wake <-chan struct{}
		if n, ok := store.(events.Notifier); ok {
			wake = n.Appended()
		}
		evs, err := store.ReadAll(ctx, read.Position(), 4096)
		if err != nil {
			return
		}
		for _, e := range evs {
			if read.Apply(e) != nil {
				return
			}
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func openOffline(ctx context.Context, dataDir, timezone string) (*offline, error) {
	loc, err := time.LoadLocation(timezone)
	if err != nil {
		return nil, err
	}
	// The admin commands use the store serve uses: the data dir, or Redis
	// when NIGHTCALL_STORE=redis (with NIGHTCALL_REDIS_URL), as in the
	// container of docker-compose.yml.
	cfg := serveConfig{Store: "sqlite", DataDir: dataDir}
	if os.Getenv("NIGHTCALL_STORE") == "redis" {
		cfg.Store, cfg.RedisURL = "redis", os.Getenv("NIGHTCALL_REDIS_URL")
	}
	store, _, err := openBackend(ctx, cfg)
	if err != nil {
		return nil, err
	}
	read := escalation.NewProjection(loc)
	fctx, stop := context.WithCancel(ctx)
	go feed(fctx, store, read)
	head, err := store.Head(ctx)
	if err == nil {
		err = read.WaitFor(ctx, head)
	}
	if err != nil {
		stop()
		_ = store.Close() // the error returned is the one that matters
		return nil, err
	}
	svc, err := escalation.NewService(escalation.Config{Store: store, Read: read, NewID: newID})
	if err != nil {
		stop()
		_ = store.Close() // the error returned is the one that matters
		return nil, err
	}
	return &offline{store: store, read: read, service: svc, stop: stop}, nil
}

// cliAdmin is the actor recorded for changes made from the command line.
var cliAdmin = escalation.Meta{Actor: escalation.Actor{Person: escalation.Person{Username: "cli", Name: "command line"}, Role: escalation.RoleAdmin}}

func (o *offline) isConsultant(ctx context.Context, u escalation.Username) (bool, error) {
	a, err := o.store.UserByName(ctx, u)
	if errors.Is(err, account.ErrNotFound) {
		return false, nil
	}
	return err == nil && a.Role == escalation.RoleConsultant, err
}

func parseLevels(s string) [][]escalation.Username {
	var out [][]escalation.Username
	for _, level := range strings.Split(s, ";") {
		var l []escalation.Username
		for _, u := range strings.Split(level, ",") {
			if u = strings.TrimSpace(u); u != "" {
				l = append(l, escalation.Username(u))
			}
		}
		if len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}

const rotaUsage = `usage: nightcall rota <command> [flags]
  show      [--at RFC3339]                       the rota, and who is on call at --at (default now)
  shift     --id ID --days mon,tue --start 18:30 --end 08:00 [--end-day-offset N] --levels "a,b;c"
  unshift   --id ID
  standing  --levels "a;b"                       levels on call at all times ("" for none)
  override  --from RFC3339 --to RFC3339 --covered USER --by USER
common flags: --data-dir (./data), --timezone (Europe/London)
`

func rotaCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(strings.TrimSpace(rotaUsage))
	}
	fs, _, _ := adminFlags("rota " + args[0])
	id := fs.String("id", "", "shift id")
	days := fs.String("days", "", "days the shift starts on, comma-separated")
	start := fs.String("start", "", "start HH:MM")
	end := fs.String("end", "", "end HH:MM")
	endOffset := fs.Int("end-day-offset", -1, "days from start to end (default: 0, or 1 if end <= start)")
	levels := fs.String("levels", "", `levels: "a,b;c" is level 1 a and b, level 2 c`)
	atFlag := fs.String("at", "", "instant for show")
	from := fs.String("from", "", "override start")
	to := fs.String("to", "", "override end")
	covered := fs.String("covered", "", "consultant covered")
	by := fs.String("by", "", "consultant covering")
	o, err := parseAndOpen(ctx, fs, args[1:])
	if err != nil {
		return err
	}
	defer o.Close()
	var rota escalation.Rota
	switch args[0] {
	case "show":
		at := time.Now()
		if *atFlag != "" {
			if at, err = time.Parse(time.RFC3339, *atFlag); err != nil {
				return fmt.Errorf("--at: %w", err)
			}
		}
		printJSON(stdout, map[string]any{"rota": o.read.Rota(), "at": at.UTC(), "on_call": o.read.RotaLevelsAt(at)})
		return nil
	case "shift":
		sh := escalation.Shift{ID: *id, Start: *start, End: *end, Levels: parseLevels(*levels)}
		for _, d := range strings.Split(*days, ",") {
			if d = strings.TrimSpace(d); d != "" {
				sh.Days = append(sh.Days, d)
			}
		}
		if *endOffset >= 0 {
			sh.EndDayOffset = endOffset
		}
		rota, err = o.service.SetShift(ctx, cliAdmin, sh, o.isConsultant)
	case "unshift":
		rota, err = o.service.RemoveShift(ctx, cliAdmin, *id)
	case "standing":
		l := parseLevels(*levels)
		if l == nil {
			l = [][]escalation.Username{}
		}
		rota, err = o.service.SetStanding(ctx, cliAdmin, l, o.isConsultant)
	case "override":
		ov := escalation.Override{Covered: escalation.Username(*covered), By: escalation.Username(*by)}
		if *from != "" {
			if ov.From, err = time.Parse(time.RFC3339, *from); err != nil {
				return fmt.Errorf("--from: %w", err)
			}
		}
		if *to != "" {
			if ov.To, err = time.Parse(time.RFC3339, *to); err != nil {
				return fmt.Errorf("--to: %w", err)
			}
		}
		rota, err = o.service.AddOverride(ctx, cliAdmin, ov, o.isConsultant)
	default:
		return fmt.Errorf("unknown rota command %q; %s", args[0], strings.TrimSpace(rotaUsage))
	}
	if err != nil {
		return explain(err)
	}
	printJSON(stdout, rota)
	return nil
}
