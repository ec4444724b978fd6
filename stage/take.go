package stage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/pgstage/pgstage/backupsel"
	"github.com/pgstage/pgstage/backupsel/basebackup"
	"github.com/pgstage/pgstage/internal/pgver"
)

// BackupMode says where the backups a Link or Resync restores come from.
type BackupMode string

// Backup modes.
const (
	// BackupExternal (the default, also ""): something else drops the
	// backups into BackupPath; Link and Resync select one there.
	BackupExternal BackupMode = "external"
	// BackupTake: Link and Resync first take a fresh backup of the source
	// into BackupPath (see [basebackup.Take]), as Source's role, then
	// select and check as with an external backup: the backup taken is
	// selected unless a backup of higher precedence is there (a folder
	// named for a later time).
	BackupTake BackupMode = "take"
)

// TakeConfig tunes the backups taken in take mode; zero fields mean
// basebackup's defaults.
type TakeConfig struct {
	// Compression of the archives, client-side, as pg_basebackup -Z
	// client-<method>; CompressionLevel 0 means the method's default.
	Compression      basebackup.Compression `json:"compression,omitempty"`
	CompressionLevel int                    `json:"compression_level,omitempty"`
	// FastCheckpoint asks the source for an immediate checkpoint; the
	// default spread checkpoint can take up to its checkpoint_timeout.
	FastCheckpoint bool `json:"fast_checkpoint,omitempty"`
	// MaxRate limits how fast the source sends the data files, in bytes
	// per second (32 kB/s to 1 GB/s); 0 means no limit.
	MaxRate int64 `json:"max_rate,omitempty"`
}

// StepTakeBackup is the step of Link and Resync, in take mode, that takes
// the backup (between preflight and the rest). Its Progress reports the
// bytes received in Done and Total, as the restore step does.
const StepTakeBackup Step = "take-backup"

func (l *Linker) takes() bool { return l.cfg.BackupMode == BackupTake }

// withTake returns steps with StepTakeBackup after the preflight in take
// mode, steps itself otherwise.
func (l *Linker) withTake(steps []Step) []Step {
	if !l.takes() {
		return steps
	}
	i := slices.Index(steps, StepPreflight) + 1
	return slices.Insert(slices.Clone(steps), i, StepTakeBackup)
}

// modeProblems checks BackupMode and the heal settings, for validate.
func (cfg Config) modeProblems() []error {
	var errs []error
	switch cfg.BackupMode {
	case "", BackupExternal, BackupTake:
	default:
		errs = append(errs, fmt.Errorf("BackupMode %q is not a backup mode: use %q (the default) or %q", cfg.BackupMode, BackupExternal, BackupTake))
	}
	h := cfg.Heal
	if h.Attempts < 0 || h.Backoff < 0 || h.MaxBackoff < 0 || h.PollInterval < 0 {
		errs = append(errs, errors.New("Heal.Attempts, Heal.Backoff, Heal.MaxBackoff and Heal.PollInterval cannot be negative (0 means the default)"))
	}
	return errs
}

// backupPathProblem is preflight's backup check in take mode: the backup
// is taken after preflight, so the path must be a directory this process
// can write into; it need not hold a backup yet.
func backupPathProblem(path string) *Problem {
	do := "create it, or give this process write and search permission on it: take mode writes the backups there"
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return &Problem{Check: "backup", What: fmt.Sprintf("backup path: %v", err), Do: do, Err: err}
	case !st.IsDir():
		return &Problem{Check: "backup", What: fmt.Sprintf("backup path %s is not a directory", path), Do: do}
	}
	if err := unix.Access(path, unix.W_OK|unix.X_OK); err != nil {
		return &Problem{Check: "backup", What: fmt.Sprintf("backup path %s is not writable by this process: %v", path, err), Do: do, Err: err}
	}
	return nil
}

// takeVersionProblem is preflight's version check in take mode, where the
// backup is not there yet: the backup will be of the source's major, which
// the staging binaries must run.
func (l *Linker) takeVersionProblem(si *sourceInfo, bin pgver.Major) *Problem {
	if !l.takes() || bin == 0 {
		return nil
	}
	if m, err := pgver.Parse(si.ServerVersion); err != nil || m == bin {
		return nil
	}
	e := fmt.Errorf("the source runs PostgreSQL %s, the staging binaries in %s are PostgreSQL %s", si.ServerVersion, l.cfg.Staging.BinDir, bin)
	return &Problem{Check: "version", What: e.Error(), Do: "set Staging.BinDir to binaries of the source's major version (a standby runs the source's major version)", Err: e}
}

// takeBackup is the take step's work: a backup of the source into the
// backup path, then the selection and the checks preflight runs on an
// external backup (see nextBackup).
func (l *Linker) takeBackup(ctx context.Context, pf *preflight, progress func(done, total int64)) (*backupsel.Backup, error) {
	c := l.cfg
	res, err := basebackup.Take(ctx, basebackup.Config{
		Host: c.Source.Host, Port: c.Source.Port, User: c.Source.User, Password: c.Source.Password.Reveal(),
		SSLMode: c.Source.SSLMode, ConnectTimeout: c.Source.ConnectTimeout,
		BackupPath:  c.BackupPath,
		Compression: c.Take.Compression, CompressionLevel: c.Take.CompressionLevel,
		FastCheckpoint: c.Take.FastCheckpoint, MaxRate: c.Take.MaxRate,
		Label:    "pgstage " + c.Staging.ApplicationName,
		Progress: progress,
		Logger:   l.log,
	})
	if err != nil {
		return nil, err
	}
	b, err := l.nextBackup(ctx, pf)
	if err != nil {
		return nil, fmt.Errorf("the backup taken, %s, is whole, but: %w", res.Path, err)
	}
	if b.Location != res.Path {
		l.log.Warn("a backup of higher precedence than the one taken is selected", "taken", res.Path, "selected", b.Location)
	}
	return b, nil
}

// take runs the take step in take mode. It comes before anything of the
// staging is touched, so that a backup that cannot be taken (the source
// busy, say) leaves the staging as it was.
func (j *job) take(ctx context.Context) error {
	l := j.l
	if !l.takes() {
		return nil
	}
	c := l.cfg
	j.enter(StepTakeBackup, "taking a backup of %s:%d into %s", c.Source.Host, c.Source.Port, c.BackupPath)
	idx := slices.Index(j.steps, StepTakeBackup) + 1
	from, to := percent(j.steps, idx, 0, 0), percent(j.steps, idx+1, 0, 0)
	b, err := l.deps.take(ctx, j.pf, func(done, total int64) {
		p := Progress{Job: j.job, Step: StepTakeBackup, Index: idx, Steps: len(j.steps), Done: done, Total: total, Percent: from}
		if total > 0 {
			p.Percent += (to - from) * float64(min(done, total)) / float64(total)
		}
		l.report(p)
	})
	if err != nil {
		return j.fail(err)
	}
	j.backup, j.pf.backup = b, b
	j.selected()
	return nil
}
