package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pgstage/pgstage/backupsel"
	"github.com/pgstage/pgstage/replica"
	"github.com/pgstage/pgstage/walwatch"
)

// Linker is one staging: it links it from a backup, keeps it streaming from
// the source, watches for faults, and takes snapshots. Create it with New
// (a new staging) or Open (one linked before, possibly by another process);
// Close it when done. Jobs (Link, Resync, Sync, Snapshot, Enable, Disable)
// run one at a time; Status, Faults and Events may be called at any time.
//
// A Linker holds an exclusive lock on its state directory for its whole
// life, so a second Linker on the same staging is refused with ErrLocked.
type Linker struct {
	cfg  Config
	log  *slog.Logger
	lock *dirLock
	user osUser

	job sync.Mutex // one job at a time

	mu     sync.Mutex // guards what follows
	st     *state
	sb     standby
	w      watcher
	wDone  chan struct{}
	events chan walwatch.Event
	closed bool
	// restored is set once a job wrote into the data directory, so that a
	// failed job knows to empty it again.
	restored bool
}

// eventBuffer is the capacity of the Events channel.
const eventBuffer = 256

// New checks cfg, takes the staging's lock and returns a Linker for a staging
// not linked yet. It touches nothing else: Link does the work.
func New(cfg Config) (*Linker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	l, err := newLinker(cfg)
	if err != nil {
		return nil, err
	}
	if st, err := loadState(cfg.Staging.StateDir); err == nil && st.Linked {
		l.lock.release()
		return nil, fmt.Errorf("stage: %s is already linked (state in %s): use Open to carry on with it", cfg.Staging.DataDir, cfg.Staging.StateDir)
	}
	l.st = &state{Config: cfg}
	return l, nil
}

// Open carries on with a staging linked before: it reads the state file
// (found from cfg.Staging.DataDir, or cfg.Staging.StateDir), takes the lock,
// and, if the staging server runs, resumes watching its log from where the
// last Linker stopped, so faults raised in between are reported.
//
// The saved configuration is used; cfg supplies what the state file never
// holds: Source.Password, Logger, Progress, Snapshotter and hook functions.
func Open(ctx context.Context, cfg Config) (*Linker, error) {
	cfg = cfg.withDefaults()
	if cfg.Staging.StateDir == "" {
		return nil, fmt.Errorf("%w: set Staging.DataDir (or Staging.StateDir) of the staging to open", ErrInvalidConfig)
	}
	st, err := loadState(cfg.Staging.StateDir)
	if err != nil {
		return nil, err
	}
	saved := st.Config
	saved.Source.Password = cfg.Source.Password
	saved.Logger, saved.Progress, saved.Snapshotter = cfg.Logger, cfg.Progress, cfg.Snapshotter
	saved.Hooks = saved.Hooks.withFuncs(cfg.Hooks)
	saved = saved.withDefaults()
	if err := saved.validate(); err != nil {
		return nil, fmt.Errorf("%w (saved in %s): %w", ErrInvalidConfig, statePath(cfg.Staging.StateDir), err)
	}
	l, err := newLinker(saved)
	if err != nil {
		return nil, err
	}
	// Read again under the lock: the state may have changed meanwhile.
	if st, err = loadState(saved.Staging.StateDir); err != nil {
		l.lock.release()
		return nil, err
	}
	st.Config = saved
	l.st = st
	if st.Job != "" {
		l.log.Warn("a job was cut short; run it again", "job", st.Job, "step", st.Step)
	}
	if st.Linked && !st.Disabled {
		if err := l.attach(ctx); err != nil {
			l.lock.release()
			return nil, err
		}
	}
	return l, nil
}

func newLinker(cfg Config) (*Linker, error) {
	u, err := cfg.runAs()
	if err != nil {
		return nil, fmt.Errorf("%w: staging OS user: %w", ErrInvalidConfig, err)
	}
	lock, err := lockDir(cfg.Staging.StateDir)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Linker{cfg: cfg, log: log, lock: lock, user: u, events: make(chan walwatch.Event, eventBuffer)}, nil
}

