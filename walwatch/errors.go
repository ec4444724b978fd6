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
)

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
