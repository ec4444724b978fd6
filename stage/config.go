package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pgstage/pgstage/internal/osuser"
	"github.com/pgstage/pgstage/internal/pathx"

	"github.com/pgstage/pgstage/replica"
)

// Config describes one staging: where the backup is, the source it streams
// from, the staging instance, and what to do around each job. Zero fields
// mean the defaults documented on each field.
//
// Config is the API only: the state file keeps its own record of it
// (without the password and the function fields), and a program that reads
// its configuration from a file maps that file onto Config itself.
type Config struct {
	// BackupPath is the one directory holding the backup (required): a
	// PostgreSQL_T<YYYYMMDDhhmmss> folder, the files themselves, or a
	// PostgreSQL_T<YYYYMMDD>.zip, by that precedence (see backupsel).
	BackupPath string
	// Restore says how the backup is chosen and restored (backupsel).
	Restore RestoreConfig
	// BackupMode is BackupExternal (the default) or BackupTake: Link and
	// Resync take a backup into BackupPath first, tuned by Take.
	BackupMode BackupMode
	Take       TakeConfig
	// Heal turns on and tunes auto-heal (off by default).
	Heal HealConfig

	Source  Source
	Staging Staging

	// Settings are applied to the staging postgresql.conf after the standby
	// is configured, in order: a value set, or the name commented out so the
	// server falls back on its default.
	Settings []Setting

	Hooks Hooks

	// StreamTimeout bounds how long Link, Resync and Enable wait for the
	// standby to stream; default 2 minutes.
	StreamTimeout time.Duration
	// Watch tunes the log watcher (walwatch).
	Watch WatchConfig
	// Liveness bounds how soon the staging notices a source it no longer
	// hears from (a silent network partition, a dead host): the zero value
	// means replica's defaults, which end the stream, and raise a fault,
	// within about 10 s (see [Liveness]).
	Liveness Liveness
	// Replay tunes the replay monitor, which raises the faults the log does
	// not show: replay stalled, no walreceiver.
	Replay ReplayConfig

	// Snapshots says where snapshots and clones live, how snapshots hold
	// the data, and the schedule and retention policies.
	Snapshots SnapshotConfig

	// Snapshotter, if set, is called by Snapshot with the consistent point
	// just recorded, e.g. to take a file system snapshot of the mount.
	Snapshotter Snapshotter
	// Logger receives the jobs' steps; nil discards.
	Logger *slog.Logger
	// Progress, if set, is called at each step of a job and as the restore
	// writes data, so a caller can draw a progress bar.
	Progress func(Progress)
}

// RestoreConfig is passed to backupsel when selecting and restoring.
type RestoreConfig struct {
	// WALPath is a folder of WAL segments to add to a backup taken without
	// WAL. Ignored when StreamWhenNoWAL is set.
	WALPath string
	// StreamWhenNoWAL accepts a backup without WAL: the standby streams it
	// from the source. It takes precedence over WALPath.
	StreamWhenNoWAL bool
	// Verify checks every file of the backup against its backup_manifest
	// checksums before restoring (13+). Default: names and sizes only.
	Verify bool
	// Settle is how long backup files must stay unchanged to count as
	// finished; 0 means backupsel's default (2s), negative disables it.
	Settle time.Duration
	// Writers is how many goroutines create and fill the restored files
	// (backupsel.RestoreOptions.Writers); 0 means backupsel's default (4).
	Writers int
}

// WatchConfig is passed to walwatch when following the staging server log.
type WatchConfig struct {
	// PollInterval is how often the log watcher rescans as a safety net
	// for what inotify misses (network file systems); default 1 minute.
	PollInterval time.Duration
	// PollOnly disables inotify: use it when the staging logs live on NFS
	// or another network file system.
	PollOnly bool
	// Logs bounds the staging server's logs (see LogsConfig).
	Logs LogsConfig
}

// ReplayConfig tunes the replay monitor. While the log watcher runs, the
// monitor asks the staging server (pg_stat_wal_receiver and the receive and
// replay positions) every Interval and raises a fault with reason
// [ReasonReplayStalled] when WAL received from the source waits to be
// applied longer than MaxLag and by more than MaxLagBytes (replay paused, a
// recovery conflict held by a long query, a full disk), and one with reason
// [ReasonReceiverDown] when no walreceiver streams for ReceiverGrace while
// the log shows no fault. Each is recovered when its cause is gone. The
// warm standbys of 9.4 and 9.5 take no queries: the monitor stays off there.
type ReplayConfig struct {
	// Interval between two questions; default 1s, so that a stalled replay
	// is seen within a second of its bound (the questions share one kept
	// connection: no fork or authentication each time). A negative
	// Interval turns the monitor off.
	Interval time.Duration `json:"interval,omitempty"`
	// MaxLag is how long received WAL may wait to be applied; default 300s
	// (repmgr's warning).
	MaxLag time.Duration `json:"max_lag,omitempty"`
	// MaxLagBytes is how much received WAL may wait to be applied however
	// long; default 0: any amount waiting longer than MaxLag is a fault.
	MaxLagBytes int64 `json:"max_lag_bytes,omitempty"`
	// ReceiverGrace is how long no walreceiver may stream, with no fault in
	// the log, before it is a fault; default 10s.
	ReceiverGrace time.Duration `json:"receiver_grace,omitempty"`
}

