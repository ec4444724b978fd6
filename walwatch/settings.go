package walwatch

// Deriving what to follow: the log directory, format, file pattern and
// log_line_prefix, from the Config and the data directory's settings.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pgstage/pgstage/internal/gucscan"
	"github.com/pgstage/pgstage/internal/pgver"
)

// configure reads the data directory's settings, derives the log
// directory and checks the Config, reporting every problem at once.
func (w *Watcher) configure() (map[string]string, error) {
	cfg := &w.cfg
	var settings map[string]string
	if cfg.DataDir != "" {
		settings = serverSettings(cfg.DataDir)
	}
	w.dir = cfg.LogDir
	if w.dir == "" && cfg.DataDir != "" {
		w.dir = logDirectory(cfg.DataDir, settings["log_directory"])
	}
	w.ctlDir = cfg.DataDir
	if up := filepath.Dir(w.dir); w.ctlDir == "" && w.dir != "" && fileExists(filepath.Join(up, "current_logfiles")) {
		// A log directory inside a data directory: current_logfiles (10+)
		// names the server's current files even without Config.DataDir.
		w.ctlDir = up
	}
	var problems []error
	if w.dir == "" {
		problems = append(problems, errors.New("no log directory: set Config.LogDir or Config.DataDir"))
	} else if fi, err := os.Stat(w.dir); err != nil {
		problems = append(problems, fmt.Errorf("log directory: %w", err))
	} else if !fi.IsDir() {
		problems = append(problems, fmt.Errorf("log directory %s is not a directory: set Config.LogDir to the directory holding the log files", w.dir))
	}
	if cfg.Start == StartResume && cfg.Resume.IsZero() {
		problems = append(problems, errors.New("StartResume needs Config.Resume (a Position saved from an Event)"))
	}
	if cfg.PollOnly && cfg.PollInterval < 0 {
		problems = append(problems, errors.New("PollOnly with polling disabled would read nothing: set PollInterval"))
	}
	switch cfg.Format {
	case FormatAuto, FormatStderr, FormatCSV, FormatJSON:
	default:
		problems = append(problems, fmt.Errorf("unknown format %q: set Config.Format to stderr, csvlog or jsonlog", cfg.Format))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(problems...))
	}
	return settings, nil
}

// logDirectory resolves log_directory against the data directory; unset,
// it is the default of the data directory's version (or, without
// PG_VERSION, "pg_log" where a pre-10 server left one, else "log").
func logDirectory(dataDir, setting string) string {
	d := setting
	if d == "" {
		m, _ := pgver.ReadDataDir(dataDir)
		if d, _ = defaultLogDirs.For(m); m == 0 {
			d = "log"
			if _, err := os.Stat(filepath.Join(dataDir, "pg_log")); err == nil {
				d = "pg_log"
			}
		}
	}
	if !filepath.IsAbs(d) {
		d = filepath.Join(dataDir, d)
	}
	return d
}

// defaultLogDirs is log_directory's default by major.
var defaultLogDirs = pgver.Table[string]{
	{Range: pgver.Before(pgver.V10), Rules: "pg_log"},
	{Range: pgver.Since(pgver.V10), Rules: "log"},
}

func (w *Watcher) decideFormat(settings map[string]string) {
	if w.format != FormatAuto {
		return
	}
	if d := settings["log_destination"]; d != "" {
		switch {
		case containsWord(d, "jsonlog"):
			w.format = FormatJSON
		case containsWord(d, "csvlog"):
			w.format = FormatCSV
		default:
			w.format = FormatStderr
		}
		return
	}
	if w.ctlDir != "" {
		if _, f := currentLogfile(w.ctlDir, FormatAuto); f != FormatAuto {
			w.format = f
			return
		}
	}
	w.format = w.formatByContent()
}

