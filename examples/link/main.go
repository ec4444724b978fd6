// Command link drives a staging with stage.Linker from the command line.
//
//	link [-config pgstage.json] [-json] link|resync|snapshot|sync|status|watch|disable|enable
//	link [-config pgstage.json] [-json] snapshots|clone|clones|destroy-clone|delete-snapshot [args] (see clone.go)
//
// The configuration is a JSON file holding a stage.Config (its JSON field
// names), plus where the source password comes from: "password_env" (the
// name of an environment variable, default PGSTAGE_SOURCE_PASSWORD) or
// "password_file" (a file holding only the password). The password is never
// a flag, so it never shows in the process list. For example:
//
//	{
//	  "backup_path": "/backups/sales",
//	  "source":  {"host": "db1", "port": 5432, "user": "replicator"},
//	  "staging": {"data_dir": "/mnt/staging/sales", "port": 5433, "bin_dir": "/usr/lib/postgresql/15/bin"},
//	  "settings": [{"name": "ssl", "value": "off"}, {"name": "shared_preload_libraries", "comment": true}],
//	  "hooks": {"post_sync": [{"command": "zfs snapshot tank/staging@$(date +%s)"}]},
//	  "password_file": "/etc/pgstage/sales.password"
//	}
//
// Durations (stream_timeout, backup_settle, ...) are in nanoseconds, as
// encoding/json writes a time.Duration.
//
// link creates the staging (run again after a link that was killed, it
// carries on: it stops the server the dead one started and empties what it
// restored); every other command opens the staging linked before (from its
// state file) and carries on. watch prints one line per
// event until interrupted. With -json every output is JSON (watch: one
// object per line), for tooling.
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
	"strings"
	"syscall"
	"time"

	"github.com/pgstage/pgstage/stage"
)

// fileConfig is the JSON configuration file: stage.Config's fields, flat,
// plus where the password comes from.
type fileConfig struct {
	BackupPath        string               `json:"backup_path"`
	WALPath           string               `json:"wal_path,omitempty"`
	StreamWhenNoWAL   bool                 `json:"stream_when_no_wal,omitempty"`
	VerifyBackup      bool                 `json:"verify_backup,omitempty"`
	BackupSettle      time.Duration        `json:"backup_settle,omitempty"`
	Source            stage.Source         `json:"source"`
	Staging           stage.Staging        `json:"staging"`
	Settings          []stage.Setting      `json:"settings,omitempty"`
	Hooks             stage.Hooks          `json:"hooks,omitempty"`
	StreamTimeout     time.Duration        `json:"stream_timeout,omitempty"`
	WatchPollInterval time.Duration        `json:"watch_poll_interval,omitempty"`
	WatchPollOnly     bool                 `json:"watch_poll_only,omitempty"`
	Snapshots         stage.SnapshotConfig `json:"snapshots,omitzero"`

	PasswordEnv  string `json:"password_env,omitempty"`
	PasswordFile string `json:"password_file,omitempty"`
}

func (fc fileConfig) config() stage.Config {
	return stage.Config{
		BackupPath: fc.BackupPath,
		Restore: stage.RestoreConfig{WALPath: fc.WALPath, StreamWhenNoWAL: fc.StreamWhenNoWAL,
			Verify: fc.VerifyBackup, Settle: fc.BackupSettle},
		Source: fc.Source, Staging: fc.Staging, Settings: fc.Settings, Hooks: fc.Hooks,
		StreamTimeout: fc.StreamTimeout,
		Watch:         stage.WatchConfig{PollInterval: fc.WatchPollInterval, PollOnly: fc.WatchPollOnly},
		Snapshots:     fc.Snapshots,
	}
}

