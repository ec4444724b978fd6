// Command link drives a staging with stage.Linker from the command line,
// and keeps it watched as a service.
//
//	link [-config pgstage.json] [-json] [-v] [-log text|json] [-http addr] command
//
// Commands: link (create the staging), resync, snapshot, sync, status,
// watch (print each event until interrupted), disable, enable, and run
// (keep the staging watched until SIGTERM or SIGINT, logging each event,
// with /metrics and /healthz when an HTTP address is given; see
// examples/pgstage-link.service). Every command but link opens the staging
// linked before (from its state file) and carries on.
//
// # Configuration file
//
// A JSON object of this program's own (not stage.Config's JSON, not the
// state file). Durations are Go duration strings; unknown fields are
// refused, naming them; the password is never in it (nor in a flag): it
// comes from the environment variable named by "password_env" (default
// PGSTAGE_SOURCE_PASSWORD) or from the file named by "password_file",
// which may start with $CREDENTIALS_DIRECTORY (systemd's LoadCredential).
//
//	{
//	  "backup_path": "/backups/sales",
//	  "source":  {"host": "db1", "port": 5432, "user": "replicator", "connect_timeout": "10s"},
//	  "staging": {"data_dir": "/mnt/staging/sales", "port": 5433, "bin_dir": "/usr/lib/postgresql/15/bin"},
//	  "settings": [{"name": "ssl", "value": "off"}, {"name": "shared_preload_libraries", "comment": true}],
//	  "hooks": {"post_sync": [{"command": "zfs snapshot tank/staging@$(date +%s)"}]},
//	  "stream_timeout": "2m",
//	  "backup_mode": "take", "auto_heal": true,
//	  "password_file": "$CREDENTIALS_DIRECTORY/source-password",
//	  "http_address": "127.0.0.1:9187",
//	  "log_format": "json"
//	}
//
// Required: backup_path, source.host, source.user, staging.data_dir,
// staging.port, staging.bin_dir. Durations: backup_settle (negative turns
// the settle check off), stream_timeout, watch_poll_interval,
// source.connect_timeout. backup_mode "take" (default "external") makes
// link and resync take the backup into backup_path themselves; auto_heal
// makes run resync by itself when a fault needs it (heal-* events).
//
// link creates the staging (run again after a link that was killed, it
// carries on: it stops the server the dead one started and empties what it
// restored); every other command opens the staging linked before (from its
// state file) and carries on.
// With -json every output is JSON (watch: one object per line). Logs go to
// stderr: always for run, with -v for the other commands; -log json (or
// "log_format": "json") writes them as JSON lines, one event per line.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	var o options
	flag.StringVar(&o.configPath, "config", "pgstage.json", "the JSON configuration `file`")
	flag.BoolVar(&o.json, "json", false, "print results as JSON")
	flag.BoolVar(&o.verbose, "v", false, "log each step to stderr")
	flag.StringVar(&o.logFormat, "log", "", "log `format`: text or json (default: the file's log_format, else text)")
	flag.StringVar(&o.httpAddress, "http", "", "run: serve /metrics and /healthz on this `address` (default: the file's http_address; none: off)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: link [-config file] [-json] [-v] [-log text|json] [-http addr] link|resync|snapshot|sync|status|watch|disable|enable|run|snapshots|clone|clones|destroy-clone|delete-snapshot\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 || flag.NArg() > 1 && !strings.Contains(" clone destroy-clone delete-snapshot ", " "+flag.Arg(0)+" ") {
		flag.Usage()
		os.Exit(2)
	}
	o.command, o.args = flag.Arg(0), flag.Args()[1:]
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := &printer{json: o.json}
	if err := runCommand(ctx, o, out); err != nil {
		out.fail(err)
		os.Exit(1)
	}
}

// options are the command line's.
type options struct {
	command, configPath    string
	args                   []string // the command's own (clone, destroy-clone, delete-snapshot)
	json, verbose          bool
	logFormat, httpAddress string
}

// logger returns where logs go: stderr for run and with -v, nowhere
// otherwise, as text or JSON lines.
func (o options) logger(fileFormat string) (*slog.Logger, error) {
	if o.command != "run" && !o.verbose {
		return slog.New(slog.DiscardHandler), nil
	}
	format := o.logFormat
	if format == "" {
		format = fileFormat
	}
	return newLogger(os.Stderr, format)
}

func newLogger(w io.Writer, format string) (*slog.Logger, error) {
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("-log %q is not a log format: use text or json", format)
}
