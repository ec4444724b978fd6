// Command watch follows a PostgreSQL standby's log directory and prints one
// line per replication event (with -json, one JSON object per line).
//
//	go run ./examples/watch -log-dir /staging/data/log [-format auto|stderr|csvlog|jsonlog]
//	    [-prefix '%m [%p] '] [-replay] [-json]
//
// With -replay it reads every existing file from its start and exits after
// the last record: with status 1 if a file's records could not be read
// (walwatch.ErrUnreadable: the prefix or format is wrong for it), never
// zero events and success.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pgstage/pgstage/walwatch"
)

func main() {
	var (
		logDir   = flag.String("log-dir", "", "log directory to follow")
		dataDir  = flag.String("data-dir", "", "data directory (log_directory, log_destination and log_line_prefix are read from its configuration)")
		format   = flag.String("format", "auto", "log format: auto, stderr, csvlog or jsonlog")
		prefix   = flag.String("prefix", "", "log_line_prefix of stderr logs (default: from the data directory, else inferred from the lines)")
		noPrefix = flag.Bool("empty-prefix", false, "log_line_prefix is '' (the 9.x default)")
		replay   = flag.Bool("replay", false, "read every existing file from its start, then exit")
		asJSON   = flag.Bool("json", false, "print one JSON object per event")
		poll     = flag.Duration("poll", time.Minute, "rescan interval (the safety net for network file systems)")
		pollOnly = flag.Bool("poll-only", false, "do not use inotify, only poll")
		grace    = flag.Duration("grace", 0, "ignore outages shorter than this")
		conn     = flag.String("conn", "", "connection string of the staging server, to confirm transitions with pg_stat_wal_receiver")
		verbose  = flag.Bool("v", false, "log the watcher's own diagnostics to stderr")
	)
	flag.Parse()
	if *logDir == "" && *dataDir == "" {
		fmt.Fprintln(os.Stderr, "watch: -log-dir or -data-dir is required")
		flag.Usage()
		os.Exit(2)
	}
	f := walwatch.Format(*format)
	if *format == "auto" {
		f = walwatch.FormatAuto
	}
	cfg := walwatch.Config{
		LogDir: *logDir, DataDir: *dataDir, Format: f, Prefix: *prefix, PrefixEmpty: *noPrefix,
		PollInterval: *poll, PollOnly: *pollOnly, Grace: *grace, ConnString: *conn,
	}
	if *replay {
		cfg.Start = walwatch.StartReplay
	}
	if *verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	w, err := walwatch.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "watch:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		w.Close()
	}()

	enc := json.NewEncoder(os.Stdout)
	blind := false
	report := func(err error) {
		fmt.Fprintln(os.Stderr, "watch:", err)
		blind = blind || errors.Is(err, walwatch.ErrUnreadable)
	}
	errs := w.Errors()
	for evs := w.Events(); evs != nil; {
		select {
		case ev, ok := <-evs:
			if !ok {
				evs = nil
				continue
			}
			if *asJSON {
				enc.Encode(ev)
				continue
			}
			reason := ""
			if ev.Reason != "" {
				reason = " (" + string(ev.Reason) + ")"
				if ev.Reason.NeedsResync() {
					reason += " resync needed"
				}
			}
			fmt.Printf("%s %s%s: %s [%s:%d]\n", ev.LogTime.Format("2006-01-02 15:04:05.000 MST"), ev.Kind, reason, ev.Message, ev.File, ev.Line)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			report(err)
		}
	}
	for errs != nil { // closed right after Events
		err, ok := <-errs
		if !ok {
			break
		}
		report(err)
	}
	if blind && *replay {
		os.Exit(1)
	}
}
