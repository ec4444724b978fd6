package main

import (
	"context"
	"fmt"

	"github.com/pgstage/pgstage/stage"
)

func runCommand(ctx context.Context, o options, out *printer) error {
	switch o.command {
	case "link", "resync", "snapshot", "sync", "status", "watch", "disable", "enable", "run":
	case "snapshots", "clone", "clones", "destroy-clone", "delete-snapshot":
	default:
		return fmt.Errorf("unknown command %q: use link, resync, snapshot, sync, status, watch, disable, enable, run, snapshots, clone, clones, destroy-clone or delete-snapshot", o.command)
	}
	s, err := load(o.configPath)
	if err != nil {
		return err
	}
	log, err := o.logger(s.logFormat)
	if err != nil {
		return err
	}
	cfg := s.stage
	cfg.Logger = log
	if !out.json && o.command != "run" {
		cfg.Progress = func(p stage.Progress) {
			if p.Step != "" && p.Done == 0 {
				fmt.Printf("[%3.0f%%] %s: %s\n", p.Percent, p.Step, p.Message)
			}
		}
	}

	if o.command == "run" {
		addr := o.httpAddress
		if addr == "" {
			addr = s.httpAddress
		}
		if err := runService(ctx, cfg, log, addr); err != nil {
			log.Error("run failed", "err", err)
			return errLogged{err}
		}
		return nil
	}

	var l *stage.Linker
	if o.command == "link" {
		l, err = stage.New(cfg)
	} else {
		l, err = stage.Open(ctx, cfg)
	}
	if err != nil {
		return err
	}
	defer l.Close()

	switch o.command {
	case "link":
		err = l.Link(ctx)
	case "resync":
		err = l.Resync(ctx)
	case "enable":
		err = l.Enable(ctx)
	case "disable":
		err = l.Disable(ctx)
	case "snapshot", "sync":
		var s *stage.Snapshot
		if o.command == "sync" {
			s, err = l.Sync(ctx)
		} else {
			s, err = l.Snapshot(ctx)
		}
		if err == nil {
			out.snapshot(s)
			return nil
		}
	case "snapshots", "clone", "clones", "destroy-clone", "delete-snapshot":
		return snapCommand(ctx, l, o.command, o.args, out)
	case "watch":
		return watch(ctx, l, out)
	}
	if err != nil {
		return err
	}
	st, err := l.Status(ctx)
	if err != nil {
		return err
	}
	out.status(st)
	return nil
}

// errLogged is an error the logger has written already.
type errLogged struct{ error }

func (e errLogged) Unwrap() error { return e.error }

func watch(ctx context.Context, l *stage.Linker, out *printer) error {
	st, err := l.Status(ctx)
	if err != nil {
		return err
	}
	out.status(st)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-l.Events():
			if !ok {
				return nil
			}
			if out.json {
				out.emit(ev)
				continue
			}
			fmt.Println(ev.String())
			if a := stage.Advice(ev.Reason); a != "" {
				fmt.Println("  what to do:", a)
			}
		}
	}
}
