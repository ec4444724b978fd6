package stage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgstage/pgstage/internal/pgver"
	"github.com/pgstage/pgstage/pgconf"
	"github.com/pgstage/pgstage/walwatch"
)

// The staging server logs through the logging collector into the state
// directory's log directory, one file per size step, and the Linker prunes
// the oldest: a staging that runs for a year does not fill the disk.
// pg_ctl -l still names earlyLog, which gets only what the postmaster
// writes before the collector starts (a bad setting, a port in use).
const (
	logPattern  = "staging-*.log"
	logFilename = "staging-%Y%m%d-%H%M%S.log"
	earlyLog    = "staging.log"
)

// LogsConfig bounds the staging server's logs: once the watcher has read
// them, Keep files of about RotationSize each, the one being written
// included (one more after a rotation until the next prune: up to a second
// while the server logs, up to 10 s when it starts again after a quiet
// spell): (Keep+1) x RotationSize at most, 60 MiB by default, plus the
// early-start file (under 1 MiB). A file the watcher has not read yet is
// never removed.
type LogsConfig struct {
	// RotationSize is log_rotation_size: past it the logging collector
	// starts a new file. Default 10 MiB; rounded up to a kilobyte. The
	// file name has seconds, so what is logged within one second stays
	// in one file, past the size if need be.
	RotationSize int64
	// Keep is how many files are kept; older ones are removed once the
	// watcher has read them. Default 5.
	Keep int
}

// Defaults of LogsConfig.
const (
	defaultRotationSize = 10 << 20
	defaultKeepLogs     = 5
)

func (c LogsConfig) rotationKB() int64 {
	if c.RotationSize <= 0 {
		return defaultRotationSize >> 10
	}
	return (c.RotationSize + 1023) >> 10
}

func (c LogsConfig) keep() int {
	if c.Keep <= 0 {
		return defaultKeepLogs
	}
	return c.Keep
}

// logRules are the version-specific rules for the staging's log.
type logRules struct {
	// prefix is the log_line_prefix pgstage sets: never the source's (any
	// prefix, or 9.x's empty default), so the watcher always knows it. %e
	// (SQLSTATE, since 8.4) and %b (backend type, since 13) let walwatch
	// raise a walreceiver error missing from its catalogue as a fault.
	prefix string
}

var logTable = pgver.Table[logRules]{
	{Range: pgver.Before(pgver.V13), Rules: logRules{prefix: "%m [%p] %e "}},
	{Range: pgver.Since(pgver.V13), Rules: logRules{prefix: "%m [%p] %e [%b] "}},
}

// logSettings are the settings pgstage sets on every staging of major m
// for the watcher to read its log and for the log to stay bounded.
func logSettings(m pgver.Major, dir string, c LogsConfig) []Setting {
	r, _ := logTable.For(m)
	return []Setting{
		{Name: "logging_collector", Value: "on"},
		{Name: "log_destination", Value: "stderr"},
		{Name: "log_directory", Value: dir},
		{Name: "log_filename", Value: logFilename},
		{Name: "log_rotation_size", Value: fmt.Sprintf("%dkB", c.rotationKB())},
		{Name: "log_rotation_age", Value: "0"},
		{Name: "log_truncate_on_rotation", Value: "off"},
		{Name: "log_line_prefix", Value: r.prefix},
		{Name: "lc_messages", Value: "C"},
	}
}

// logReserved are the log settings the user's settings may not change.
var logReserved = map[string]string{
	"logging_collector":        "the staging logs through the collector into files pgstage rotates and prunes",
	"log_destination":          "the watcher follows the collector's stderr files",
	"log_directory":            "the staging logs into the state directory's log directory",
	"log_filename":             "the watcher follows staging-*.log",
	"log_rotation_size":        "use Watch.Logs.RotationSize",
	"log_rotation_age":         "the staging's logs rotate by size (Watch.Logs)",
	"log_truncate_on_rotation": "a truncated file would lose what the watcher has not read",
	"log_line_prefix":          "pgstage sets its own so that the watcher reads every record",
	"lc_messages":              "the watcher reads the server's messages in English",
}

