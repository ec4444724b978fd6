package pgconf

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/pgstage/pgstage/internal/gucscan"
	"github.com/pgstage/pgstage/internal/pgver"
)

// Reading the files as the server does: the main file, include,
// include_if_exists and include_dir, each file once whatever path names it,
// nesting stopped at the server's depth.
// blank reports whether an included name is all white space (or empty).
func blank(name string) bool { return strings.Trim(name, " \t\r\n") == "" }

// fileKey identifies a file on disk whatever path names it, so that a file
// reached by two paths is read, edited and saved once.
func fileKey(path string) string {
	p := filepath.Clean(path)
	if real, err := filepath.EvalSymlinks(p); err == nil {
		return real
	}
	return p
}

// open reads and parses the file at path once; nil when it cannot be read.
func (c *Config) open(path string) *File {
	key := fileKey(path)
	if f, ok := c.byKey[key]; ok {
		return f
	}
	if _, failed := c.readErr[key]; failed {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		c.readErr[key] = err
		return nil
	}
	f, _ := Parse(path, data)
	c.byKey[key] = f
	c.files = append(c.files, f)
	return f
}

// listDir lists an include_dir directory once.
func (c *Config) listDir(dir string) dirList {
	if d, ok := c.dirs[dir]; ok {
		return d
	}
	files, err := confFilesInDir(dir, c.major)
	d := dirList{files: files, err: err}
	c.dirs[dir] = d
	return d
}

// confFilesInDir lists what include_dir reads: files (not directories) whose
// names end in ".conf", do not start with "." and are at least 6 bytes
// long, sorted by byte value.
func confFilesInDir(dir string, major pgver.Major) ([]string, error) {
	des, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, err
	}
	var out []string
	for _, de := range des {
		n := de.Name()
		if len(n) < 6 || n[0] == '.' || !strings.HasSuffix(n, ".conf") {
			continue
		}
		p := joinPath(dir, n, major)
		st, err := os.Stat(p)
		if err != nil {
			return out, &fs.PathError{Op: "stat", Path: p, Err: err}
		}
		if !st.IsDir() {
			out = append(out, p)
		}
	}
	return out, nil
}

// refresh recomputes the server's reading after a load or an edit.
func (c *Config) refresh() {
	c.entries = c.entries[:0]
	c.visits = c.visits[:0]
	c.walkErrs = nil
	c.mainOK = c.walk(c.main, c.mainPath, 0)
	c.autoStart = len(c.entries)
	if c.auto != nil {
		c.walk(c.auto, c.autoPath, 0)
	}
	c.stale = false
}

// markApplied sets Applied as the server does: when a name comes again, the
// earlier occurrences spelled exactly the same (the server compares them
// with strcmp, not case-insensitively) are ignored; nothing is applied when
// the files have errors. Applied does not decide the value in effect: the
// last occurrence of a name, whatever its case, wins.
func markApplied(rows []Entry, ok bool) {
	seen := map[string]bool{}
	live := map[string][]int{}
	for i := range rows {
		e := &rows[i]
		if e.Name == "" {
			continue
		}
		e.Applied = ok
		if strings.Contains(e.Name, ".") {
			// A custom (extension) parameter: the server marks duplicates
			// only of parameters it has a record for, and has none for a
			// custom name until something defines it.
			continue
		}
		folded := strings.ToLower(e.Name)
		if seen[folded] {
			for _, j := range live[e.Name] {
				rows[j].Applied = false
			}
			live[e.Name] = live[e.Name][:0]
		}
		seen[folded] = true
		live[e.Name] = append(live[e.Name], i)
	}
}

func (c *Config) ensure() {
	if c.stale {
		c.refresh()
	}
}

