package stage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pgstage/pgstage/backupsel"
	"github.com/pgstage/pgstage/replica"
	"github.com/pgstage/pgstage/walwatch"
)

// Link creates the staging: preflight, select the backup, restore it,
// configure the standby, apply the config settings, start it, wait until it
// streams, start the watcher, then the first sync (a snapshot). Each step is
// reported to Config.Progress and the logger.
//
// If a step fails, the error (a *StepError) names it and why, with the
// server log tail; the staging server is stopped and the data directory
// emptied again, so Link can simply be run again. Link also carries on
// after a process that died in the middle of a Link on this staging: it
// stops the server that process started and empties what it restored
// before linking again.
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
	if err := l.build(ctx, JobLink); err != nil {
		return err
	}
	return l.runHooks(ctx, PointPostLink, l.cfg.Hooks.PostLink, l.env(JobLink))
}

// Resync rebuilds the staging from the backup path: it stops the server and
// the watcher, empties the data directory, selects again (a newer
// PostgreSQL_T folder is taken), restores, and links as Link does, on the
// same port with the same settings. The snapshot and fault history is kept.
// Resync also recovers from a Link that failed or was cut short.
func (l *Linker) Resync(ctx context.Context) error {
	if err := l.begin(); err != nil {
		return err
	}
	defer l.end()
	return l.resync(ctx)
}

// resync is Resync under the job lock (auto-heal calls it too).
func (l *Linker) resync(ctx context.Context) error {
	// Resync empties the data directory: only one this staging owns.
	if !l.ownsDataDir() {
		return fmt.Errorf("%w: %s: Resync rebuilds a linked staging (use Link for a new one)", ErrNotLinked, l.cfg.Staging.DataDir)
	}
	if err := l.runHooks(ctx, PointPreLink, l.cfg.Hooks.PreLink, l.env(JobResync)); err != nil {
		return err
	}
	if err := l.build(ctx, JobResync); err != nil {
		return err
	}
	return l.runHooks(ctx, PointPostLink, l.cfg.Hooks.PostLink, l.env(JobResync))
}

// ownsDataDir reports whether the data directory holds what this staging
// wrote: it is linked, or was (a failed resync), or a job cut short got
// past preflight, which saw the directory absent or empty.
func (l *Linker) ownsDataDir() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st.Linked || l.st.Backup != nil || l.st.Job != "" && l.st.Step != StepPreflight
}

// unfinished reports whether a process died in a link or resync of this
// staging after it began writing into the data directory.
func (l *Linker) unfinished() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.st.Linked && l.st.Job != "" && l.st.Step != StepPreflight
}

// job is a link or resync in progress, with what its steps learn for the
// steps that follow.
type job struct {
	run
	pf     *preflight
	backup *backupsel.Backup // the backup being restored
	sb     standby           // the staging server, made once per job
}

// build is the body of Link and Resync: one step after the other.
//
// A link carries on after a process that died in one (l.unfinished): the
// data directory is this staging's, so it is treated as a resync's.
func (l *Linker) build(ctx context.Context, name Job) (err error) {
	steps := linkSteps
	redo := name == JobResync || l.unfinished()
	if redo {
		steps = resyncSteps
	}
	steps = l.withTake(steps)
	j := &job{run: run{l: l, job: name, steps: steps, mark: true}}
	if err := j.preflight(ctx, redo); err != nil {
		l.mark("", "")
		return err
	}
	if err := j.take(ctx); err != nil { // before undo: it leaves the staging as it was
		l.mark("", "")
		return err
	}
	defer func() {
		if err != nil {
			l.undo(name)
		}
	}()
	if redo {
		if err := j.stop(ctx); err != nil {
			return err
		}
		if err := j.clear(); err != nil {
			return err
		}
	}
	if err := j.restore(ctx); err != nil {
		return err
	}
	if err := j.configure(ctx); err != nil {
		return err
	}
	if err := j.settings(); err != nil {
		return err
	}
	if err := j.start(ctx); err != nil {
		return err
	}
	if err := j.stream(ctx); err != nil {
		return err
	}
	if err := j.watch(); err != nil {
		return err
	}
	if err := j.sync(ctx); err != nil {
		return err
	}
	j.finish()
	return nil
}

