package stage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/pgstage/pgstage/internal/atomicfile"
	"github.com/pgstage/pgstage/walwatch"
)

const (
	stateName    = "state.json"
	stateVersion = 1
	// maxHistory bounds the faults and snapshots kept in the state file.
	maxHistory = 1000
)

// BackupInfo names the backup a staging was restored from.
type BackupInfo struct {
	Name             string    `json:"name"`     // folder or zip name, or "files in <path>"
	Location         string    `json:"location"` // folder, backup path or zip file
	Layout           string    `json:"layout"`
	Time             time.Time `json:"time,omitzero"` // from the name
	PGVersion        string    `json:"pg_version"`
	SystemIdentifier uint64    `json:"system_identifier"`
	Bytes            int64     `json:"bytes"`
	// PassedOver lists the backups not chosen, newest precedence first,
	// with the reason: older or lower precedence, incomplete, or found not
	// whole while restoring.
	PassedOver []PassedBackup `json:"passed_over,omitempty"`
}

// PassedBackup is a backup Link or Resync did not restore, and why.
type PassedBackup struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// state is what the state file holds: enough for Open to carry on, and no
// secret. Config's password and function fields are tagged json:"-".
type state struct {
	Version   int               `json:"version"`
	Config    Config            `json:"config"`
	Linked    bool              `json:"linked"`
	Disabled  bool              `json:"disabled,omitempty"`
	LinkedAt  time.Time         `json:"linked_at,omitzero"`
	Backup    *BackupInfo       `json:"backup,omitempty"`
	Snapshots []Snapshot        `json:"snapshots,omitempty"`
	Faults    []Fault           `json:"faults,omitempty"`
	Position  walwatch.Position `json:"watch_position,omitzero"`
	// LogPrefix is the staging server's log_line_prefix, for the watcher.
	LogPrefix string `json:"log_prefix,omitempty"`
	// Step is the job step in progress, kept so that a process killed mid-job
	// leaves a trace: Open reports it and Link or Resync starts over.
	Job  string `json:"job,omitempty"`
	Step string `json:"step,omitempty"`
}

func statePath(stateDir string) string { return filepath.Join(stateDir, stateName) }

// save writes the state atomically, 0600 (see [atomicfile.Write]).
func (st *state) save(stateDir string) error {
	st.Version = stateVersion
	if n := len(st.Faults); n > maxHistory {
		st.Faults = st.Faults[n-maxHistory:]
	}
	if n := len(st.Snapshots); n > maxHistory {
		st.Snapshots = st.Snapshots[n-maxHistory:]
	}
	saved := *st
	saved.Config.Hooks = st.Config.Hooks.commands()
	data, err := json.MarshalIndent(&saved, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(statePath(stateDir), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("stage: state file: %w", err)
	}
	return nil
}

func loadState(stateDir string) (*state, error) {
	data, err := os.ReadFile(statePath(stateDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s: link this staging first", ErrNoState, stateDir)
	}
	if err != nil {
		return nil, fmt.Errorf("stage: state file: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("stage: state file %s: %w", statePath(stateDir), err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("stage: state file %s has version %d, this pgstage reads %d", statePath(stateDir), st.Version, stateVersion)
	}
	return &st, nil
}