// Liveness is how soon the staging notices a source it no longer hears
// from (see [replica.Liveness]).
type Liveness = replica.Liveness

// Password is the source's password; it prints as [redacted] everywhere
// (see [replica.Password]).
type Password = replica.Password

// Source is the production server the staging streams from.
type Source struct {
	Host string `json:"host"`           // required
	Port int    `json:"port,omitempty"` // default 5432
	// User is the replication role (required); Password its password,
	// which pgstage keeps in memory and in the standby's 0600 passfile only.
	User     string   `json:"user"`
	Password Password `json:"-"`
	// SSLMode is libpq's sslmode; empty means "prefer" as libpq.
	SSLMode string `json:"sslmode,omitempty"`
	// ConnectTimeout bounds each connection to the source; default 10s.
	ConnectTimeout time.Duration `json:"connect_timeout,omitempty"`
}

// Staging is the standby instance on this host.
type Staging struct {
	// DataDir is the staging data directory, the mount location (required,
	// absolute). It must be absent or empty before Link, and its parent
	// must exist.
	DataDir string `json:"data_dir"`
	// Port is the staging server's port (required): a port no other
	// server uses.
	Port int `json:"port"`
	// BinDir holds the staging postgres and pg_ctl (required), of the
	// backup's major version.
	BinDir string `json:"bin_dir"`
	// SocketDir is unix_socket_directories; default "/tmp". The OS user
	// must be able to write into it.
	SocketDir string `json:"socket_dir,omitempty"`
	// OSUser runs the server when this process is root (PostgreSQL refuses
	// root); default "postgres". Ignored when not root.
	OSUser string `json:"os_user,omitempty"`
	// ApplicationName is what the source's pg_stat_replication shows;
	// default "pgstage_" + the base name of DataDir.
	ApplicationName string `json:"application_name,omitempty"`
	// SlotName, if set, makes the standby use that physical replication
	// slot; CreateSlot creates it on the source when missing. A slot keeps
	// WAL on the source while the staging is down.
	SlotName   string `json:"slot_name,omitempty"`
	CreateSlot bool   `json:"create_slot,omitempty"`
	// DBUser is the role used to query the standby over its Unix socket
	// (replay position, snapshots); default "postgres".
	DBUser string `json:"db_user,omitempty"`
	// StateDir holds the lock, the state file and the server log; default
	// DataDir + ".pgstage", beside the data directory so that a resync,
	// which empties the data directory, keeps them.
	StateDir string `json:"state_dir,omitempty"`
}

// Setting is one config setting for the staging postgresql.conf: a value to
// set, or (Comment) the name to comment out.
type Setting struct {
	Name    string `json:"name"`
	Value   string `json:"value,omitempty"`
	Comment bool   `json:"comment,omitempty"`
}

// Defaults.
const (
	DefaultSourcePort     = 5432
	DefaultSocketDir      = "/tmp"
	DefaultOSUser         = osuser.DefaultName
	DefaultDBUser         = "postgres"
	DefaultStreamTimeout  = 2 * time.Minute
	DefaultConnectTimeout = 10 * time.Second
	DefaultReplayInterval = time.Second
	DefaultMaxLag         = 300 * time.Second
	DefaultReceiverGrace  = 10 * time.Second
	stateDirSuffix        = ".pgstage"
)