func main() {
	configPath := flag.String("config", "pgstage.json", "the JSON configuration `file`")
	asJSON := flag.Bool("json", false, "print JSON")
	verbose := flag.Bool("v", false, "log each step to stderr")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: link [-config file] [-json] [-v] link|resync|snapshot|sync|status|watch|disable|enable|snapshots|clone|clones|destroy-clone|delete-snapshot\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 || flag.NArg() > 1 && !strings.Contains(" clone destroy-clone delete-snapshot ", " "+flag.Arg(0)+" ") {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := &printer{json: *asJSON}
	if err := run(ctx, flag.Arg(0), *configPath, *verbose, out); err != nil {
		out.fail(err)
		os.Exit(1)
	}
}

func run(ctx context.Context, command, configPath string, verbose bool, out *printer) error {
	cfg, err := load(configPath)
	if err != nil {
		return err
	}
	if verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if !out.json {
		cfg.Progress = func(p stage.Progress) {
			if p.Step != "" && p.Done == 0 {
				fmt.Printf("[%3.0f%%] %s: %s\n", p.Percent, p.Step, p.Message)
			}
		}
	}

	var l *stage.Linker
	if command == "link" {
		l, err = stage.New(cfg)
	} else {
		l, err = stage.Open(ctx, cfg)
	}
	if err != nil {
		return err
	}
	defer l.Close()

	switch command {
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
		if command == "sync" {
			s, err = l.Sync(ctx)
		} else {
			s, err = l.Snapshot(ctx)
		}
		if err == nil {
			out.snapshot(s)
			return nil
		}
	case "status":
	case "watch":
		return watch(ctx, l, out)
	case "snapshots", "clone", "clones", "destroy-clone", "delete-snapshot":
		return snapCommand(ctx, l, command, flag.Args()[1:], out)
	default:
		return fmt.Errorf("unknown command %q", command)
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

// load reads the configuration file and the password.
func load(path string) (stage.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return stage.Config{}, err
	}
	var fc fileConfig
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return stage.Config{}, fmt.Errorf("%s: %w", path, err)
	}
	cfg := fc.config()
	switch {
	case fc.PasswordFile != "":
		b, err := os.ReadFile(fc.PasswordFile)
		if err != nil {
			return cfg, fmt.Errorf("password_file: %w", err)
		}
		cfg.Source.Password = stage.Password(strings.TrimRight(string(b), "\r\n"))
	default:
		name := fc.PasswordEnv
		if name == "" {
			name = "PGSTAGE_SOURCE_PASSWORD"
		}
		pw, ok := os.LookupEnv(name)
		if !ok {
			return cfg, fmt.Errorf("no source password: set %s, or name a password_file in %s", name, path)
		}
		cfg.Source.Password = stage.Password(pw)
		// Hooks and servers this process starts inherit its environment:
		// the password must not travel with it.
		os.Unsetenv(name)
	}
	return cfg, nil
}

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

// printer writes results as text or JSON.
type printer struct{ json bool }

func (p *printer) emit(v any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func (p *printer) fail(err error) {
	if p.json {
		p.emit(map[string]string{"error": err.Error()})
		return
	}
	fmt.Fprintln(os.Stderr, "error:", err)
	var f *stage.Fault
	if errors.As(err, &f) && f.NeedsResync {
		fmt.Fprintln(os.Stderr, "this fault needs a resync: link -config ... resync")
	}
}

func (p *printer) snapshot(s *stage.Snapshot) {
	if p.json {
		p.emit(s)
		return
	}
	fmt.Printf("snapshot %s: timeline %d, replayed up to %s (received %s), backup %s\n",
		s.Time.Format("2006-01-02 15:04:05Z07:00"), s.Timeline, s.ReplayLSN, s.ReceiveLSN, s.Backup)
	snapshotData(s)
}

func (p *printer) status(st stage.Status) {
	if p.json {
		p.emit(st)
		return
	}
	fmt.Printf("state:     %s\n", st.State)
	if st.Backup != nil {
		fmt.Printf("backup:    %s (%s, PostgreSQL %s)\n", st.Backup.Name, st.Backup.Location, st.Backup.PGVersion)
		for _, pb := range st.Backup.PassedOver {
			fmt.Printf("           passed over %s: %s\n", pb.Name, pb.Reason)
		}
	}
	if st.Running {
		fmt.Printf("replay:    %s (received %s, %d bytes behind)\n", st.ReplayLSN, st.ReceiveLSN, st.ReplayLagBytes)
	}
	if f := st.Fault; f != nil {
		fmt.Printf("fault:     %s since %s: %s\n           what to do: %s\n", f.Reason, f.Since.Format("2006-01-02 15:04:05Z07:00"), f.Message, stage.Advice(f.Reason))
	} else if f := st.LastFault; f != nil {
		fmt.Printf("last fault: %s from %s to %s\n", f.Reason, f.Since.Format("15:04:05"), f.Cleared.Format("15:04:05"))
	}
	fmt.Printf("snapshots: %d\n", st.Snapshots)
	if st.Job != "" {
		fmt.Printf("unfinished: %s at step %s: run it again\n", st.Job, st.Step)
	}
}
