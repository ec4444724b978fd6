package stage

import (
	"context"
	"time"

	"github.com/pgstage/pgstage/walwatch"
)

// State is a staging's state as Status reports it.
type State string

// States a Status reports, most telling first.
const (
	StateUnlinked  State = "unlinked"  // not linked yet, or a link failed
	StateDisabled  State = "disabled"  // linked, disabled on purpose: no faults
	StateFaulted   State = "faulted"   // replication stopped: see Status.Fault
	StateStopped   State = "stopped"   // linked and enabled, but the server is not running
	StateStreaming State = "streaming" // the staging follows the source
	StateStarting  State = "starting"  // running, not streaming yet, no fault either
)

// Status is a staging's state at one moment.
type Status struct {
	State    State `json:"state"`
	Linked   bool  `json:"linked"`
	Disabled bool  `json:"disabled"`
	Running  bool  `json:"running"`
	// Fault is the open fault (nil when none); LastFault the latest fault,
	// open or cleared.
	Fault     *Fault `json:"fault,omitempty"`
	LastFault *Fault `json:"last_fault,omitempty"`
	// Watch is the log watcher's view.
	Watch walwatch.State `json:"watch"`
	// Receiver is pg_stat_wal_receiver.status ("none" without a
	// walreceiver); the positions and lags come from the staging server
	// (empty for a warm standby, which takes no queries).
	Receiver   string `json:"receiver,omitempty"`
	ReceiveLSN string `json:"receive_lsn,omitempty"`
	ReplayLSN  string `json:"replay_lsn,omitempty"`
	// ReplayLagBytes is the WAL received but not yet applied.
	ReplayLagBytes int64 `json:"replay_lag_bytes"`
	// LastReplayed is the commit time of the last replayed transaction, and
	// ReplayDelay how long ago that was: on an idle source it grows though
	// nothing is behind, so read it with ReplayLagBytes.
	LastReplayed time.Time     `json:"last_replayed,omitzero"`
	ReplayDelay  time.Duration `json:"replay_delay,omitempty"`
	// QueryError says why the server could not be asked, if it could not.
	QueryError string `json:"query_error,omitempty"`
	// LogError says why the watcher cannot read the staging server log
	// (walwatch.ErrUnreadable): faults are not detected while it is set.
	LogError string `json:"log_error,omitempty"`

	Backup       *BackupInfo `json:"backup,omitempty"`
	LinkedAt     time.Time   `json:"linked_at,omitzero"`
	Snapshots    int         `json:"snapshots"`
	LastSnapshot *Snapshot   `json:"last_snapshot,omitempty"`
	// Job and Step name a job that was cut short (the process died in it).
	Job  Job  `json:"unfinished_job,omitempty"`
	Step Step `json:"unfinished_step,omitempty"`
	// Heal is auto-heal's state; nil when it is off.
	Heal *HealStatus `json:"heal,omitempty"`
}

// Status reports the staging's state: linked, streaming, faulted or
// disabled, the open and last faults, replay lag, the backup in use.
func (l *Linker) Status(ctx context.Context) (Status, error) {
	l.mu.Lock()
	st := Status{
		Linked: l.st.Linked, Disabled: l.st.Disabled, Backup: l.st.Backup, LinkedAt: l.st.LinkedAt,
		Snapshots: len(l.st.Snapshots), Job: l.st.Job, Step: l.st.Step,
	}
	if n := len(l.st.Faults); n > 0 {
		f := l.st.Faults[n-1]
		st.LastFault = &f
	}
	if n := len(l.st.Snapshots); n > 0 {
		s := l.st.Snapshots[n-1]
		st.LastSnapshot = &s
	}
	if l.w != nil {
		st.Watch = l.w.State()
	}
	st.LogError = l.logErr
	sb := l.sb
	l.mu.Unlock()
	st.Heal = l.healStatus()
	if !st.Linked && !st.Disabled {
		st.Fault = l.healFault() // a failed heal attempt undid the staging
	}
	if !st.Linked || st.Disabled {
		st.State = st.derive()
		return st, nil
	}
	st.Fault = l.currentFault()
	if sb == nil {
		var err error
		if sb, err = l.deps.standby(); err != nil {
			return st, err
		}
	}
	rs, err := sb.Status(ctx)
	if err != nil {
		return st, err
	}
	st.Running = rs.Running
	if st.Running {
		if p, err := l.serverPosition(ctx); err != nil {
			st.QueryError = err.Error()
		} else {
			st.Receiver, st.ReceiveLSN, st.ReplayLSN, st.ReplayLagBytes = p.Receiver, p.ReceiveLSN, p.ReplayLSN, p.LagBytes
			st.LastReplayed = p.LastReplayed
			if !p.LastReplayed.IsZero() {
				st.ReplayDelay = time.Since(p.LastReplayed)
			}
		}
	}
	st.State = st.derive()
	return st, nil
}

// derive is the state the facts gathered tell.
func (st *Status) derive() State {
	switch {
	case !st.Linked && st.Fault != nil && st.Heal != nil: // a failed heal attempt undid it
		return StateFaulted
	case !st.Linked:
		return StateUnlinked
	case st.Disabled:
		return StateDisabled
	case st.Fault != nil:
		return StateFaulted
	case !st.Running:
		return StateStopped
	case st.Receiver == "streaming" || st.Watch.Phase == walwatch.PhaseStreaming && st.Receiver == "":
		return StateStreaming
	}
	return StateStarting
}

// serverPosition asks the running staging server once.
func (l *Linker) serverPosition(ctx context.Context) (*position, error) {
	srv, err := l.deps.server(ctx)
	if err != nil {
		return nil, err
	}
	defer srv.close()
	return srv.position(ctx)
}