// walk follows ParseConfigFile as the postmaster runs it at startup: a
// syntax error is reported and parsing goes on with the next line (up to
// 100 errors a file); an include that cannot be followed leaves an error row
// at the directive and parsing goes on. pg_file_settings instead abandons a
// file at its first syntax error: what follows is marked hidden, so that
// Entries can show that view while Get still sees every line.
func (c *Config) walk(f *File, path string, depth int) bool {
	c.visits = append(c.visits, f)
	saved := c.hide
	defer func() { c.hide = saved }()
	ok := true
	errs := 0
	for i := range f.lines {
		l := &f.lines[i]
		switch l.kind {
		case gucscan.Invalid:
			se := f.syntaxError(i)
			se.File = path
			c.entries = append(c.entries, entry{err: &Entry{Setting: Setting{File: path, Line: se.Line}, Error: "syntax error"}, file: f, path: path, line: i, hidden: c.hide})
			c.walkErrs = append(c.walkErrs, se)
			c.hide = true
			ok = false
			if errs++; errs == maxSyntaxErrors {
				return false
			}
		case gucscan.Setting:
			kind := directive(l.nameBytes())
			if kind == "" {
				c.entries = append(c.entries, entry{file: f, path: path, line: i, hidden: c.hide})
				continue
			}
			if !c.walkInclude(kind, l.value(), path, i+1, depth+1) {
				ok = false
			}
		}
	}
	return ok
}

// walkInclude follows the directive on line lineNo of the file named
// calling, as ParseConfigFp does.
func (c *Config) walkInclude(kind, value, calling string, lineNo, depth int) bool {
	target := absLocation(value, calling, c.major)
	switch kind {
	case "include_dir":
		if blank(value) {
			c.errorRow(calling, lineNo, "empty configuration directory name",
				&IncludeError{File: calling, Line: lineNo, Target: value, Dir: true, Err: ErrEmptyName})
			return false
		}
		d := c.listDir(target)
		if d.err != nil {
			c.errorRow(calling, lineNo, "could not open directory \""+target+"\"",
				&IncludeError{File: calling, Line: lineNo, Target: target, Dir: true, Err: d.err})
			return false
		}
		for _, p := range d.files {
			if !c.walkFile(p, p, true, depth, calling, lineNo) {
				return false
			}
		}
		return true
	case "include":
		return c.walkFile(target, value, true, depth, calling, lineNo)
	default:
		return c.walkFile(target, value, false, depth, calling, lineNo)
	}
}

// walkFile follows one include: path is the absolute path, named the path
// as the directive names it (the server reports a too deep nesting before
// it resolves the path).
func (c *Config) walkFile(path, named string, strict bool, depth int, calling string, callingLine int) bool {
	if depth > maxDepth {
		c.errorRow(calling, callingLine, "nesting depth exceeded",
			&IncludeError{File: calling, Line: callingLine, Target: named, Err: ErrNestingDepth})
		return false
	}
	if blank(named) {
		// Else the server would read the including directory as a file.
		c.errorRow(calling, callingLine, "empty configuration file name",
			&IncludeError{File: calling, Line: callingLine, Target: named, Err: ErrEmptyName})
		return false
	}
	if path == calling {
		c.errorRow(calling, callingLine, "configuration file recursion",
			&IncludeError{File: calling, Line: callingLine, Target: path, Err: ErrRecursion})
		return false
	}
	f := c.open(path)
	readErr := c.readErr[fileKey(path)]
	if f == nil && errors.Is(readErr, syscall.EISDIR) {
		// The server opens a directory like a file, and its scanner then
		// fails to read it, strict or not.
		c.errorRow(path, 1, "input in flex scanner failed",
			&IncludeError{File: calling, Line: callingLine, Target: path, Err: ErrScanner})
		return false
	}
	if f == nil {
		if !strict {
			return true
		}
		c.errorRow(calling, callingLine, "could not open file \""+path+"\"",
			&IncludeError{File: calling, Line: callingLine, Target: path, Err: readErr})
		return false
	}
	return c.walk(f, path, depth)
}

func (c *Config) errorRow(file string, line int, msg string, err error) {
	c.entries = append(c.entries, entry{err: &Entry{Setting: Setting{File: file, Line: line}, Error: msg}, line: -1, hidden: c.hide})
	c.walkErrs = append(c.walkErrs, err)
}
