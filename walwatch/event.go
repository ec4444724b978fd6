package walwatch

import (
	"fmt"
	"time"
)

// Kind says what an [Event] reports.
type Kind string

// Event kinds. Fault and Recovered bracket one replication outage; the others
// report the staging server's own lifecycle and are never replication faults.
const (
	// KindStreaming: the walreceiver streams WAL and no outage was open
	// (first start, or after the staging server itself restarted).
	KindStreaming Kind = "streaming"
	// KindFault: streaming replication stopped. One per outage, whatever the
	// number of retry lines; Reason says why.
	KindFault Kind = "fault"
	// KindRecovered: streaming resumed after a Fault.
	KindRecovered Kind = "recovered"
	// KindShutdownRequested: the staging server received a shutdown request.
	KindShutdownRequested Kind = "shutdown-requested"
	// KindShutdown: the staging server shut down cleanly.
	KindShutdown Kind = "shutdown"
	// KindReady: the staging server accepts connections (read-only on a hot
	// standby).
	KindReady Kind = "ready"
	// KindCrashed: a staging server process crashed and the server
	// reinitializes (or gives up).
	KindCrashed Kind = "crashed"
	// KindPromoted: the staging server left recovery; it is no longer a
	// standby and no longer follows the source.
	KindPromoted Kind = "promoted"
)

// Reason is a stable code for the cause of a Fault.
type Reason string

// Fault reasons.
const (
	ReasonNone Reason = ""
	// ReasonPrimaryUnreachable: the walreceiver cannot connect to the primary.
	ReasonPrimaryUnreachable Reason = "primary-unreachable"
	// ReasonAuthRefused: the primary refused the replication connection
	// (password, pg_hba.conf, missing replication privilege).
	ReasonAuthRefused Reason = "auth-refused"
	// ReasonStreamLost: the connection broke while streaming.
	ReasonStreamLost Reason = "stream-lost"
	// ReasonTimeout: nothing came from the primary for wal_receiver_timeout.
	ReasonTimeout Reason = "timeout"
	// ReasonTerminatedByPrimary: the primary ended the stream (it shut down)
	// and no timeline switch followed.
	ReasonTerminatedByPrimary Reason = "terminated-by-primary"
	// ReasonWALRemoved: the primary no longer has the WAL the standby needs.
	// This never heals by itself: the staging server needs a resync.
	ReasonWALRemoved Reason = "wal-removed"
	// ReasonTimelineDiverged: the primary's timeline history is incompatible
	// with the standby's.
	ReasonTimelineDiverged Reason = "timeline-diverged"
	// ReasonWrongPrimary: the primary is a different database system.
	ReasonWrongPrimary Reason = "wrong-primary"
	// ReasonStartFailed: connected, but streaming could not start (missing
	// replication slot, start point ahead of the primary, ...).
	ReasonStartFailed Reason = "start-failed"
	// ReasonReceiverStopped: the walreceiver was terminated (for example by
	// pg_terminate_backend) while the staging server kept running.
	ReasonReceiverStopped Reason = "receiver-stopped"
	// ReasonReceiverCrashed: the walreceiver process died abnormally.
	ReasonReceiverCrashed Reason = "receiver-crashed"
	// ReasonPromoted: the staging server left recovery ([KindPromoted]); it
	// no longer follows the source, and only a resync makes it a standby
	// again. The watcher reports the promotion as KindPromoted; a caller
	// that treats it as a fault (as stage does) uses this reason.
	ReasonPromoted Reason = "promoted"
	// ReasonUnknown: a walreceiver error recognised only by its SQLSTATE and
	// backend type (for example with a translated lc_messages).
	ReasonUnknown Reason = "unknown"
)

// NeedsResync reports whether a fault with this reason cannot heal by itself.
func (r Reason) NeedsResync() bool {
	return r == ReasonWALRemoved || r == ReasonTimelineDiverged || r == ReasonWrongPrimary || r == ReasonPromoted
}

// Event is one transition found in the logs.
type Event struct {
	Kind   Kind   `json:"kind"`
	Reason Reason `json:"reason,omitempty"`
	// LogTime is the time written in the log record (with the server's zone);
	// zero when the format carries none.
	LogTime time.Time `json:"time"`
	// Detected is when the watcher produced the event.
	Detected time.Time `json:"detected"`
	// Message is the record's message, Detail its DETAIL line if any.
	Message  string `json:"message"`
	Detail   string `json:"detail,omitempty"`
	SQLState string `json:"sqlstate,omitempty"`
	// File and Line locate the record (Line counts from 1).
	File string `json:"file"`
	Line int    `json:"line"`
	// Receiver is pg_stat_wal_receiver.status read when the event was
	// confirmed by SQL ("none" when there is no walreceiver); empty without
	// Config.ConnString or when the query failed.
	Receiver string `json:"receiver,omitempty"`
	// Position is where to resume so as to see the events after this one.
	Position Position `json:"position"`
}

func (e Event) String() string {
	s := string(e.Kind)
	if e.Reason != "" {
		s += " (" + string(e.Reason) + ")"
	}
	return fmt.Sprintf("%s: %s [%s:%d]", s, e.Message, e.File, e.Line)
}

// Phase is the replication state as far as the logs tell.
type Phase string

// Phases.
const (
	PhaseUnknown   Phase = "unknown"   // nothing seen yet
	PhaseStarting  Phase = "starting"  // staging server starting or recovering, not streaming yet
	PhaseStreaming Phase = "streaming" // walreceiver streaming
	PhaseFaulted   Phase = "faulted"   // replication stopped (a Fault was raised)
	PhaseStopping  Phase = "stopping"  // staging server shutting down
	PhaseStopped   Phase = "stopped"   // staging server shut down
	PhasePromoted  Phase = "promoted"  // staging server is no longer a standby
)

// State is the watcher's current view, as returned by [Watcher.State].
type State struct {
	Phase Phase `json:"phase"`
	// Reason and Message describe the open fault (PhaseFaulted) and are kept
	// up to date while the outage lasts.
	Reason  Reason `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// NeedsResync is set once a fault that cannot heal by itself was seen
	// (WAL removed on the primary, timeline divergence, wrong primary); it
	// stays set until streaming resumes.
	NeedsResync bool `json:"needs_resync,omitempty"`
	// Since is the log time the phase began.
	Since time.Time `json:"since"`
}

// Position identifies a point in the log directory: a file by identity
// (device and inode, so a rotated or re-created file of the same name is
// told apart) and an offset just after a complete record. It also carries
// the state there, so that a resumed watcher neither misses nor repeats
// events. It marshals to JSON for saving.
type Position struct {
	File   string `json:"file"`
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	Offset int64  `json:"offset"`
	Line   int    `json:"line"`
	// ModTime of the file when the position was taken, to find the files
	// written after it if the file itself has gone.
	ModTime time.Time `json:"mod_time"`
	// HeadLen and HeadSum (FNV-1a) fingerprint the file's first bytes, so
	// that an inode number reused by a new file is not taken for the old one.
	HeadLen int    `json:"head_len,omitempty"`
	HeadSum uint64 `json:"head_sum,omitempty"`
	State   State  `json:"state"`
}

// IsZero reports whether p is the zero Position.
func (p Position) IsZero() bool { return p.File == "" && p.Dev == 0 && p.Ino == 0 }