// watchLog is how the watcher reads the staging's log: the prefix is the
// one the staging's configuration sets (pgstage's own, or for a staging
// linked by an older pgstage, what it has), said exactly, "" included.
type watchLog struct {
	prefix  string
	empty   bool
	pattern string
}

func readWatchLog(dataDir string) watchLog {
	wl := watchLog{pattern: earlyLog}
	conf, err := pgconf.Load(dataDir)
	if err != nil {
		m, _ := pgver.ReadDataDir(dataDir)
		r, _ := logTable.For(m)
		return watchLog{prefix: r.prefix, pattern: logPattern}
	}
	if s, ok := conf.Get("logging_collector"); ok && isOn(s.Value) {
		wl.pattern = logPattern
	}
	if s, ok := conf.Get("log_line_prefix"); ok {
		wl.prefix = s.Value
	} else {
		m, _ := pgver.ReadDataDir(dataDir)
		r, _ := settingTable.For(m)
		wl.prefix = r.defaultPrefix
	}
	wl.empty = wl.prefix == ""
	return wl
}

func isOn(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "true", "yes", "1", "t", "y":
		return true
	}
	return false
}

// trimEarlyLog empties the pg_ctl -l file when it has grown past 1 MiB:
// it only gets the lines of each start before the collector takes over,
// but a server that fails to start again and again appends to it.
func (l *Linker) trimEarlyLog() {
	if st, err := os.Stat(l.logFile()); err == nil && st.Size() > 1<<20 {
		if err := os.Truncate(l.logFile(), 0); err != nil {
			l.log.Warn("emptying the early-start log", "file", l.logFile(), "err", err)
		}
	}
}

// currentLog is the file the collector writes now: the newest staging-*.log
// (the early-start file when there is none, as for an older staging).
func (l *Linker) currentLog() string {
	names, _ := filepath.Glob(filepath.Join(l.logDir(), logPattern))
	best, bestTime := l.logFile(), time.Time{}
	for _, n := range names {
		if st, err := os.Stat(n); err == nil && st.ModTime().After(bestTime) {
			best, bestTime = n, st.ModTime()
		}
	}
	return best
}

// prune removes the oldest staging-*.log beyond those kept, never one the
// watcher has not read to its end (done is the position of the last event
// handled).
func (l *Linker) prune(done walwatch.Position) {
	removed, err := walwatch.Prune(l.logDir(), logPattern, l.cfg.Watch.Logs.keep(), done)
	if err != nil {
		l.log.Warn("pruning the staging server logs", "err", err)
	}
	for _, f := range removed {
		l.log.Debug("removed an old staging server log", "file", f)
	}
}

// How often the logs are pruned besides after each event: a staging that
// logs much but has no event must stay bounded too. While the position the
// watcher has read up to moves, every pruneInterval; while it stands still
// the watcher has finished no file and there is nothing new to prune, so
// the wait grows to pruneIdle. A wake each second is most of what an idle
// Linker costs: a bare 1 s ticker alone measured 0.01-0.05% of a core
// here, against a 0.1% budget for the whole Linker.
const (
	pruneInterval = time.Second
	pruneIdle     = 10 * time.Second
)

// pruneLoop prunes now and then with the position the watcher has read up
// to (not the last event's, which a quiet staging never moves) until done
// closes.
func (l *Linker) pruneLoop(w watcher, done <-chan struct{}) {
	t := time.NewTimer(pruneInterval)
	defer t.Stop()
	var last walwatch.Position
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		pos := w.Position()
		if pos.File == last.File && pos.Ino == last.Ino && pos.Offset == last.Offset {
			t.Reset(pruneIdle)
			continue
		}
		last = pos
		l.prune(pos)
		t.Reset(pruneInterval)
	}
}

// watchError handles a non-fatal watcher error that needs more than a
// warning, and reports whether it did. A log the watcher cannot read
// would hide every fault: it is logged as an error and shown in Status.
func (l *Linker) watchError(err error) bool {
	if !errors.Is(err, walwatch.ErrUnreadable) {
		return false
	}
	l.log.Error("the log watcher cannot read the staging server log: faults are not detected", "err", err)
	l.mu.Lock()
	l.logErr = err.Error()
	l.mu.Unlock()
	return true
}
