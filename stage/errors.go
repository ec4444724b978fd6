package stage

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pgstage/pgstage/walwatch"
)

// Sentinel errors. Every error a Linker returns wraps one of them or a typed
// error below, so callers can tell them apart with errors.Is and errors.As.
var (
	// ErrInvalidConfig wraps the problems Config validation found.
	ErrInvalidConfig = errors.New("stage: invalid configuration")
	// ErrPreflight wraps the problems preflight found (see *PreflightError).
	ErrPreflight = errors.New("stage: preflight failed")
	// ErrLocked: another Linker holds the staging's lock.
	ErrLocked = errors.New("stage: staging is locked by another Linker")
	// ErrFaulted is wrapped by every *Fault: replication is faulted.
	ErrFaulted = errors.New("stage: replication is faulted")
	// ErrDisabled: the job needs an enabled staging; call Enable.
	ErrDisabled = errors.New("stage: staging is disabled")
	// ErrNotLinked: the job needs a linked staging; call Link.
	ErrNotLinked = errors.New("stage: staging is not linked")
	// ErrNoState: Open found no state file for that data directory.
	ErrNoState = errors.New("stage: no state file")
	// ErrHook: a pre-hook failed and stopped the job.
	ErrHook = errors.New("stage: hook failed")
	// ErrClosed: the Linker was closed.
	ErrClosed = errors.New("stage: linker closed")
)

// PreflightError lists every problem preflight found, each saying what is
// wrong and what to do. Nothing was touched.
type PreflightError struct {
	Problems []error
}

func (e *PreflightError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stage: preflight found %d problem(s), nothing was changed:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  * ")
		b.WriteString(strings.ReplaceAll(p.Error(), "\n", "\n    "))
	}
	return b.String()
}

// Unwrap returns ErrPreflight and every problem, so errors.Is finds, say,
// backupsel.ErrNoBackup in it.
func (e *PreflightError) Unwrap() []error { return append([]error{ErrPreflight}, e.Problems...) }

// Problem is one preflight finding.
type Problem struct {
	Check string // "binaries", "port", "source", ...
	What  string // what is wrong
	Do    string // what to do about it
	Err   error  // the underlying error, if any
}

func (p *Problem) Error() string {
	s := p.Check + ": " + p.What
	if p.Do != "" {
		s += "; " + p.Do
	}
	return s
}

func (p *Problem) Unwrap() error { return p.Err }

// StepError says which step of a job failed and why, with the tail of the
// staging server log when the server was involved.
type StepError struct {
	Job     Job
	Step    Step
	Err     error
	LogTail string
}

func (e *StepError) Error() string {
	s := fmt.Sprintf("stage: %s: %s: %v", e.Job, e.Step, e.Err)
	if e.LogTail != "" && !strings.Contains(s, e.LogTail) {
		s += "\nstaging server log, last lines:\n" + e.LogTail
	}
	return s
}

func (e *StepError) Unwrap() error { return e.Err }

// HookError is a failed hook: its point, its name and its output.
type HookError struct {
	Point  Point
	Hook   string // the command, or "func #i"
	Output string
	Err    error
}

func (e *HookError) Error() string {
	s := fmt.Sprintf("stage: %s hook %s: %v", e.Point, e.Hook, e.Err)
	if out := strings.TrimSpace(e.Output); out != "" {
		s += "\noutput:\n" + out
	}
	return s
}

func (e *HookError) Unwrap() []error { return []error{ErrHook, e.Err} }

// Fault is a replication fault: the source stopped feeding the staging.
// It is an error wrapping ErrFaulted, so that Snapshot's refusal carries it.
type Fault struct {
	Reason  walwatch.Reason `json:"reason"`
	Message string          `json:"message"`
	Detail  string          `json:"detail,omitempty"`
	// NeedsResync is set for faults that never heal by themselves (WAL
	// removed on the source, timeline divergence, wrong source).
	NeedsResync bool `json:"needs_resync,omitempty"`
	// Since is the log time of the record that began the fault (for the
	// replay monitor's reasons, when it first saw the cause); Detected
	// when pgstage saw it; Cleared when streaming resumed (zero while open).
	Since    time.Time `json:"since"`
	Detected time.Time `json:"detected"`
	Cleared  time.Time `json:"cleared,omitzero"`
	// File and Line locate the record in the staging server log.
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
}

func (f *Fault) Error() string {
	s := fmt.Sprintf("replication faulted since %s (%s): %s", f.Since.Format(time.RFC3339), f.Reason, f.Message)
	if a := Advice(f.Reason); a != "" {
		s += "; " + a
	}
	return s
}

// Unwrap returns ErrFaulted.
func (f *Fault) Unwrap() error { return ErrFaulted }

// Open reports whether the fault is still open.
func (f *Fault) Open() bool { return f.Cleared.IsZero() }

// NeedsResync reports whether err carries a replication fault that only
// Resync mends (Snapshot's and Sync's refusals carry the open fault).
func NeedsResync(err error) bool {
	var f *Fault
	return errors.As(err, &f) && f.NeedsResync
}

// advice says what to do about each fault reason.
var advice = map[walwatch.Reason]string{
	walwatch.ReasonPrimaryUnreachable:  "the source is down or unreachable: start it or fix the network or the source host and port; streaming resumes by itself",
	walwatch.ReasonAuthRefused:         "the source refused the replication role: check its password and the source's pg_hba.conf (a replication line for this host), then Resync with the right password",
	walwatch.ReasonStreamLost:          "the connection to the source broke (source restart or network): streaming resumes by itself when the source is back",
	walwatch.ReasonTimeout:             "nothing came from the source for wal_receiver_timeout: check the source and the network; streaming resumes by itself",
	walwatch.ReasonTerminatedByPrimary: "the source shut down: start it; streaming resumes by itself",
	walwatch.ReasonWALRemoved:          "the source has already removed WAL the staging needs: Resync from a newer backup (a replication slot or a larger wal_keep_size on the source prevents it)",
	walwatch.ReasonTimelineDiverged:    "the source's timeline history no longer contains the staging's (the source was promoted or restored): Resync from a backup of the current source",
	walwatch.ReasonWrongPrimary:        "Source.Host/Port reach a different database system than the backup's: fix the source address, or Resync from a backup of that source",
	walwatch.ReasonStartFailed:         "connected but streaming could not start (a missing replication slot, or the staging ahead of the source): check the source log; Resync if the staging is ahead",
	walwatch.ReasonReceiverStopped:     "the walreceiver was terminated on the staging: it restarts by itself; if not, Disable and Enable",
	walwatch.ReasonReceiverCrashed:     "the walreceiver crashed: it restarts by itself; check the staging server log",
	walwatch.ReasonUnknown:             "a walreceiver error pgstage does not know: read the staging server log (set lc_messages to English for precise reasons)",
	walwatch.ReasonPromoted:            "the staging server was promoted and no longer follows the source: Resync",
	ReasonReplayStalled:                "the staging receives WAL but does not apply it: resume a paused replay (pg_wal_replay_resume(); pg_xlog_replay_resume() on 9.6), end the query holding a recovery conflict (pg_stat_activity on the staging; max_standby_streaming_delay bounds the wait), or free disk space on the staging; the fault clears when replay catches up",
	ReasonReceiverDown:                 "no walreceiver streams from the source and the staging server log says nothing of it: read pg_stat_wal_receiver and the log (primary_conninfo, log_min_messages); Disable and Enable restart the server",
}

// Advice says what to do about a fault with this reason.
func Advice(r walwatch.Reason) string { return advice[r] }
