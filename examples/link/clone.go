package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/pgstage/pgstage/stage"
)

// The snapshot and clone commands:
//
//	link snapshots                        list the snapshots
//	link delete-snapshot ID               delete one (refused while cloned)
//	link clone [-id NAME] [-port N] [-set name=value ...] SNAPSHOT-ID
//	                                      make a clone and print how to connect
//	link clones                           list the clones
//	link destroy-clone ID                 stop and remove one
func snapCommand(ctx context.Context, l *stage.Linker, command string, args []string, out *printer) error {
	switch command {
	case "snapshots":
		snaps := l.Snapshots()
		if out.json {
			out.emit(snaps)
			return nil
		}
		for _, s := range snaps {
			out.snapshot(&s)
		}
		return nil
	case "delete-snapshot":
		if len(args) != 1 {
			return fmt.Errorf("usage: link delete-snapshot ID")
		}
		return l.DeleteSnapshot(ctx, args[0])
	case "clone":
		return clone(ctx, l, args, out)
	case "clones":
		clones := l.Clones()
		if out.json {
			out.emit(clones)
			return nil
		}
		for _, c := range clones {
			printClone(c)
		}
		return nil
	case "destroy-clone":
		if len(args) != 1 {
			return fmt.Errorf("usage: link destroy-clone ID")
		}
		return l.DestroyClone(ctx, args[0])
	}
	return fmt.Errorf("unknown command %q", command)
}

func clone(ctx context.Context, l *stage.Linker, args []string, out *printer) error {
	fs := flag.NewFlagSet("clone", flag.ContinueOnError)
	var opts stage.CloneOptions
	fs.StringVar(&opts.ID, "id", "", "the clone's `name` (default: from the time)")
	fs.IntVar(&opts.Port, "port", 0, "the clone's `port` (default: a free one)")
	fs.StringVar(&opts.ListenAddresses, "listen", "", "its listen_addresses (default localhost)")
	settings := map[string]string{}
	fs.Func("set", "a setting for the clone, `name=value` (repeatable)", func(s string) error {
		name, value, ok := strings.Cut(s, "=")
		if !ok || name == "" {
			return fmt.Errorf("%q is not name=value", s)
		}
		settings[name] = value
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: link clone [-id NAME] [-port N] [-set name=value ...] SNAPSHOT-ID (link snapshots lists them)")
	}
	opts.Settings = settings
	c, err := l.Clone(ctx, fs.Arg(0), opts)
	if err != nil {
		return err
	}
	if out.json {
		out.emit(c)
		return nil
	}
	printClone(*c)
	return nil
}

func printClone(c stage.Clone) {
	fmt.Printf("clone %s of snapshot %s (%s): ready in %v, %s added\n", c.ID, c.Snapshot, c.Method,
		c.Ready.Round(time.Millisecond), mib(c.ExtraBytes))
	fmt.Printf("  psql %q\n", c.ConnString())
}

// snapshotData says where a snapshot's data is, if it holds any.
func snapshotData(s *stage.Snapshot) {
	if s.Location == "" {
		fmt.Printf("  id %s: positions only\n", s.ID)
		return
	}
	fmt.Printf("  id %s: %s snapshot in %s, %s added, took %v\n", s.ID, s.DataMethod, s.Location,
		mib(s.ExtraBytes), s.Took.Round(time.Millisecond))
}

// mib says a size in MiB, as precise as a listing needs.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
