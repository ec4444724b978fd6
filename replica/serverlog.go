package replica

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgstage/pgstage/internal/secret"
	"github.com/pgstage/pgstage/pgconf"
)

// prepareLog creates the log file for the OS user if needed, remembers
// where this start's lines begin, and where the logging collector writes
// when the configuration turns it on.
func (s *Standby) prepareLog(r *rules) error {
	s.collectorDir = ""
	// Truncated to the second: file systems with coarse times floor them.
	s.startedAt = time.Now().Truncate(time.Second)
	if conf, err := pgconf.Load(s.cfg.DataDir); err == nil {
		if lc, ok := conf.Get("logging_collector"); ok && isOn(lc.Value) {
			dir := r.logDirectory
			if d, ok := conf.Get("log_directory"); ok && d.Value != "" {
				dir = d.Value
			}
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(s.cfg.DataDir, dir)
			}
			s.collectorDir = dir
		}
	}
	st, err := os.Stat(s.cfg.LogFile)
	if errors.Is(err, os.ErrNotExist) {
		if err := s.writeFile(s.cfg.LogFile, nil); err != nil {
			return err
		}
		s.logStart = 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("replica: server log: %w", err)
	}
	s.logStart = st.Size()
	return nil
}

// logSince returns the server log written since Start began (at most the
// last 1 MiB of it), and with logging_collector on, the collector's current
// file as well: the one current_logfiles names (10+), else the newest file
// of log_directory (9.x). scanLog looks at the latest server start only.
func (s *Standby) logSince() string {
	text := readFrom(s.cfg.LogFile, s.logStart)
	if b, err := os.ReadFile(filepath.Join(s.cfg.DataDir, "current_logfiles")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if name, ok := strings.CutPrefix(line, "stderr "); ok {
				if !filepath.IsAbs(name) {
					name = filepath.Join(s.cfg.DataDir, name)
				}
				text += s.readCollector(name)
			}
		}
	} else if name := newestFile(s.collectorDir); name != "" && name != s.cfg.LogFile {
		text += s.readCollector(name)
	}
	return text
}

// readCollector reads a logging collector file written since Start began.
func (s *Standby) readCollector(name string) string {
	if st, err := os.Stat(name); err != nil || st.ModTime().Before(s.startedAt) {
		return ""
	}
	return readFrom(name, 0)
}

// newestFile returns the most recently modified file in dir, "" if none.
func newestFile(dir string) string {
	if dir == "" {
		return ""
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	var best string
	var bestTime time.Time
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		if info.ModTime().After(bestTime) {
			best, bestTime = filepath.Join(dir, e.Name()), info.ModTime()
		}
	}
	return best
}

func readFrom(name string, off int64) string {
	f, err := os.Open(name)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	if st.Size() < off { // truncated or replaced: read it all
		off = 0
	}
	if st.Size()-off > 1<<20 {
		off = st.Size() - 1<<20
	}
	b, _ := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	return string(b)
}

func tail(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LogTail returns the last n lines of the server log since Start.
func (s *Standby) LogTail(n int) string {
	return secret.Redact(tail(s.logSince(), n), s.cfg.Source.Password.Reveal())
}
