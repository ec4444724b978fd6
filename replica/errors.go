package replica

import (
	"errors"
	"fmt"
)

// The errors a caller branches on with errors.Is. The typed errors below
// tie themselves to theirs with Unwrap.
var (
	// ErrInvalidConfig: New found problems in the Config; the error lists
	// every one of them (errors.Join), each saying what to do.
	ErrInvalidConfig = errors.New("replica: invalid config")
	// ErrUnsupportedVersion: a major outside 9.4 to 18.
	ErrUnsupportedVersion = errors.New("replica: unsupported PostgreSQL version (supported: 9.4 to 18)")
	// ErrVersionMismatch: the data directory and the staging binaries are of
	// different majors.
	ErrVersionMismatch = errors.New("replica: data directory and staging binaries are of different major versions")
	// ErrPortInUse: something already listens on the staging port.
	ErrPortInUse = errors.New("replica: staging port already in use")
	// ErrStart: the server did not start.
	ErrStart = errors.New("replica: staging server did not start")
	// ErrNotStreaming: WaitStreaming gave up.
	ErrNotStreaming = errors.New("replica: standby is not streaming")
	// ErrNotRunning: the staging server is not running.
	ErrNotRunning = errors.New("replica: staging server is not running")
	// ErrWarmStandby: the standby takes no queries (9.4 and 9.5 are set up
	// as warm standbys), so Replay cannot ask it.
	ErrWarmStandby = errors.New("replica: a warm standby (9.4, 9.5) takes no queries")
)

// versionError names both majors of a mismatch. Callers branch on
// ErrVersionMismatch; the text says which binaries to use.
type versionError struct {
	DataDir    string
	DataMajor  Major // from PG_VERSION
	BinDir     string
	BinMajor   Major // from postgres --version
	BinVersion string
}

func (e *versionError) Error() string {
	return fmt.Sprintf("replica: data directory %s is PostgreSQL %s (PG_VERSION) but the staging binaries in %s are %s (%s): use binaries of %s",
		e.DataDir, e.DataMajor, e.BinDir, e.BinMajor, e.BinVersion, e.DataMajor)
}

func (e *versionError) Unwrap() error { return ErrVersionMismatch }

// StartError says why the server did not start: the reason found in the
// server log (could not bind, hot standby is not possible because ...,
// could not access file ...) and the last lines of that log.
type StartError struct {
	Reason  string // the first FATAL or PANIC line of this start, if any
	LogFile string
	LogTail string
	Err     error // the pg_ctl failure
}

func (e *StartError) Error() string {
	reason := e.Reason
	if reason == "" {
		reason = fmt.Sprint(e.Err)
	}
	return fmt.Sprintf("replica: staging server did not start: %s\nlast lines of %s:\n%s", reason, e.LogFile, e.LogTail)
}

func (e *StartError) Unwrap() []error { return []error{ErrStart, e.Err} }

// StreamError says why WaitStreaming gave up: the last walreceiver fault
// the server logged (authentication refused, primary unreachable, ...).
type StreamError struct {
	Fault   string // the log line, "" when none was seen
	LogTail string
	Err     error // the context's error, or nil when the fault is final
}

func (e *StreamError) Error() string {
	msg := "replica: standby is not streaming"
	if e.Fault != "" {
		msg += ": " + e.Fault
	}
	if e.Err != nil {
		msg += " (" + e.Err.Error() + ")"
	}
	if e.LogTail != "" {
		msg += "\nlast lines of the server log:\n" + e.LogTail
	}
	return msg
}

func (e *StreamError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrNotStreaming, e.Err}
	}
	return []error{ErrNotStreaming}
}

// Final reports whether err says the standby cannot stream until someone
// acts on the source or the credentials (authentication refused, WAL
// already removed, another system's WAL): waiting longer will not help.
func Final(err error) bool {
	var se *StreamError
	return errors.As(err, &se) && se.Err == nil
}

// HasLogTail reports whether err already carries the last lines of the
// server log (a StartError or StreamError), so a caller need not add them.
func HasLogTail(err error) bool {
	var start *StartError
	var stream *StreamError
	return errors.As(err, &start) && start.LogTail != "" || errors.As(err, &stream) && stream.LogTail != ""
}
