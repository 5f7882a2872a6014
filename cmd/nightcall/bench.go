package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// benchResult is one figure of a scenario beside its baseline, measured in
// the same run, and the goal it is held to.
type benchResult struct {
	Scenario string  `json:"scenario"`
	Figure   string  `json:"figure"`
	Unit     string  `json:"unit"`
	Value    float64 `json:"value"`
	// Baseline names what Value is compared with; BaselineValue is its
	// figure in the same run and Ratio is Value / BaselineValue.
	Baseline      string   `json:"baseline,omitempty"`
	BaselineValue *float64 `json:"baseline_value,omitempty"`
	Ratio         *float64 `json:"ratio,omitempty"`
	Goal          string   `json:"goal"`
	// Met is whether the goal was met, when the goal is a number.
	Met    *bool              `json:"met,omitempty"`
	Params map[string]any     `json:"params,omitempty"`
	Extra  map[string]float64 `json:"extra,omitempty"`
}

// benchReport is what `nightcall bench --json` writes.
type benchReport struct {
	Date      string        `json:"date"`
	Machine   benchMachine  `json:"machine"`
	Quick     bool          `json:"quick"`
	Took      float64       `json:"took_seconds"`
	Results   []benchResult `json:"results"`
	Errors    []string      `json:"errors,omitempty"`
	Scenarios []string      `json:"scenarios"`
}