// attach picks up a running staging server: the standby handle and the
// watcher, resumed from the saved position.
func (l *Linker) attach(ctx context.Context) error {
	sb, err := l.standby()
	if err != nil {
		return err
	}
	l.sb = sb
	st, err := sb.Status(ctx)
	if err != nil {
		return err
	}
	if !st.Running {
		l.log.Warn("the staging server is not running: Enable starts it", "data_dir", l.cfg.Staging.DataDir)
		return nil
	}
	return l.startWatcher(true)
}

// Config returns the configuration in use, defaults filled in.
func (l *Linker) Config() Config { return l.cfg }

// Close stops watching and releases the lock. The staging server keeps
// running: a later Open carries on with it.
func (l *Linker) Close() error {
	l.job.Lock()
	defer l.job.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.stopWatcher()
	l.mu.Lock()
	err := l.saveLocked()
	l.mu.Unlock()
	close(l.events)
	if lerr := l.lock.release(); err == nil {
		err = lerr
	}
	return err
}

// Events returns the watcher's events (faults, recoveries, the staging
// server's lifecycle) across the Linker's life, whatever the jobs do to the
// watcher. The channel is closed by Close. Events that find it full are
// dropped (Status and Faults still tell).
func (l *Linker) Events() <-chan walwatch.Event { return l.events }

// Faults returns the faults raised since the staging was linked, oldest
// first (the state file keeps the last 1000).
func (l *Linker) Faults() []Fault {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Fault(nil), l.st.Faults...)
}

// Snapshots returns the snapshots taken, oldest first, kept across resyncs.
func (l *Linker) Snapshots() []Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Snapshot(nil), l.st.Snapshots...)
}

// begin starts a job: one at a time, not on a closed Linker.
func (l *Linker) begin() error {
	l.job.Lock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		l.job.Unlock()
		return ErrClosed
	}
	return nil
}

func (l *Linker) end() { l.job.Unlock() }

func (l *Linker) saveLocked() error {
	if err := l.st.save(l.cfg.Staging.StateDir); err != nil {
		l.log.Error("saving the state file", "err", err)
		return err
	}
	return nil
}

func (l *Linker) save() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.saveLocked()
}

// mark records the job step in progress in the state file.
func (l *Linker) mark(job, step string) {
	l.mu.Lock()
	l.st.Job, l.st.Step = job, step
	l.saveLocked()
	l.mu.Unlock()
}

// paths derived from the configuration.
func (l *Linker) logDir() string        { return filepath.Join(l.cfg.Staging.StateDir, "log") }
func (l *Linker) logFile() string       { return filepath.Join(l.logDir(), "staging.log") }
func (l *Linker) passFile() string      { return filepath.Join(l.cfg.Staging.StateDir, "pgpass") }
func (l *Linker) tablespaceDir() string { return l.cfg.Staging.DataDir + ".tablespaces" }

// standby returns the replica handle for the staging.
func (l *Linker) standby() (standby, error) {
	c := l.cfg
	sb, err := replica.New(replica.Config{
		DataDir:         c.Staging.DataDir,
		BinDir:          c.Staging.BinDir,
		Port:            c.Staging.Port,
		SocketDir:       c.Staging.SocketDir,
		Source:          replica.Source{Host: c.Source.Host, Port: c.Source.Port, User: c.Source.User, Password: c.Source.Password, SSLMode: c.Source.SSLMode},
		ApplicationName: c.Staging.ApplicationName,
		SlotName:        c.Staging.SlotName,
		CreateSlot:      c.Staging.CreateSlot,
		PassFile:        l.passFile(),
		LogFile:         l.logFile(),
		OSUser:          c.Staging.OSUser,
		QueryUser:       c.Staging.DBUser,
		StartTimeout:    c.StreamTimeout,
		Logger:          l.log,
	})
	if err != nil {
		return nil, err
	}
	return sb, nil
}

