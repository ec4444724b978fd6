package pgconf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pgstage/pgstage/internal/pgver"
)

const (
	// MainFileName is the configuration file the server reads from its data
	// directory unless told otherwise.
	MainFileName = "postgresql.conf"
	// AutoFileName is the file ALTER SYSTEM writes; the server reads it from
	// the data directory after the main file, so it wins.
	AutoFileName = "postgresql.auto.conf"
	// maxDepth is the deepest include nesting the server accepts.
	maxDepth = 10
)

// Setting is one name = value line.
type Setting struct {
	Name  string // as written in the file
	Value string // with quotes and escapes resolved, as the server sees it
	File  string // absolute path
	Line  int    // 1-based
}

// Entry is one row of the server's reading of the files, as the
// pg_file_settings view shows it: a setting, or an error row (empty Name)
// for a syntax error or an include that could not be followed.
type Entry struct {
	Setting
	Applied bool   // the setting is the one in effect for its name
	Error   string // pg_file_settings.error, "" when none
}

// OverridePolicy says what Set does when the setting in effect comes from
// another file than the main configuration file.
type OverridePolicy int

const (
	// EditEffective edits the line in effect, wherever it is (an included
	// file or postgresql.auto.conf), so that the edit takes effect.
	EditEffective OverridePolicy = iota
	// RefuseOverridden makes Set return an [OverriddenError] and change
	// nothing when the line in effect is not in the main file.
	RefuseOverridden
)

// Config is a configuration as the server reads it: the main file, the
// files it includes, then postgresql.auto.conf.
type Config struct {
	// Overrides chooses how Set treats a setting in effect outside the
	// main file; the zero value is EditEffective.
	Overrides OverridePolicy
	// Root, when set, confines Save: a file whose resolved path lies
	// outside this directory, or that is a symbolic link, is not written
	// (an [OutsideRootError]). Files outside it are still read, as the
	// server reads them. The zero value writes wherever the files are,
	// following symbolic links.
	Root string

	mainPath string
	autoPath string
	dataDir  string
	major    pgver.Major // server major whose rules apply (see versions.go)
	main     *File
	auto     *File // nil when there is none
	files    []*File
	byKey    map[string]*File // by fileKey: one File per file on disk
	readErr  map[string]error // by fileKey
	dirs     map[string]dirList

	stale     bool
	hide      bool    // walking lines pg_file_settings would not show
	visits    []*File // files in the order the walk entered them
	entries   []entry
	mainOK    bool
	autoStart int // index in entries where postgresql.auto.conf begins
	walkErrs  []error
}

// dirList is what include_dir found in a directory.
type dirList struct {
	files []string
	err   error
}

// entry is one row of the server's reading: a setting line, or an error.
type entry struct {
	file   *File
	path   string // the file's path as the server names it (see canonicalize)
	line   int    // index in file.lines; -1 for error rows of include directives
	err    *Entry // error rows: the row itself
	hidden bool   // after a syntax error in its file: not in pg_file_settings
}

func (e *entry) isSetting() bool { return e.err == nil }

// setting builds the Setting of a setting row.
func (e *entry) setting() Setting {
	l := &e.file.lines[e.line]
	return Setting{Name: l.name(), Value: l.value(), File: e.path, Line: e.line + 1}
}

// Load reads the configuration at path: a data directory (its
// postgresql.conf, then its postgresql.auto.conf) or a configuration file
// (then the postgresql.auto.conf of the data_directory it sets, or of its
// own directory). Includes are followed as the server follows them.
//
// When the server would reject the configuration (syntax errors, an
// include that cannot be followed) the error joins every problem and the
// Config is returned as well, as go/parser does, so it can be inspected or
// repaired. A missing main file is an error with a nil Config.
func Load(path string) (*Config, error) {
	c, err := load(path, 0)
	if c == nil {
		return nil, err
	}
	// Paths are named by the rules of the server that will read them: the
	// data directory's PG_VERSION says which.
	if m := readMajor(c.dataDir); m != 0 && rulesFor(m) != rulesFor(c.major) {
		return load(path, m)
	}
	return c, err
}

