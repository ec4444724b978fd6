package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/pgstage/pgstage/stage"
	"github.com/pgstage/pgstage/stage/monitor"
	"github.com/pgstage/pgstage/walwatch"
)

// shutdownLimit bounds how long run waits for HTTP requests in flight when
// told to stop: systemd's TimeoutStopSec is longer.
const shutdownLimit = 5 * time.Second

// runService opens the staging and serves it until ctx ends.
func runService(ctx context.Context, cfg stage.Config, log *slog.Logger, addr string) error {
	l, err := stage.Open(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			// Told to stop while opening: the position is as the last
			// run saved it, and a stop is not a failure to restart on.
			log.Info("stopped while opening", "cause", context.Cause(ctx).Error())
			return nil
		}
		return err
	}
	return serve(ctx, l, log, addr)
}

// serve keeps the opened staging watched until ctx ends, logging each event
// and serving /metrics and /healthz on addr if one is given; then it closes
// the Linker, which saves the watch position, so that the next run reads
// the log on from there: an event is neither missed nor logged twice.
func serve(ctx context.Context, l *stage.Linker, log *slog.Logger, addr string) (err error) {
	defer func() {
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, cerr)
			return
		}
		log.Info("stopped; the watch position is saved")
	}()

	httpErr := make(chan error, 1)
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("http_address: %w: choose a free address, or leave it out", err)
		}
		srv := &http.Server{Handler: monitor.Handler(l, monitor.Options{Clones: func(context.Context) (int, error) { return len(l.Clones()), nil }}), ReadHeaderTimeout: 10 * time.Second}
		go func() { httpErr <- srv.Serve(ln) }()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), shutdownLimit)
			defer cancel()
			srv.Shutdown(sctx)
		}()
		log.Info("serving /metrics and /healthz", "address", ln.Addr().String())
	}

	st, err := l.Status(ctx)
	if err != nil {
		return err
	}
	log.Info("watching", "state", st.State, "data_dir", l.Config().Staging.DataDir)
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping", "cause", context.Cause(ctx).Error())
			return nil
		case err := <-httpErr:
			return fmt.Errorf("http: %w", err)
		case ev, ok := <-l.Events():
			if !ok {
				return nil
			}
			logEvent(log, ev)
		}
	}
}

// logEvent writes one event as one log record.
func logEvent(log *slog.Logger, ev walwatch.Event) {
	level := slog.LevelInfo
	attrs := []any{"kind", ev.Kind, "message", ev.Message, "log_time", ev.LogTime, "file", ev.File, "line", ev.Line}
	switch ev.Kind {
	case walwatch.KindFault, walwatch.KindPromoted, walwatch.KindCrashed, stage.KindHealFailed, stage.KindHealGaveUp:
		level = slog.LevelWarn
	}
	if ev.Reason != "" {
		attrs = append(attrs, "reason", ev.Reason)
		if a := stage.Advice(ev.Reason); a != "" {
			attrs = append(attrs, "advice", a)
		}
	}
	if ev.Detail != "" {
		attrs = append(attrs, "detail", ev.Detail)
	}
	log.Log(context.Background(), level, "replication event", attrs...)
}