// prepareDirs makes the state directory traversable by the OS user (the
// lock and state file inside stay 0600) and gives it the log directory.
func (l *Linker) prepareDirs() error {
	if err := os.Chmod(l.cfg.Staging.StateDir, 0o711); err != nil {
		return err
	}
	if err := os.MkdirAll(l.logDir(), 0o700); err != nil {
		return err
	}
	return l.chown(l.logDir())
}

func (l *Linker) chown(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return os.Lchown(path, l.user.UID, l.user.GID)
}

func (l *Linker) env(job string) HookEnv {
	c := l.cfg
	l.mu.Lock()
	b := l.st.Backup
	l.mu.Unlock()
	return HookEnv{
		Job: job, DataDir: c.Staging.DataDir, Port: c.Staging.Port, SocketDir: c.Staging.SocketDir,
		BinDir: c.Staging.BinDir, OSUser: l.user.Name, DBUser: c.Staging.DBUser,
		ApplicationName: c.Staging.ApplicationName,
		SourceHost:      c.Source.Host, SourcePort: c.Source.Port, SourceUser: c.Source.User, Backup: b,
	}
}

// Link creates the staging: preflight, select the backup, restore it,
// configure the standby, apply the config settings, start it, wait until it
// streams, start the watcher, then the first sync (a snapshot). Each step is
// reported to Config.Progress and the logger.
//
// If a step fails, the error (a *StepError) names it and why, with the
// server log tail; the staging server is stopped and the data directory
// emptied again, so Link can simply be run again.
func (l *Linker) Link(ctx context.Context) error {
	if err := l.begin(); err != nil {
		return err
	}
	defer l.end()
	l.mu.Lock()
	linked := l.st.Linked
	l.mu.Unlock()
	if linked {
		return fmt.Errorf("stage: %s is already linked: use Resync to rebuild it from a newer backup", l.cfg.Staging.DataDir)
	}
	if err := l.runHooks(ctx, PointPreLink, l.cfg.Hooks.PreLink, l.env(JobLink)); err != nil {
		return err
	}
	if err := l.build(ctx, JobLink, linkSteps, modeLink); err != nil {
		return err
	}
	return l.runHooks(ctx, PointPostLink, l.cfg.Hooks.PostLink, l.env(JobLink))
}

// Resync rebuilds the staging from the backup path: it stops the server and
// the watcher, empties the data directory, selects again (a newer
// PostgreSQL_T folder is taken), restores, and links as Link does, on the
// same port with the same settings. The snapshot and fault history is kept.
// Resync also recovers from a Link that failed.
func (l *Linker) Resync(ctx context.Context) error {
	if err := l.begin(); err != nil {
		return err
	}
	defer l.end()
	// Resync empties the data directory: only one this staging owns, linked
	// now or before (a failed resync), or left by a job that was cut short.
	l.mu.Lock()
	owned := l.st.Linked || l.st.Backup != nil || l.st.Job != ""
	l.mu.Unlock()
	if !owned {
		return fmt.Errorf("%w: %s: Resync rebuilds a linked staging (use Link for a new one)", ErrNotLinked, l.cfg.Staging.DataDir)
	}
	if err := l.runHooks(ctx, PointPreLink, l.cfg.Hooks.PreLink, l.env(JobResync)); err != nil {
		return err
	}
	if err := l.build(ctx, JobResync, resyncSteps, modeResync); err != nil {
		return err
	}
	return l.runHooks(ctx, PointPostLink, l.cfg.Hooks.PostLink, l.env(JobResync))
}