// preflight checks everything the job needs, touching nothing, and makes
// the standby handle the later steps share.
func (j *job) preflight(ctx context.Context, redo bool) error {
	j.enter(StepPreflight, "checking the backup, the source and the staging host")
	mode := modeLink
	if redo {
		mode = modeResync
	}
	pf, err := j.l.deps.preflight(ctx, mode)
	if err != nil {
		return err
	}
	sb, err := j.l.deps.standby()
	if err != nil {
		return j.fail(err)
	}
	j.pf, j.backup, j.sb = pf, pf.backup, sb
	j.l.mu.Lock()
	j.l.sb = sb
	j.l.mu.Unlock()
	j.selected()
	return nil
}

func (j *job) selected() {
	b := j.backup
	if b == nil {
		return // take mode: selected once taken
	}
	j.l.log.Info("backup selected", "job", j.job, "backup", b.Name, "location", b.Location, "version", b.PGVersion, "passed_over", len(b.Passed))
}

// stop stops the watcher and the staging server of a resync (or of a job
// cut short), and checks that nothing else took its port meanwhile.
func (j *job) stop(ctx context.Context) error {
	j.enter(StepStop, "stopping the staging server")
	j.l.stopWatcher()
	if err := j.sb.Stop(ctx); err != nil {
		return j.fail(err)
	}
	c := j.l.cfg.Staging
	if err := portFree(c.Port, c.SocketDir); err != nil {
		return j.fail(fmt.Errorf("%w: choose another Staging.Port or stop what uses it", err))
	}
	return nil
}

// clear empties the data directory and the tablespaces beside it.
func (j *job) clear() error {
	j.enter(StepClear, "emptying the data directory")
	j.l.mu.Lock()
	j.l.st.Linked = false
	j.l.mu.Unlock()
	if err := clearDir(j.l.cfg.Staging.DataDir); err != nil {
		return j.fail(err)
	}
	return j.fail(clearDir(j.l.tablespaceDir()))
}

// restore writes the backup into the data directory and records which
// backup the staging holds from then on.
func (j *job) restore(ctx context.Context) error {
	l := j.l
	if err := l.prepareDirs(); err != nil {
		return j.fail(err)
	}
	j.enter(StepRestore, "restoring %s (%s)", j.backup.Name, humanBytes(j.backup.TotalBytes))
	if err := l.makeDataDir(ctx); err != nil {
		return j.fail(err)
	}
	opts := backupsel.RestoreOptions{
		Overwrite:     true, // preflight saw it absent or empty, or the job emptied it
		TablespaceDir: l.tablespaceDir(),
		Logger:        l.log,
		Progress:      j.restored,
		Writers:       l.cfg.Restore.Writers,
	}
	if os.Geteuid() == 0 {
		opts.UID, opts.GID = l.user.UID, l.user.GID
	}
	err := l.deps.restore(ctx, j.backup, l.cfg.Staging.DataDir, opts)
	for err != nil {
		if err = j.passOver(ctx, err); err != nil {
			return j.fail(err)
		}
		err = l.deps.restore(ctx, j.backup, l.cfg.Staging.DataDir, opts)
	}
	if len(j.backup.Tablespaces) > 0 {
		if err := l.user.Chown(l.tablespaceDir()); err != nil {
			return j.fail(err)
		}
	}
	b := j.backup
	info := &BackupInfo{
		Name: b.Name, Location: b.Location, Layout: b.Layout.String(), Time: b.Time,
		PGVersion: b.PGVersion, SystemIdentifier: b.SystemIdentifier, Bytes: b.TotalBytes,
	}
	for _, c := range b.Passed {
		info.PassedOver = append(info.PassedOver, PassedBackup{Name: c.Name, Reason: c.Reason})
	}
	l.mu.Lock()
	l.st.Backup = info
	l.st.Position = walwatch.Position{}
	l.saveLocked()
	l.mu.Unlock()
	return nil
}