var (
	settingNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$`)
	appNameRE     = regexp.MustCompile(`[^A-Za-z0-9_.-]`)
)

// withDefaults returns cfg with its zero fields filled in.
func (cfg Config) withDefaults() Config {
	if cfg.Source.Port == 0 {
		cfg.Source.Port = DefaultSourcePort
	}
	if cfg.Source.ConnectTimeout == 0 {
		cfg.Source.ConnectTimeout = DefaultConnectTimeout
	}
	s := &cfg.Staging
	if s.DataDir != "" {
		s.DataDir = filepath.Clean(s.DataDir)
	}
	if s.SocketDir == "" {
		s.SocketDir = DefaultSocketDir
	}
	if s.OSUser == "" {
		s.OSUser = DefaultOSUser
	}
	if s.DBUser == "" {
		s.DBUser = DefaultDBUser
	}
	if s.ApplicationName == "" && s.DataDir != "" {
		s.ApplicationName = appNameRE.ReplaceAllString("pgstage_"+filepath.Base(s.DataDir), "_")
	}
	if s.StateDir == "" && s.DataDir != "" {
		s.StateDir = s.DataDir + stateDirSuffix
	}
	if s.StateDir != "" {
		s.StateDir = filepath.Clean(s.StateDir)
	}
	if cfg.StreamTimeout == 0 {
		cfg.StreamTimeout = DefaultStreamTimeout
	}
	cfg.Replay = cfg.Replay.withDefaults()
	cfg.Snapshots = cfg.Snapshots.withDefaults(s.DataDir)
	return cfg
}

// validate checks what can be checked without touching anything, every
// problem at once.
func (cfg Config) validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if cfg.BackupPath == "" {
		add("BackupPath is empty: name the one directory the backups are dropped into")
	}
	if cfg.Source.Host == "" {
		add("Source.Host is empty: name the source server's host or IP address")
	}
	if cfg.Source.User == "" {
		add("Source.User is empty: name the replication role on the source")
	}
	if p := cfg.Source.Port; p < 1 || p > 65535 {
		add("Source.Port %d is not a TCP port (1-65535)", p)
	}
	s := cfg.Staging
	switch {
	case s.DataDir == "":
		add("Staging.DataDir is empty: name the staging data directory (the mount location)")
	case !filepath.IsAbs(s.DataDir):
		add("Staging.DataDir %q is relative: give an absolute path", s.DataDir)
	case s.DataDir == "/":
		add("Staging.DataDir is /: name a directory of its own")
	}
	if s.Port < 1 || s.Port > 65535 {
		add("Staging.Port %d is not a TCP port (1-65535): choose a free port for the staging instance", s.Port)
	}
	if s.Port == cfg.Source.Port && isLocal(cfg.Source.Host) {
		add("Staging.Port %d is the source's port on this host: choose another port", s.Port)
	}
	if s.BinDir == "" {
		add("Staging.BinDir is empty: name the directory holding the staging postgres and pg_ctl")
	}
	if !filepath.IsAbs(s.SocketDir) {
		add("Staging.SocketDir %q is relative: give an absolute path", s.SocketDir)
	} else if n := len(filepath.Join(s.SocketDir, ".s.PGSQL."+strconv.Itoa(s.Port))); n > 107 {
		add("Staging.SocketDir %q is too long for a Unix socket path (%d bytes, at most 107): choose a shorter one", s.SocketDir, n)
	}
	if len(s.ApplicationName) > 63 {
		add("Staging.ApplicationName %q is longer than 63 bytes", s.ApplicationName)
	}
	if s.CreateSlot && s.SlotName == "" {
		add("Staging.CreateSlot is set without Staging.SlotName: name the slot")
	}
	if s.StateDir != "" && s.DataDir != "" && pathx.Within(s.StateDir, s.DataDir) {
		add("Staging.StateDir %q is inside the data directory: a resync empties it; put it beside", s.StateDir)
	}
	if w := cfg.Restore.Writers; w < 0 || w > 64 {
		add("Restore.Writers is %d: give 1 to 64, or 0 for the default (4)", w)
	}
	if r := cfg.Replay; r.MaxLag < 0 || r.MaxLagBytes < 0 || r.ReceiverGrace < 0 {
		add("Replay: MaxLag, MaxLagBytes and ReceiverGrace may not be negative (set Replay.Interval negative to turn the monitor off)")
	}
	seen := map[string]bool{}
	for i, st := range cfg.Settings {
		name := strings.ToLower(st.Name)
		switch {
		case !settingNameRE.MatchString(st.Name):
			add("Settings[%d]: %q is not a parameter name", i, st.Name)
		case seen[name]:
			add("Settings[%d]: %s is listed twice: keep one", i, st.Name)
		case st.Comment && st.Value != "":
			add("Settings[%d]: %s is both set (%q) and commented out: choose one", i, st.Name, st.Value)
		case strings.ContainsRune(st.Value, 0):
			add("Settings[%d]: the value of %s holds a zero byte", i, st.Name)
		}
		seen[name] = true
	}
	for point, hs := range cfg.Hooks.byPoint() {
		for i, h := range hs {
			if (h.Command == "") == (h.Func == nil) {
				add("Hooks.%s[%d]: set exactly one of Command and Func", point, i)
			}
		}
	}
	if _, err := osuser.RunAs(s.OSUser); err != nil {
		add("Staging.OSUser: %v", err)
	}
	errs = append(errs, cfg.modeProblems()...)
	errs = append(errs, cfg.Snapshots.validate(s.DataDir))
	return errors.Join(errs...)
}

func isLocal(host string) bool {
	switch host {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return strings.HasPrefix(host, "/")
}

// Snapshotter records a snapshot outside PostgreSQL, for example a file
// system snapshot of the staging mount.
type Snapshotter interface {
	TakeSnapshot(ctx context.Context, s Snapshot) error
}

// SnapshotterFunc adapts a function to Snapshotter.
type SnapshotterFunc func(ctx context.Context, s Snapshot) error

// TakeSnapshot calls f.
func (f SnapshotterFunc) TakeSnapshot(ctx context.Context, s Snapshot) error { return f(ctx, s) }