// build is the body of Link and Resync.
func (l *Linker) build(ctx context.Context, job string, steps []string, mode preflightMode) (err error) {
	fail := func(step string, err error) error {
		se := &StepError{Job: job, Step: step, Err: err}
		if l.sb != nil && (step == StepStart || step == StepStream || step == StepWatch || step == StepSync) {
			var startErr *replica.StartError
			var streamErr *replica.StreamError
			if !errors.As(err, &startErr) && !errors.As(err, &streamErr) {
				se.LogTail = l.sb.LogTail(20)
			}
		}
		return se
	}

	l.step(job, steps, StepPreflight, "checking the backup, the source and the staging host")
	l.mark(job, StepPreflight)
	pf, err := l.runPreflight(ctx, mode)
	if err != nil {
		l.mark("", "")
		return err
	}
	b := pf.backup
	l.log.Info("backup selected", "job", job, "backup", b.Name, "location", b.Location, "version", b.PGVersion, "passed_over", len(b.Passed))

	defer func() {
		if err != nil {
			l.undo(job)
		}
	}()
	if mode == modeResync {
		l.step(job, steps, StepStop, "stopping the staging server")
		l.mark(job, StepStop)
		l.stopWatcher()
		if sb, serr := l.standby(); serr == nil {
			if _, statErr := os.Stat(filepath.Join(l.cfg.Staging.DataDir, "PG_VERSION")); statErr == nil {
				if err := sb.Stop(ctx); err != nil {
					return fail(StepStop, err)
				}
			}
		}
		if err := portFree(l.cfg.Staging.Port, l.cfg.Staging.SocketDir); err != nil {
			return fail(StepStop, fmt.Errorf("%w: choose another Staging.Port or stop what uses it", err))
		}
		l.step(job, steps, StepClear, "emptying the data directory")
		l.mark(job, StepClear)
		l.mu.Lock()
		l.st.Linked = false
		l.restored = true
		l.mu.Unlock()
		if err := clearDir(l.cfg.Staging.DataDir); err != nil {
			return fail(StepClear, err)
		}
		if err := clearDir(l.tablespaceDir()); err != nil {
			return fail(StepClear, err)
		}
	}

	if err := l.prepareDirs(); err != nil {
		return fail(StepRestore, err)
	}
	l.step(job, steps, StepRestore, fmt.Sprintf("restoring %s (%s)", b.Name, humanBytes(b.TotalBytes)))
	l.mark(job, StepRestore)
	l.mu.Lock()
	l.restored = true
	l.mu.Unlock()
	ropts := backupsel.RestoreOptions{
		Overwrite:     true, // preflight saw it absent or empty, or the resync emptied it
		TablespaceDir: l.tablespaceDir(),
		Logger:        l.log,
		Progress: func(done, total int64) {
			idx := indexOf(steps, StepRestore)
			l.report(Progress{Job: job, Step: StepRestore, Index: idx, Steps: len(steps), Done: done, Total: total, Percent: percent(steps, idx, done, total)})
		},
	}
	if os.Geteuid() == 0 {
		ropts.UID, ropts.GID = l.user.UID, l.user.GID
	}
	// A deferred zip (see backupsel.Backup.Deferred) can be found not whole
	// only now: pass over it, as Select would have, and take the next.
	var passOver []backupsel.Candidate
	for {
		var r restorer = b
		_, err := r.Restore(ctx, l.cfg.Staging.DataDir, ropts)
		var nw *backupsel.NotWholeError
		if err == nil {
			break
		}
		if !errors.As(err, &nw) || ctx.Err() != nil {
			return fail(StepRestore, err)
		}
		l.log.Warn("backup not whole, taking the next one", "job", job, "backup", b.Name, "reason", nw.Err.Error())
		// The reason in full is in err; the candidate list says it short.
		passOver = append(passOver, backupsel.Candidate{Name: b.Name, Location: b.Location, Layout: b.Layout, Time: b.Time,
			Reason: "not whole (found while restoring it, see above)", Err: err})
		next, serr := l.nextBackup(ctx, pf, passOver)
		if serr != nil {
			return fail(StepRestore, fmt.Errorf("%w; and no other backup can be used: %w", err, serr))
		}
		b = next
		l.log.Info("backup selected", "job", job, "backup", b.Name, "location", b.Location, "version", b.PGVersion, "passed_over", len(b.Passed))
		l.step(job, steps, StepRestore, fmt.Sprintf("restoring %s (%s)", b.Name, humanBytes(b.TotalBytes)))
	}
	if len(b.Tablespaces) > 0 {
		if err := l.chown(l.tablespaceDir()); err != nil {
			return fail(StepRestore, err)
		}
	}

	l.step(job, steps, StepConfigure, "making it a standby of "+l.cfg.Source.Host)
	l.mark(job, StepConfigure)
	sb, err := l.standby()
	if err != nil {
		return fail(StepConfigure, err)
	}
	l.mu.Lock()
	l.sb = sb
	l.mu.Unlock()
	if _, err := sb.Setup(ctx); err != nil {
		return fail(StepConfigure, err)
	}

	l.step(job, steps, StepSettings, fmt.Sprintf("applying %d config setting(s)", len(l.cfg.Settings)))
	l.mark(job, StepSettings)
	prefix, err := applySettings(l.cfg.Staging.DataDir, l.cfg.Settings, pf.binVersion)
	if err != nil {
		return fail(StepSettings, err)
	}

	l.step(job, steps, StepStart, fmt.Sprintf("starting the staging server on port %d", l.cfg.Staging.Port))
	l.mark(job, StepStart)
	if err := sb.Start(ctx); err != nil {
		return fail(StepStart, err)
	}

	l.step(job, steps, StepStream, "waiting until it streams from the source")
	l.mark(job, StepStream)
	wctx, cancel := context.WithTimeout(ctx, l.cfg.StreamTimeout)
	_, err = sb.WaitStreaming(wctx)
	cancel()
	if err != nil {
		return fail(StepStream, err)
	}

	l.step(job, steps, StepWatch, "watching the staging server log")
	l.mark(job, StepWatch)
	l.mu.Lock()
	l.st.Config.Settings = l.cfg.Settings
	l.st.Backup = &BackupInfo{
		Name: b.Name, Location: b.Location, Layout: b.Layout.String(), Time: b.Time,
		PGVersion: b.PGVersion, SystemIdentifier: b.SystemIdentifier, Bytes: b.TotalBytes,
	}
	for _, c := range b.Passed {
		l.st.Backup.PassedOver = append(l.st.Backup.PassedOver, PassedBackup{Name: c.Name, Reason: c.Reason})
	}
	l.st.Position = walwatch.Position{}
	l.st.LogPrefix = prefix
	l.mu.Unlock()
	if err := l.startWatcher(false); err != nil {
		return fail(StepWatch, err)
	}

	l.step(job, steps, StepSync, "first sync")
	l.mark(job, StepSync)
	if _, err := l.sync(ctx, job); err != nil {
		return fail(StepSync, err)
	}
	l.mu.Lock()
	l.st.Linked, l.st.Disabled = true, false
	l.st.LinkedAt = time.Now()
	l.st.Job, l.st.Step = "", ""
	l.restored = false
	l.saveLocked()
	l.mu.Unlock()
	l.report(Progress{Job: job, Step: StepSync, Index: len(steps), Steps: len(steps), Percent: 100, Message: "linked"})
	l.log.Info("staging linked", "job", job, "data_dir", l.cfg.Staging.DataDir, "backup", b.Name)
	return nil
}

