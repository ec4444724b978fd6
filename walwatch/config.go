package walwatch

import (
	"bufio"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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
	// log_destination, else current_logfiles, else the extension of the
	// newest file (.json, .csv, anything else is stderr).
	Format Format
	// Prefix is log_line_prefix for stderr logs. Empty: from DataDir's
	// configuration, else sniffed from the newest file, else DefaultPrefix.
	Prefix string
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

// serverSettings reads the few logging settings walwatch needs from a data
// directory's configuration files, following include, include_if_exists and
// include_dir as the server does (later lines and postgresql.auto.conf win).
func serverSettings(dataDir string) map[string]string {
	set := map[string]string{}
	readConf(filepath.Join(dataDir, "postgresql.conf"), set, 0)
	readConf(filepath.Join(dataDir, "postgresql.auto.conf"), set, 0)
	return set
}

// maxIncludeDepth is the server's limit on nested includes.
const maxIncludeDepth = 10

// readConf reads one file into set. Relative include paths are resolved
// against the including file's directory; include_dir reads the directory's
// *.conf files in name order. A missing file is skipped: the server refuses
// to start on a missing include, so there is nothing more to learn.
func readConf(path string, set map[string]string, depth int) {
	if depth > maxIncludeDepth {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := confLine(sc.Text())
		if !ok {
			continue
		}
		switch k {
		case "include", "include_if_exists", "include_dir":
			if !filepath.IsAbs(v) {
				v = filepath.Join(filepath.Dir(path), v)
			}
			if k != "include_dir" {
				readConf(v, set, depth+1)
				continue
			}
			ents, _ := os.ReadDir(v) // sorted by name
			for _, e := range ents {
				if n := e.Name(); !e.IsDir() && !strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".conf") {
					readConf(filepath.Join(v, n), set, depth+1)
				}
			}
		case "log_directory", "log_destination", "log_line_prefix", "log_filename", "logging_collector":
			set[k] = v
		}
	}
}

// confLine splits "name [=] value [# comment]" with a quoted or bare value.
func confLine(s string) (string, string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || s[0] == '#' {
		return "", "", false
	}
	i := strings.IndexAny(s, " \t=")
	if i <= 0 {
		return "", "", false
	}
	k := strings.ToLower(s[:i])
	s = strings.TrimLeft(s[i:], " \t")
	s = strings.TrimPrefix(s, "=")
	s = strings.TrimLeft(s, " \t")
	if s == "" {
		return "", "", false
	}
	if s[0] != '\'' {
		if j := strings.IndexAny(s, " \t#"); j >= 0 {
			s = s[:j]
		}
		return k, s, true
	}
	var v strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' && i+1 < len(s) && s[i+1] == '\'':
			v.WriteByte('\'')
			i++
		case c == '\'':
			return k, v.String(), true
		case c == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				v.WriteByte('\n')
			case 't':
				v.WriteByte('\t')
			default:
				v.WriteByte(s[i])
			}
		default:
			v.WriteByte(c)
		}
	}
	return "", "", false
}

// currentLogfile reads current_logfiles (10+): the current file for format,
// as a path relative to the data directory.
func currentLogfile(dataDir string, format Format) (string, Format) {
	b, err := os.ReadFile(filepath.Join(dataDir, "current_logfiles"))
	if err != nil {
		return "", FormatAuto
	}
	var first string
	var firstFormat Format
	for _, l := range strings.Split(string(b), "\n") {
		dest, path, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		f := Format(dest)
		if f == format {
			return path, f
		}
		// Structured formats first: they carry SQLSTATE and backend type.
		if first == "" || f == FormatJSON || (f == FormatCSV && firstFormat != FormatJSON) {
			first, firstFormat = path, f
		}
	}
	if format != FormatAuto {
		return "", FormatAuto
	}
	return first, firstFormat
}
