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
// secret.
type state struct {
	Version   int               `json:"version"`
	Config    savedConfig       `json:"config"`
	Linked    bool              `json:"linked"`
	Disabled  bool              `json:"disabled,omitempty"`
	LinkedAt  time.Time         `json:"linked_at,omitzero"`
	Backup    *BackupInfo       `json:"backup,omitempty"`
	Snapshots []Snapshot        `json:"snapshots,omitempty"`
	Clones    []Clone           `json:"clones,omitempty"`
	Faults    []Fault           `json:"faults,omitempty"`
	Position  walwatch.Position `json:"watch_position,omitzero"`
	// Job and Step are the job step in progress, kept so that a process
	// killed mid-job leaves a trace: Open reports it and Link or Resync
	// carries on.
	Job  Job  `json:"job,omitempty"`
	Step Step `json:"step,omitempty"`
}

// savedConfig is the part of a Config the state file keeps: no password,
// no functions (command hooks only). Its JSON is the flat form Config was
// saved in before it had sub-configurations, so older state files load.
type savedConfig struct {
	BackupPath      string         `json:"backup_path"`
	WALPath         string         `json:"wal_path,omitempty"`
	StreamWhenNoWAL bool           `json:"stream_when_no_wal,omitempty"`
	VerifyBackup    bool           `json:"verify_backup,omitempty"`
	BackupSettle    time.Duration  `json:"backup_settle,omitempty"`
	Source          Source         `json:"source"`
	Staging         Staging        `json:"staging"`
	Settings        []Setting      `json:"settings,omitempty"`
	Hooks           Hooks          `json:"hooks,omitempty"`
	StreamTimeout   time.Duration  `json:"stream_timeout,omitempty"`
	PollInterval    time.Duration  `json:"watch_poll_interval,omitempty"`
	PollOnly        bool           `json:"watch_poll_only,omitempty"`
	BackupMode      BackupMode     `json:"backup_mode,omitempty"`
	Take            TakeConfig     `json:"take,omitzero"`
	Liveness        Liveness       `json:"liveness,omitzero"`
	Replay          ReplayConfig   `json:"replay,omitzero"`
	Snapshots       SnapshotConfig `json:"snapshots,omitzero"`
}

func savedConfigOf(c Config) savedConfig {
	src := c.Source
	src.Password = ""
	return savedConfig{
		BackupPath: c.BackupPath, WALPath: c.Restore.WALPath, StreamWhenNoWAL: c.Restore.StreamWhenNoWAL,
		VerifyBackup: c.Restore.Verify, BackupSettle: c.Restore.Settle,
		Source: src, Staging: c.Staging, Settings: c.Settings, Hooks: c.Hooks.commands(),
		StreamTimeout: c.StreamTimeout, PollInterval: c.Watch.PollInterval, PollOnly: c.Watch.PollOnly,
		BackupMode: c.BackupMode, Take: c.Take,
		Liveness: c.Liveness, Replay: c.Replay,
		Snapshots: c.Snapshots,
	}
}

// config returns the saved configuration with what the state file never
// holds taken from live: the password, the logger, progress, snapshotter
// and hook functions, and Heal (auto-heal is what the process that opens
// the staging does while it runs, not part of the staging).
func (s savedConfig) config(live Config) Config {
	c := Config{
		BackupPath: s.BackupPath,
		Restore:    RestoreConfig{WALPath: s.WALPath, StreamWhenNoWAL: s.StreamWhenNoWAL, Verify: s.VerifyBackup, Settle: s.BackupSettle},
		Source:     s.Source, Staging: s.Staging, Settings: s.Settings, Hooks: s.Hooks.withFuncs(live.Hooks),
		StreamTimeout: s.StreamTimeout,
		Watch:         WatchConfig{PollInterval: s.PollInterval, PollOnly: s.PollOnly},
		BackupMode:    s.BackupMode, Take: s.Take, Heal: live.Heal,
		Liveness: s.Liveness, Replay: s.Replay,
		Snapshots:   s.Snapshots,
		Snapshotter: live.Snapshotter, Logger: live.Logger, Progress: live.Progress,
	}
	c.Source.Password = live.Source.Password
	return c
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
	data, err := json.MarshalIndent(st, "", "  ")
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
