package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nightcall-health/nightcall/events/sqlite"
)

func bench(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "paging" {
		fs := flag.NewFlagSet("bench paging", flag.ContinueOnError)
		sockets := fs.Int("sockets", 1000, "connected consultant sockets")
		raises := fs.Int("raises", 30, "escalations raised")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return benchPaging(ctx, *sockets, *raises, stdout)
	}
	if len(args) > 0 && args[0] == "video-clients" {
		return videoClients(args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "video" {
		fs := flag.NewFlagSet("bench video", flag.ContinueOnError)
		calls := fs.Int("calls", 20, "two-party calls")
		pps := fs.Int("pps", 150, "video packets per second per peer")
		payload := fs.Int("payload", 1200, "video payload bytes (150 × 1200 B ≈ 1.44 Mbps)")
		measure := fs.Duration("measure", 10*time.Second, "measuring window")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return benchVideo(ctx, *calls, *pps, *payload, *measure, stdout)
	}
	if len(args) > 0 && args[0] == "audit" {
		fs := flag.NewFlagSet("bench audit", flag.ContinueOnError)
		n := fs.Int("n", 1000000, "events in the log")
		queries := fs.Int("queries", 50, "queries to time")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return benchAudit(ctx, *n, *queries, stdout)
	}
	if len(args) == 0 || args[0] != "append" {
		return errors.New("usage: nightcall bench append [-n 3000] | nightcall bench paging [-sockets 1000] [-raises 30] | nightcall bench audit [-n 1000000] | nightcall bench video [-calls 20]")
	}
	fs := flag.NewFlagSet("bench append", flag.ContinueOnError)
	n := fs.Int("n", 3000, "appends per run")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "nightcall-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(stdout, "SQLite append, one event per transaction, synchronous=FULL, n=%d, %s\n\n", *n, time.Now().UTC().Format(time.DateOnly))
	fmt.Fprintf(stdout, "%-28s %12s %10s %10s\n", "", "events/s", "p50 µs", "p99 µs")
	var rates []float64
	for _, c := range []struct {
		name string
		fn   func(context.Context, string, int) ([]time.Duration, error)
	}{{"raw INSERT (baseline)", sqlite.BenchRawInsert}, {"store Append", sqlite.BenchAppend}} {
		lat, err := c.fn(ctx, filepath.Join(dir, c.name+".db"), *n)
		if err != nil {
			return err
		}
		var sum time.Duration
		for _, l := range lat {
			sum += l
		}
		slices.Sort(lat)
		rate := float64(len(lat)) / sum.Seconds()
		rates = append(rates, rate)
		fmt.Fprintf(stdout, "%-28s %12.0f %10d %10d\n", c.name, rate, lat[len(lat)/2].Microseconds(), lat[(len(lat)*99+99)/100-1].Microseconds())
	}
	fmt.Fprintf(stdout, "\nstore / baseline throughput: %.2f\n", rates[1]/rates[0])
	return nil
}
