package pgconf

import (
	"errors"
	"strconv"
	"strings"
	"syscall"
)

var (
	// ErrSyntax is wrapped by every [SyntaxError].
	ErrSyntax = errors.New("pgconf: syntax error")
	// ErrNestingDepth is wrapped by an [IncludeError] for an include nested
	// deeper than the server allows (which is how include cycles end).
	ErrNestingDepth = errors.New("pgconf: maximum nesting depth exceeded")
	// ErrRecursion is wrapped by an [IncludeError] for a file that includes
	// itself directly.
	ErrRecursion = errors.New("pgconf: configuration file recursion")
	// ErrScanner is wrapped by an [IncludeError] for an included path the
	// server opens but cannot read as a file (a directory).
	ErrScanner = errors.New("pgconf: input in flex scanner failed")
	// ErrEmptyName is wrapped by an [IncludeError] for an include directive
	// naming an empty (or all blank) path.
	ErrEmptyName = errors.New("pgconf: empty configuration file name")
	// ErrInvalidName is returned by edits given a name that the server's
	// grammar cannot read as a parameter name, or an include directive.
	ErrInvalidName = errors.New("pgconf: invalid parameter name")
	// ErrInvalidValue is returned by edits given a value that no
	// configuration file can carry (one holding a zero byte).
	ErrInvalidValue = errors.New("pgconf: invalid value")
	// ErrOverridden is wrapped by an [OverriddenError].
	ErrOverridden = errors.New("pgconf: setting is overridden by a later file")
	// ErrInvalidSetting is wrapped by every [InvalidSettingError].
	ErrInvalidSetting = errors.New("pgconf: invalid setting")
)

// SyntaxError is a line the server would reject, reported as the server
// reports it: file, line and the token near the error.
type SyntaxError struct {
	File  string
	Line  int
	Near  string // text of the offending token; empty when AtEOL
	AtEOL bool   // the line ended where a token was needed
}

func (e *SyntaxError) Error() string {
	if e.AtEOL {
		return "pgconf: syntax error in file \"" + e.File + "\" line " + itoa(e.Line) + ", near end of line"
	}
	return "pgconf: syntax error in file \"" + e.File + "\" line " + itoa(e.Line) + ", near token \"" + e.Near + "\""
}

func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// IncludeError is an include, include_if_exists or include_dir directive
// the server could not follow. Its message is the server's, followed by
// where the directive is.
type IncludeError struct {
	File   string // file holding the directive
	Line   int
	Target string // absolute path of the file or directory named; as written for ErrNestingDepth, as the server reports it
	Dir    bool   // include_dir
	Err    error  // the open error, ErrNestingDepth, ErrRecursion, ErrEmptyName or ErrScanner
}

func (e *IncludeError) Error() string {
	at := " (included from \"" + e.File + "\" line " + itoa(e.Line) + ")"
	what := "file"
	if e.Dir {
		what = "directory"
	}
	switch e.Err {
	case ErrNestingDepth:
		return "pgconf: could not open configuration file \"" + e.Target + "\": maximum nesting depth exceeded" + at
	case ErrRecursion:
		return "pgconf: configuration file recursion in \"" + e.File + "\"" + at
	case ErrEmptyName:
		return "pgconf: empty configuration " + what + " name: \"" + e.Target + "\"" + at
	case ErrScanner:
		return "pgconf: input in flex scanner failed at file \"" + e.Target + "\" line 1" + at
	}
	return "pgconf: could not open configuration " + what + " \"" + e.Target + "\": " + strerror(e.Err) + at
}

func (e *IncludeError) Unwrap() error { return e.Err }

// strerror words an open error as the server's %m does.
func strerror(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err.Error()
	}
	msg := errno.Error()
	if msg == "" {
		return msg
	}
	return strings.ToUpper(msg[:1]) + msg[1:]
}

// OverriddenError reports a Set refused under [RefuseOverridden]: the
// setting in effect lives in another file than the main configuration file.
type OverriddenError struct {
	Name string
	File string // where the setting in effect is
	Line int
}

func (e *OverriddenError) Error() string {
	return "pgconf: " + e.Name + " is set in \"" + e.File + "\" line " + itoa(e.Line) + ", which overrides the main configuration file"
}

func (e *OverriddenError) Unwrap() error { return ErrOverridden }

// InvalidSettingError is one setting a server binary would reject.
type InvalidSettingError struct {
	Name, Value string
	File        string // empty when the value has not been written yet
	Line        int
	Reason      string // what is wrong, with the allowed values
}

func (e *InvalidSettingError) Error() string {
	var b strings.Builder
	b.WriteString("pgconf: ")
	b.WriteString(e.Name + " = \"" + e.Value + "\"")
	if e.File != "" {
		b.WriteString(" (\"" + e.File + "\" line " + itoa(e.Line) + ")")
	}
	b.WriteString(": " + e.Reason)
	return b.String()
}

func (e *InvalidSettingError) Unwrap() error { return ErrInvalidSetting }

func itoa(n int) string { return strconv.Itoa(n) }

// ErrOutsideRoot is wrapped by every [OutsideRootError].
var ErrOutsideRoot = errors.New("pgconf: file outside the root")

// OutsideRootError is a file that Save will not write because [Config.Root]
// is set and the file lies outside it, or is a symbolic link there (which
// a write would follow, or replace).
type OutsideRootError struct {
	File     string // the file as the configuration names it
	Resolved string // where a write would land, symbolic links resolved
	Root     string
	Symlink  bool // File itself is a symbolic link
}

func (e *OutsideRootError) Error() string {
	what := "resolves to \"" + e.Resolved + "\", outside"
	if e.Symlink {
		what = "is a symbolic link in"
	}
	return "pgconf: refusing to write \"" + e.File + "\": it " + what + " the root \"" + e.Root +
		"\"; leave that file alone and override the setting in a file inside the root (postgresql.auto.conf is read last)"
}

func (e *OutsideRootError) Unwrap() error { return ErrOutsideRoot }