// undo brings a failed link or resync back to a state Link or Resync
// recovers from: no watcher, no server, an empty data directory.
func (l *Linker) undo(job string) {
	l.stopWatcher()
	l.mu.Lock()
	sb, restored := l.sb, l.restored
	l.mu.Unlock()
	if !restored {
		l.mark("", "")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if sb != nil {
		if err := sb.Stop(ctx); err != nil {
			l.log.Error("stopping the staging server after a failed "+job, "err", err)
		}
	}
	if err := clearDir(l.cfg.Staging.DataDir); err != nil {
		l.log.Error("emptying the data directory after a failed "+job, "err", err)
	}
	clearDir(l.tablespaceDir())
	l.mu.Lock()
	l.restored = false
	l.st.Linked = false
	l.st.Job, l.st.Step = "", ""
	l.saveLocked()
	l.mu.Unlock()
}

// clearDir removes what dir holds, keeping dir itself (it may be a mount
// point). An absent dir is fine.
func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// Enable starts the staging server and the watcher, then waits until it
// streams. If it does not stream within StreamTimeout the error says why,
// and the staging stays enabled and watched: the fault is reported too.
func (l *Linker) Enable(ctx context.Context) error {
	if err := l.begin(); err != nil {
		return err
	}
	defer l.end()
	if err := l.needLinked(); err != nil {
		return err
	}
	steps := []string{StepStart, StepWatch, StepStream}
	l.step(JobEnable, steps, StepStart, "starting the staging server")
	sb, err := l.standby()
	if err != nil {
		return &StepError{Job: JobEnable, Step: StepStart, Err: err}
	}
	l.mu.Lock()
	l.sb = sb
	l.mu.Unlock()
	if err := l.prepareDirs(); err != nil {
		return &StepError{Job: JobEnable, Step: StepStart, Err: err}
	}
	if err := sb.Start(ctx); err != nil {
		return &StepError{Job: JobEnable, Step: StepStart, Err: err}
	}
	l.mu.Lock()
	l.st.Disabled = false
	l.saveLocked()
	l.mu.Unlock()
	l.step(JobEnable, steps, StepWatch, "watching the staging server log")
	if err := l.startWatcher(true); err != nil {
		return &StepError{Job: JobEnable, Step: StepWatch, Err: err}
	}
	l.step(JobEnable, steps, StepStream, "waiting until it streams from the source")
	wctx, cancel := context.WithTimeout(ctx, l.cfg.StreamTimeout)
	defer cancel()
	if _, err := sb.WaitStreaming(wctx); err != nil {
		return &StepError{Job: JobEnable, Step: StepStream, Err: err}
	}
	return nil
}

// Disable stops the watcher and then the staging server. A disabled staging
// raises no faults; Snapshot refuses it with ErrDisabled until Enable.
func (l *Linker) Disable(ctx context.Context) error {
	if err := l.begin(); err != nil {
		return err
	}
	defer l.end()
	if err := l.needLinked(); err != nil {
		return err
	}
	l.step(JobDisable, []string{StepStop}, StepStop, "stopping the watcher and the staging server")
	l.stopWatcher()
	l.mu.Lock()
	l.st.Disabled = true
	// An outage open when the staging is disabled is over: nothing watches.
	l.closeFaultLocked(time.Now())
	l.saveLocked()
	l.mu.Unlock()
	sb, err := l.standby()
	if err != nil {
		return &StepError{Job: JobDisable, Step: StepStop, Err: err}
	}
	if err := sb.Stop(ctx); err != nil {
		return &StepError{Job: JobDisable, Step: StepStop, Err: err}
	}
	return nil
}

func (l *Linker) needLinked() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.st.Linked {
		return fmt.Errorf("%w: %s (run Link, or Resync after a failed link)", ErrNotLinked, l.cfg.Staging.DataDir)
	}
	return nil
}

func indexOf(steps []string, s string) int {
	for i, x := range steps {
		if x == s {
			return i + 1
		}
	}
	return 0
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Preflight runs the checks Link (or, on a linked staging, Resync) runs
// first, touching nothing, and reports every problem at once in a
// *PreflightError.
func (l *Linker) Preflight(ctx context.Context) error {
	if err := l.begin(); err != nil {
		return err
	}
	defer l.end()
	mode := modeLink
	l.mu.Lock()
	if l.st.Linked {
		mode = modeResync
	}
	l.mu.Unlock()
	_, err := l.runPreflight(ctx, mode)
	return err
}