// passOver handles a restore that failed: a deferred backup (a zip, or
// compressed archives; see backupsel.Backup.Deferred) can be found not
// whole only while restoring it. It is passed over, as Select would have, and the next backup by
// precedence is selected and checked as preflight checked the first. Any
// other failure is returned as it is.
func (j *job) passOver(ctx context.Context, err error) error {
	var nw *backupsel.NotWholeError
	if !errors.As(err, &nw) || ctx.Err() != nil {
		return err
	}
	b := j.backup
	j.l.log.Warn("backup not whole, taking the next one", "job", j.job, "backup", b.Name, "reason", nw.Err.Error())
	// The reason in full is in err; the candidate list says it short.
	j.pf.passOver = append(j.pf.passOver, backupsel.Candidate{Name: b.Name, Location: b.Location, Layout: b.Layout, Time: b.Time,
		Reason: "not whole (found while restoring it, see above)", Err: err})
	next, serr := j.l.nextBackup(ctx, j.pf)
	if serr != nil {
		return fmt.Errorf("%w; and no other backup can be used: %w", err, serr)
	}
	if cerr := clearDir(j.l.cfg.Staging.DataDir); cerr != nil {
		return cerr
	}
	j.backup = next
	j.selected()
	j.enter(StepRestore, "restoring %s (%s)", next.Name, humanBytes(next.TotalBytes))
	return nil
}

// configure makes the restored data directory a standby of the source.
func (j *job) configure(ctx context.Context) error {
	j.enter(StepConfigure, "making it a standby of %s", j.l.cfg.Source.Host)
	_, err := j.sb.Setup(ctx)
	return j.fail(err)
}

// settings applies pgstage's own settings and the user's.
func (j *job) settings() error {
	j.enter(StepSettings, "applying %d config setting(s)", len(j.l.cfg.Settings))
	return j.fail(applySettings(j.l.cfg.Staging.DataDir, logSettings(j.pf.binMajor, j.l.logDir(), j.l.cfg.Watch.Logs), j.l.cfg.Settings, j.pf.binMajor))
}

func (j *job) start(ctx context.Context) error {
	j.enter(StepStart, "starting the staging server on port %d", j.l.cfg.Staging.Port)
	return j.serverFail(j.sb.Start(ctx))
}

func (j *job) stream(ctx context.Context) error {
	j.enter(StepStream, "waiting until it streams from the source")
	ctx, cancel := context.WithTimeout(ctx, j.l.cfg.StreamTimeout)
	defer cancel()
	_, err := j.sb.WaitStreaming(ctx)
	return j.serverFail(err)
}

func (j *job) watch() error {
	j.enter(StepWatch, "watching the staging server log")
	return j.serverFail(j.l.startWatcher(false))
}

func (j *job) sync(ctx context.Context) error {
	j.enter(StepSync, "first sync")
	_, err := j.l.sync(ctx, j.job)
	return j.serverFail(err)
}

// serverFail is fail for the steps that run the server: the error carries
// the tail of the server log, unless replica's error already does.
func (j *job) serverFail(err error) error {
	if err == nil {
		return nil
	}
	se := &StepError{Job: j.job, Step: j.at, Err: err}
	var startErr *replica.StartError
	var streamErr *replica.StreamError
	if !errors.As(err, &startErr) && !errors.As(err, &streamErr) {
		se.LogTail = j.sb.LogTail(20)
	}
	return se
}

// finish records the staging linked.
func (j *job) finish() {
	l := j.l
	l.mu.Lock()
	l.st.Config = savedConfigOf(l.cfg)
	l.st.Linked, l.st.Disabled = true, false
	l.st.LinkedAt = time.Now()
	l.st.Job, l.st.Step = "", ""
	l.saveLocked()
	l.mu.Unlock()
	j.done("linked")
	l.startPolicy()
	l.log.Info("staging linked", "job", j.job, "data_dir", l.cfg.Staging.DataDir, "backup", j.backup.Name)
}

// undo brings a failed link or resync back to a state Link or Resync
// recovers from: no watcher, no server, an empty data directory. It runs
// only once the job got past preflight, which found the directory absent,
// empty or this staging's.
func (l *Linker) undo(name Job) {
	l.stopWatcher()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l.mu.Lock()
	sb := l.sb
	l.mu.Unlock()
	if sb != nil {
		if err := sb.Stop(ctx); err != nil {
			l.log.Error("stopping the staging server after a failed "+string(name), "err", err)
		}
	}
	if err := clearDir(l.cfg.Staging.DataDir); err != nil {
		l.log.Error("emptying the data directory after a failed "+string(name), "err", err)
	}
	if err := clearDir(l.tablespaceDir()); err != nil {
		l.log.Error("emptying the tablespace directory after a failed "+string(name), "err", err)
	}
	l.mu.Lock()
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