// filenamePattern turns log_filename (strftime escapes) into a glob for the
// files of format: csvlog and jsonlog replace a trailing .log or append
// their extension, as the server does.
func filenamePattern(logFilename string, f Format) string {
	var b []byte
	for i := 0; i < len(logFilename); i++ {
		c := logFilename[i]
		switch {
		case c == '%' && i+1 < len(logFilename):
			i++
			if logFilename[i] == '%' {
				b = append(b, '%')
			} else if len(b) == 0 || b[len(b)-1] != '*' {
				b = append(b, '*')
			}
		case c == '*' || c == '?' || c == '[' || c == '\\':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	p := string(b)
	ext := map[Format]string{FormatCSV: ".csv", FormatJSON: ".json"}[f]
	if ext != "" {
		p = strings.TrimSuffix(p, ".log") + ext
	}
	return p
}

// containsWord reports whether the comma-separated list (log_destination)
// holds word.
func containsWord(list, word string) bool {
	return slices.Contains(strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }), word)
}

func (w *Watcher) decidePrefix(settings map[string]string) {
	if w.format != FormatStderr {
		return
	}
	if src, ok := w.givenPrefix(settings); ok {
		w.prefix = compilePrefix(src)
		return
	}
	// Inferred from the newest file with something in it; if there is
	// none yet, from the first data read (see inferLate).
	w.prefix, w.inferPending = compilePrefix(DefaultPrefix), true
	cands, _ := w.list()
	for i := len(cands) - 1; i >= 0 && w.inferPending; i-- {
		if cands[i].size > 0 {
			w.inferLate(cands[i].path)
		}
	}
}

// givenPrefix is log_line_prefix as the Config or the data directory says
// it: Config.Prefix (or PrefixEmpty), else the data directory's setting,
// else the default of the data directory's version.
func (w *Watcher) givenPrefix(settings map[string]string) (string, bool) {
	switch {
	case w.cfg.Prefix != "" || w.cfg.PrefixEmpty:
		return w.cfg.Prefix, true
	case w.cfg.DataDir == "":
		return "", false
	}
	if v, ok := settings["log_line_prefix"]; ok {
		return v, true
	}
	m, err := pgver.ReadDataDir(w.cfg.DataDir)
	if err != nil {
		return "", false
	}
	return defaultPrefixes.For(m)
}

// defaultPrefixes is log_line_prefix's default by major.
var defaultPrefixes = pgver.Table[string]{
	{Range: pgver.Before(pgver.V10), Rules: ""},
	{Range: pgver.Since(pgver.V10), Rules: DefaultPrefix},
}

// inferLate infers log_line_prefix from path if it is still unknown, and
// hands it to the assemblers (which have read nothing that mattered yet:
// the files were empty).
func (w *Watcher) inferLate(path string) {
	if !w.inferPending {
		return
	}
	b, err := readHead(path, 64<<10)
	if err != nil || len(b) == 0 {
		return
	}
	p, ok := inferPrefix(b)
	if !ok {
		return
	}
	w.prefix, w.inferPending, w.inferred = p, false, true
	w.log.Info("walwatch: log_line_prefix inferred from the lines", "prefix", p.src, "file", path)
	for _, t := range w.files {
		if a, ok := t.asm.(*stderrAsm); ok {
			a.p = p
			t.setFast(!t.probing)
		}
	}
}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	m, err := f.ReadAt(b, 0)
	if m > 0 {
		err = nil
	}
	return b[:m], err
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

// loggingSettings are the settings serverSettings keeps.
var loggingSettings = []string{"log_directory", "log_destination", "log_line_prefix", "log_filename", "logging_collector"}

// readConf reads one file into set with the server's grammar (gucscan).
// Relative include paths are resolved against the including file's
// directory; include_dir reads the directory's *.conf files in name order.
// A missing file or a line the server would reject is skipped: the server
// refuses to start on either, so there is nothing more to learn from it.
func readConf(path string, set map[string]string, depth int) {
	if depth > maxIncludeDepth {
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	for len(data) > 0 {
		s := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			s, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		l := gucscan.ParseLine(s)
		if l.Kind != gucscan.Setting {
			continue
		}
		k, v := strings.ToLower(string(s[l.NameStart:l.NameEnd])), l.Value(s)
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
		default:
			if slices.Contains(loggingSettings, k) {
				set[k] = v
			}
		}
	}
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
