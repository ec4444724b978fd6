package walwatch

import (
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrNoLogDir: neither Config.LogDir nor a usable Config.DataDir.
	ErrNoLogDir = errors.New("walwatch: no log directory (set Config.LogDir or Config.DataDir)")
	// ErrResumeNotFound is reported on Errors (New does not return it) when
	// the file of the resume Position is gone or is no longer the same file;
	// the watcher then reads every file modified after the Position, from
	// its start, with the Position's state.
	ErrResumeNotFound = errors.New("walwatch: resume position not found")
)

// FileError is an I/O problem with one log file. The watcher reports it on
// Errors and goes on with the other files.
type FileError struct {
	File string
	Op   string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("walwatch: %s %s: %v", e.Op, e.File, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }
