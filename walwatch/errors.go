package walwatch

import (
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrInvalidConfig: New refused the Config; the error joins every
	// problem found, each saying what to set.
	ErrInvalidConfig = errors.New("walwatch: invalid configuration")
	// ErrResumeNotFound is reported on Errors (New does not return it) when
	// the file of the resume Position is gone or is no longer the same file;
	// the watcher then reads every file modified after the Position, from
	// its start, with the Position's state.
	ErrResumeNotFound = errors.New("walwatch: resume position not found")
	// ErrUnreadable is reported on Errors (once per file) when no record
	// of a log file parses with the format and log_line_prefix in use, in
	// its first 64 KiB or 16 lines: the watcher would be blind to it. The
	// error names the file and what to set.
	ErrUnreadable = errors.New("walwatch: log records cannot be read")
)

// unreadableError says which file cannot be read and what to set.
type unreadableError struct {
	file   string
	format Format
	prefix string // log_line_prefix in use (stderr)
	given  bool   // the prefix was given or configured, not guessed
	bytes  int64
}

func (e *unreadableError) Error() string {
	if e.format != FormatStderr {
		return fmt.Sprintf("walwatch: no record of %s parses as %s in its first %d bytes: set Config.Format to the server's log_destination", e.file, e.format, e.bytes)
	}
	how := "inferred"
	if e.given {
		how = "in use"
	}
	return fmt.Sprintf("walwatch: no record of %s parses with log_line_prefix '%s' (%s) in its first %d bytes: set Config.Prefix to the server's log_line_prefix (Config.PrefixEmpty if it is empty), or Config.Format if it is not stderr", e.file, e.prefix, how, e.bytes)
}

func (e *unreadableError) Unwrap() error { return ErrUnreadable }

// fileError is an I/O problem with one log file. The watcher reports it on
// Errors and goes on with the other files; a caller learns the cause with
// errors.Is (fs.ErrPermission, ...).
type fileError struct {
	file string
	op   string
	err  error
}

func (e *fileError) Error() string { return fmt.Sprintf("walwatch: %s %s: %v", e.op, e.file, e.err) }
func (e *fileError) Unwrap() error { return e.err }
