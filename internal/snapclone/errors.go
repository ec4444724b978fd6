package snapclone

import (
	"errors"
	"fmt"
)

// Errors a caller branches on. Every error this package returns that has one
// of these causes wraps it (errors.Is).
var (
	// ErrInvalidConfig: a Config or CloneOptions is incomplete or wrong;
	// the error lists every problem.
	ErrInvalidConfig = errors.New("snapclone: invalid configuration")
	// ErrMethod: the filesystem cannot do the method asked for (btrfs on
	// another filesystem or a directory that is no subvolume, reflink where
	// FICLONE does not work).
	ErrMethod = errors.New("snapclone: method not possible here")
	// ErrCrossFilesystem: a reflink or btrfs clone would cross filesystems.
	ErrCrossFilesystem = errors.New("snapclone: source and destination are on different filesystems")
	// ErrNoBackupAPI: a running 9.4 or 9.5 staging takes no base backup, so
	// a reflink or copy of it cannot be made consistent.
	ErrNoBackupAPI = errors.New("snapclone: no base backup API on this standby")
	// ErrWALMissing: a WAL segment the snapshot needs was gone before it
	// was copied.
	ErrWALMissing = errors.New("snapclone: WAL needed by the snapshot is missing")
	// ErrNoSpace: the filesystem filled up while copying; what was made is
	// removed.
	ErrNoSpace = errors.New("snapclone: no space left on the filesystem")
	// ErrPortInUse: something already listens on the clone's port.
	ErrPortInUse = errors.New("snapclone: clone port already in use")
	// ErrStart: the clone server did not start or did not open read-write.
	ErrStart = errors.New("snapclone: clone server did not start")
	// ErrNotSnapshot / ErrNotClone: a directory holds no snapshot / clone
	// made by this package (nothing is removed then).
	ErrNotSnapshot = errors.New("snapclone: not a snapshot")
	ErrNotClone    = errors.New("snapclone: not a clone")
)

// fsError says which filesystem, at which path, cannot do what was asked,
// and what to do.
type fsError struct {
	Path   string
	FSType string
	// Other names the second side of a cross-filesystem failure.
	OtherPath, OtherFSType string
	What                   string // what was attempted
	Hint                   string // what to do
	Err                    error  // sentinel
	Cause                  error  // the system error, if any
}

func (e *fsError) Error() string {
	msg := fmt.Sprintf("snapclone: %s: %s (%s)", e.What, e.Path, e.FSType)
	if e.OtherPath != "" {
		msg += fmt.Sprintf(" and %s (%s)", e.OtherPath, e.OtherFSType)
	}
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	if e.Hint != "" {
		msg += ": " + e.Hint
	}
	return msg
}

func (e *fsError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

// StartError says why a clone did not start: the first FATAL or PANIC line
// of its log, and the log's last lines.
type StartError struct {
	DataDir string
	Reason  string
	LogFile string
	LogTail string
	Err     error
}

func (e *StartError) Error() string {
	msg := "snapclone: clone in " + e.DataDir + " did not start"
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg + " (log: " + e.LogFile + ")"
}

func (e *StartError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrStart}
	}
	return []error{ErrStart, e.Err}
}