type benchMachine struct {
	CPU  string `json:"cpu"`
	CPUs int    `json:"cpus"`
	OS   string `json:"os"`
	Go   string `json:"go"`
	// LoadBefore and LoadAfter are /proc/loadavg at the start and the end:
	// figures taken while other work ran on the machine are not comparable.
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`
}

// benchSizes are the sizes of every scenario; --quick picks smaller ones.
type benchSizes struct {
	AuditEvents  int           `json:"audit_events"`
	Queries      int           `json:"queries"`
	Sockets      int           `json:"sockets"`
	Raises       int           `json:"raises"`
	MemSockets   int           `json:"memory_sockets"`
	Writers      int           `json:"writers"`
	Appends      int           `json:"appends"`
	Calls        int           `json:"calls"`
	LossCalls    int           `json:"loss_calls"`
	PPS          int           `json:"pps"`
	Payload      int           `json:"payload"`
	Measure      time.Duration `json:"measure"`
	AcceptRuns   int           `json:"accept_runs"`
	SingleAppend int           `json:"single_appends"`
	RedisSockets int           `json:"redis_sockets"`
	RedisRaises  int           `json:"redis_raises"`
}

var fullSizes = benchSizes{AuditEvents: 1_000_000, Queries: 50, Sockets: 10_000, Raises: 50, MemSockets: 10_000, Writers: 32,
	Appends: 6400, Calls: 10, LossCalls: 50, PPS: 150, Payload: 1111, Measure: 10 * time.Second, AcceptRuns: 10, SingleAppend: 3000,
	RedisSockets: 1000, RedisRaises: 50}

var quickSizes = benchSizes{AuditEvents: 200_000, Queries: 50, Sockets: 1000, Raises: 20, MemSockets: 2000, Writers: 32,
	Appends: 3200, Calls: 2, LossCalls: 4, PPS: 150, Payload: 1111, Measure: 4 * time.Second, AcceptRuns: 3, SingleAppend: 1000,
	RedisSockets: 200, RedisRaises: 20}

// heapProfile is where the memory scenario writes a heap profile ("": none).
var heapProfile string

// reuseLog makes the audit, rebuild and restart scenarios use the log an
// earlier run left in the scratch directory (seeding 10M events takes ten
// minutes; comparing two builds at 10M needs the same log twice).
var reuseLog bool

// benchScenario measures one row (or a few) of the table.
type benchScenario struct {
	name, what string
	run        func(ctx context.Context, env *benchEnv) ([]benchResult, error)
}

// benchEnv is what the scenarios of one run share: the sizes, a scratch
// directory and the seeded audit log (seeded once for audit, rebuild and
// restart).
type benchEnv struct {
	sizes benchSizes
	dir   string
	out   io.Writer
	log   *seededLog
}

// benchScenarios is every scenario, in the order they run.
var benchScenarios = []benchScenario{
	{"audit", "admissions-avoided query p50/p99 over the seeded log (incremental buckets) beside a full scan", benchAuditScenario},
	{"rebuild", "projection rebuild (read model, audit model) beside a raw sequential read of the log", benchRebuildScenario},
	{"restart", "a restart from a projection snapshot plus the tail beside a full rebuild", benchRestartScenario},
	{"append", "append with concurrent writers (group commit) beside raw single-row transactions", benchAppendScenario},
	{"append-1", "append from one writer beside raw single-row transactions", benchAppendOneScenario},
	{"paging", "raise → page to every socket beside a bare gorilla broadcast (clients in a child process)", benchPagingScenario},
	{"paging-redis", "raise → page across two instances on one redis-server beside one instance on Redis (needs redis-server)", benchPagingRedisScenario},
	{"memory", "memory per idle pager socket beside gorilla/websocket defaults (clients in a child process)", benchMemoryScenario},
	{"video", "SFU server CPU per forwarded packet beside a bare Pion forwarder (clients in a child process)", benchVideoScenario},
	{"accept", "accept → first decoded frame in Chromium (runs the Go benchmark; needs the source and Chromium)", benchAcceptScenario},
	{"turn", "first frame through TURN/TCP beside UDP, CPU per relayed packet, limit → layer switch (Go benchmarks; source, Chromium, root)", benchTURNScenario},
}

// quickScenarios are what --quick runs when no --scenario is given.
var quickScenarios = []string{"audit", "rebuild", "restart", "append", "append-1", "paging", "paging-redis", "memory", "video"}

type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

const benchUsage = `usage: nightcall bench [--scenario NAME ...] [--quick] [--json FILE] [size flags]
scenarios: audit rebuild restart append append-1 paging paging-redis memory video accept (default: all; --quick: all but accept)
older forms: nightcall bench append|paging|audit|video [flags]`

func bench(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "video-clients":
			return videoClients(args[1:], stdout)
		case "pager-clients":
			return pagerClients(ctx, args[1:], stdout)
		}
		return benchLegacy(ctx, args, stdout)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var scenarios stringList
	fs.Var(&scenarios, "scenario", "a scenario to run (repeat, or comma-separate)")
	quick := fs.Bool("quick", false, "reduced sizes, every scenario but accept (under two minutes)")
	jsonOut := fs.String("json", "", "write the results as JSON to this file")
	dir := fs.String("dir", "", "scratch directory for the stores (default: a new one under the system temp dir)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.StringVar(&heapProfile, "memprofile", "", "write a heap profile to this file with the memory scenario's sockets connected")
	fs.BoolVar(&reuseLog, "reuse-log", false, "use the audit log an earlier run left in --dir, as it is, instead of seeding one (audit, rebuild, restart)")
	sizes := fullSizes
	for _, a := range args {
		if a == "--quick" || a == "-quick" || a == "--quick=true" || a == "-quick=true" {
			sizes = quickSizes
		}
	}
	fs.IntVar(&sizes.AuditEvents, "audit-events", sizes.AuditEvents, "events in the seeded log (audit, rebuild, restart)")
	fs.IntVar(&sizes.Queries, "queries", sizes.Queries, "audit queries to time")
	fs.IntVar(&sizes.Sockets, "sockets", sizes.Sockets, "connected consultant sockets (paging)")
	fs.IntVar(&sizes.Raises, "raises", sizes.Raises, "escalations raised (paging)")
	fs.IntVar(&sizes.RedisSockets, "redis-sockets", sizes.RedisSockets, "connected consultant sockets (paging-redis)")
	fs.IntVar(&sizes.RedisRaises, "redis-raises", sizes.RedisRaises, "escalations raised (paging-redis)")
	fs.IntVar(&sizes.MemSockets, "memory-sockets", sizes.MemSockets, "idle sockets (memory)")
	fs.IntVar(&sizes.Writers, "writers", sizes.Writers, "concurrent writers (append)")
	fs.IntVar(&sizes.Appends, "appends", sizes.Appends, "appends in all (append)")
	fs.IntVar(&sizes.SingleAppend, "single-appends", sizes.SingleAppend, "appends (append-1)")
	fs.IntVar(&sizes.Calls, "calls", sizes.Calls, "two-party calls (video)")
	fs.IntVar(&sizes.LossCalls, "loss-calls", sizes.LossCalls, "two-party calls for the loss figure (video; 0: none)")
	fs.IntVar(&sizes.PPS, "pps", sizes.PPS, "video packets per second per peer")
	fs.IntVar(&sizes.Payload, "payload", sizes.Payload, "video payload bytes")
	fs.DurationVar(&sizes.Measure, "measure", sizes.Measure, "measuring window (video)")
	fs.IntVar(&sizes.AcceptRuns, "accept-runs", sizes.AcceptRuns, "accepts to time (accept)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w\n%s", err, benchUsage)
	}
	if len(scenarios) == 0 {
		for _, s := range benchScenarios {
			if !*quick || slices.Contains(quickScenarios, s.name) {
				scenarios = append(scenarios, s.name)
			}
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var run []benchScenario
	for _, name := range scenarios {
		i := slices.IndexFunc(benchScenarios, func(s benchScenario) bool { return s.name == name })
		if i < 0 {
			return fmt.Errorf("unknown scenario %q\n%s", name, benchUsage)
		}
		run = append(run, benchScenarios[i])
	}
	return runBench(ctx, run, sizes, *quick, *dir, *jsonOut, stdout)
}

// benchLegacy keeps the older `nightcall bench NAME [flags]` forms.
func benchLegacy(ctx context.Context, args []string, stdout io.Writer) error {
	sizes := fullSizes
	fs := flag.NewFlagSet("bench "+args[0], flag.ContinueOnError)
	var names []string
	switch args[0] {
	case "append":
		fs.IntVar(&sizes.SingleAppend, "n", sizes.SingleAppend, "appends per run")
		names = []string{"append-1", "append"}
	case "paging":
		sizes.Sockets, sizes.Raises = 1000, 30
		fs.IntVar(&sizes.Sockets, "sockets", sizes.Sockets, "connected consultant sockets")
		fs.IntVar(&sizes.Raises, "raises", sizes.Raises, "escalations raised")
		names = []string{"paging"}
	case "audit":
		fs.IntVar(&sizes.AuditEvents, "n", sizes.AuditEvents, "events in the log")
		fs.IntVar(&sizes.Queries, "queries", sizes.Queries, "queries to time")
		names = []string{"audit", "rebuild"}
	case "video":
		sizes.Calls, sizes.Payload, sizes.LossCalls = 20, 1200, 0
		fs.IntVar(&sizes.Calls, "calls", sizes.Calls, "two-party calls")
		fs.IntVar(&sizes.LossCalls, "loss-calls", sizes.LossCalls, "two-party calls for the loss figure (0: none)")
		fs.IntVar(&sizes.PPS, "pps", sizes.PPS, "video packets per second per peer")
		fs.IntVar(&sizes.Payload, "payload", sizes.Payload, "video payload bytes")
		fs.DurationVar(&sizes.Measure, "measure", sizes.Measure, "measuring window")
		names = []string{"video"}
	default:
		return errors.New(benchUsage)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var run []benchScenario
	for _, s := range benchScenarios {
		if slices.Contains(names, s.name) {
			run = append(run, s)
		}
	}
	return runBench(ctx, run, sizes, false, "", "", stdout)
}

func runBench(ctx context.Context, run []benchScenario, sizes benchSizes, quick bool, dir, jsonOut string, stdout io.Writer) error {
	start := time.Now()
	if dir == "" {
		d, err := os.MkdirTemp("", "nightcall-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	rep := benchReport{Date: time.Now().UTC().Format(time.DateOnly), Machine: machine(), Quick: quick}
	env := &benchEnv{sizes: sizes, dir: dir, out: stdout}
	defer env.closeLog()
	fmt.Fprintf(stdout, "nightcall bench, %s, %s, %d CPUs, load %s\n", rep.Date, rep.Machine.CPU, rep.Machine.CPUs, rep.Machine.LoadBefore)
	for _, s := range run {
		rep.Scenarios = append(rep.Scenarios, s.name)
		fmt.Fprintf(stdout, "\n== %s: %s\n", s.name, s.what)
		t := time.Now()
		res, err := s.run(ctx, env)
		if err != nil {
			fmt.Fprintf(stdout, "   failed: %v\n", err)
			rep.Errors = append(rep.Errors, s.name+": "+err.Error())
			if ctx.Err() != nil {
				break
			}
			continue
		}
		printResults(stdout, res)
		fmt.Fprintf(stdout, "   (%.1f s)\n", time.Since(t).Seconds())
		rep.Results = append(rep.Results, res...)
	}
	rep.Machine.LoadAfter = loadavg()
	rep.Took = time.Since(start).Seconds()
	fmt.Fprintf(stdout, "\n== summary (%.0f s, load at the end %s)\n", rep.Took, rep.Machine.LoadAfter)
	printResults(stdout, rep.Results)
	if jsonOut != "" {
		if err := os.MkdirAll(filepath.Dir(jsonOut), 0o755); err != nil {
			return err
		}
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote %s\n", jsonOut)
	}
	if len(rep.Errors) > 0 {
		return fmt.Errorf("%d scenario(s) failed: %s", len(rep.Errors), strings.Join(rep.Errors, "; "))
	}
	return nil
}

func printResults(w io.Writer, res []benchResult) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "   scenario\tfigure\tvalue\tbaseline\tratio\tgoal\tmet\t")
	for _, r := range res {
		base, ratio, met := "—", "—", ""
		if r.BaselineValue != nil {
			base = fmt.Sprintf("%s (%s)", num(*r.BaselineValue), r.Baseline)
		}
		if r.Ratio != nil {
			ratio = fmt.Sprintf("%.2f×", *r.Ratio)
		}
		if r.Met != nil {
			met = map[bool]string{true: "yes", false: "NO"}[*r.Met]
		}
		fmt.Fprintf(tw, "   %s\t%s\t%s %s\t%s\t%s\t%s\t%s\t\n", r.Scenario, r.Figure, num(r.Value), r.Unit, base, ratio, r.Goal, met)
	}
	tw.Flush()
}

func num(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// result builds a benchResult; a baseline of 0 is left out.
func result(scenario, figure, unit string, value float64, baseline string, baseValue float64, goal string, met *bool) benchResult {
	r := benchResult{Scenario: scenario, Figure: figure, Unit: unit, Value: value, Goal: goal, Met: met}
	if baseline != "" && baseValue != 0 {
		b, ratio := baseValue, value/baseValue
		r.Baseline, r.BaselineValue, r.Ratio = baseline, &b, &ratio
	}
	return r
}

func met(ok bool) *bool { return &ok }

func machine() benchMachine {
	m := benchMachine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version(), LoadBefore: loadavg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p+99)/100 - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