func load(path string, major pgver.Major) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("pgconf: %w", err)
	}
	c := &Config{
		major:   major,
		byKey:   map[string]*File{},
		readErr: map[string]error{},
		dirs:    map[string]dirList{},
	}
	if major == 0 {
		c.major = readMajor(abs)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("pgconf: could not open configuration file: %w", err)
	}
	if st.IsDir() {
		c.dataDir = abs
		c.mainPath = filepath.Join(abs, MainFileName)
	} else {
		c.mainPath = abs
	}
	c.main = c.open(c.mainPath)
	if c.main == nil {
		return nil, fmt.Errorf("pgconf: could not open configuration file \"%s\": %w", c.mainPath, c.readErr[fileKey(c.mainPath)])
	}
	if c.dataDir == "" {
		c.dataDir = filepath.Dir(c.mainPath)
		c.refresh()
		if s, ok := c.Get("data_directory"); ok && s.File != "" {
			dir := s.Value
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(filepath.Dir(s.File), dir)
			}
			c.dataDir = filepath.Clean(dir)
		}
	}
	c.autoPath = filepath.Join(c.dataDir, AutoFileName)
	c.auto = c.open(c.autoPath)
	c.refresh()
	return c, c.Err()
}

// Err returns what the server would reject in the configuration as one
// joined error: every syntax error of every file read, every include that
// cannot be followed. It is nil for a configuration the server accepts.
func (c *Config) Err() error {
	c.ensure()
	var errs []error
	for _, f := range c.files {
		if err := f.Err(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, err := range c.walkErrs {
		var ie *IncludeError
		if errors.As(err, &ie) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Entries returns the server's reading of the configuration as the
// pg_file_settings view shows it, in the same order. When the main file
// has errors, postgresql.auto.conf is not read, as by the server.
func (c *Config) Entries() []Entry {
	c.ensure()
	n := len(c.entries)
	if !c.mainOK {
		n = c.autoStart
	}
	var out []Entry
	for i := range c.entries[:n] {
		e := &c.entries[i]
		switch {
		case e.hidden:
		case e.isSetting():
			out = append(out, Entry{Setting: e.setting()})
		default:
			out = append(out, *e.err)
		}
	}
	markApplied(out, c.mainOK && len(c.walkErrs) == 0)
	return out
}

// Get returns the setting in effect for name (case-insensitive): the last
// occurrence in the order the server reads the files.
func (c *Config) Get(name string) (Setting, bool) {
	if i := c.effective(name); i >= 0 {
		return c.entries[i].setting(), true
	}
	return Setting{}, false
}

// All returns every line that sets name (case-insensitive), in the order
// the server reads them: the last one is in effect, and these are the lines
// Comment would comment out.
func (c *Config) All(name string) []Setting {
	c.ensure()
	var out []Setting
	seen := map[*line]bool{} // a file read twice sets from the same line twice
	for i := range c.entries {
		e := &c.entries[i]
		if !e.isSetting() {
			continue
		}
		if l := &e.file.lines[e.line]; l.isNamed(name) && !seen[l] {
			seen[l] = true
			out = append(out, e.setting())
		}
	}
	return out
}

func (c *Config) effective(name string) int {
	c.ensure()
	for i := len(c.entries) - 1; i >= 0; i-- {
		if e := &c.entries[i]; e.isSetting() && e.file.lines[e.line].isNamed(name) {
			return i
		}
	}
	return -1
}

// MainFile returns the main configuration file.
func (c *Config) MainFile() *File { return c.main }

// AutoFile returns postgresql.auto.conf, or nil when there is none.
func (c *Config) AutoFile() *File { return c.auto }

// Files returns every file read, in the order first read.
func (c *Config) Files() []*File {
	out := make([]*File, len(c.files))
	copy(out, c.files)
	return out
}

// DataDir returns the data directory whose postgresql.auto.conf is read.
func (c *Config) DataDir() string { return c.dataDir }
