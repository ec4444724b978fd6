package walwatch

import (
	"log/slog"
	"time"
)

// StartMode says where a Watcher begins reading.
type StartMode int

// Start modes.
const (
	// StartLive follows from the end of the logs, after first reading back
	// the current file (silently) to learn the present state: a fault that
	// began before the watcher started is reported as its first event.
	StartLive StartMode = iota
	// StartReplay reads every existing file from its start, oldest first,
	// then closes the Events channel.
	StartReplay
	// StartResume follows from Config.Resume (a Position saved from an
	// earlier Event or Watcher.Position), so that nothing is missed or
	// repeated across a restart of the embedding process.
	StartResume
)

// Config configures a Watcher. Zero fields mean the documented defaults.
type Config struct {
	// LogDir is the directory holding the log files. If empty it is derived
	// from DataDir's log_directory (default "log", "pg_log" before 10).
	LogDir string
	// DataDir is the staging server's data directory. Optional: when set,
	// log_directory, log_destination and log_line_prefix are read from its
	// postgresql.conf and postgresql.auto.conf (following include,
	// include_if_exists and include_dir), and
	// current_logfiles (10+) names the current file.
	DataDir string
	// Format of the files to follow. FormatAuto: from DataDir's
	// log_destination, else current_logfiles (DataDir's, or beside
	// LogDir), else what the files hold: jsonlog if any file is, else
	// csvlog if any is, else stderr (a structured directory always holds
	// the collector's small .log files too).
	Format Format
	// Prefix is log_line_prefix for stderr logs, as the server's setting
	// (any escapes, padding and literal text). Empty: from DataDir's
	// configuration (or its version's default), else inferred from the
	// lines of the newest file.
	Prefix string
	// PrefixEmpty says log_line_prefix is '' (9.x's default: each line
	// starts with its severity), which an empty Prefix cannot say.
	PrefixEmpty bool
	// Pattern is a filepath.Match pattern for the file names to follow.
	// Default: derived from DataDir's log_filename if set, else by format:
	// *.csv, *.json, or any other file for stderr (except compressed files
	// and the server's own files).
	Pattern string
	// Start is where to begin (default StartLive); Resume the position for
	// StartResume.
	Start  StartMode
	Resume Position
	// PollInterval is how often the directory is rescanned as a safety net
	// for what inotify misses (NFS and other network file systems). Default
	// one minute, as the original product; negative disables polling.
	PollInterval time.Duration
	// PollOnly disables fsnotify: only the periodic poll finds new data.
	PollOnly bool
	// Grace suppresses outages shorter than it (default 0: any stop is a
	// fault, as in the original).
	Grace time.Duration
	// TimelineSwitchWait is how long "replication terminated by primary
	// server" is held for a timeline switch to explain it before it becomes
	// a fault (default 1s). Any later fault record settles it at once.
	TimelineSwitchWait time.Duration
	// ConnString, if set, connects to the staging server to confirm each
	// transition with pg_stat_wal_receiver (9.6+) and to learn the initial
	// state when the logs do not tell. The logs stay the trigger.
	ConnString string
	// ConfirmTimeout bounds each confirmation (default 2s).
	ConfirmTimeout time.Duration
	// Location resolves zone abbreviations in log times other than UTC/GMT
	// (log_timezone); default time.Local. Numeric zones need nothing.
	Location *time.Location
	// EventBuffer is the capacity of the Events channel (default 64).
	EventBuffer int
	// Logger receives the watcher's own diagnostics; nil discards them.
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.PollInterval == 0 {
		c.PollInterval = time.Minute
	}
	if c.TimelineSwitchWait == 0 {
		c.TimelineSwitchWait = time.Second
	}
	if c.ConfirmTimeout == 0 {
		c.ConfirmTimeout = 2 * time.Second
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	if c.EventBuffer <= 0 {
		c.EventBuffer = 64
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}
