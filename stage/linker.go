package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/pgstage/pgstage/internal/osuser"
	"github.com/pgstage/pgstage/replica"
	"github.com/pgstage/pgstage/walwatch"
)

// Linker is one staging: it links it from a backup, keeps it streaming from
// the source, watches for faults, and takes snapshots. Create it with New
// (a new staging) or Open (one linked before, possibly by another process);
// Close it when done. Jobs (Link, Resync, Sync, Snapshot, Enable, Disable)
// run one at a time; Status, Faults and Events may be called at any time.
//
// A Linker holds an exclusive lock on its state directory and one on its
// data directory for its whole life, so a second Linker on the same staging
// (or on the same data directory with another state directory) is refused
// with ErrLocked.
type Linker struct {
	cfg   Config
	log   *slog.Logger
	locks []*fileLock
	user  osuser.User
	deps  deps

	job sync.Mutex // one job at a time

	mu     sync.Mutex // guards what follows
	st     *state
	sb     standby
	w      watcher
	wDone  chan struct{}
	mon    *monitorRun // the replay monitor, running with the watcher
	events chan walwatch.Event
	closed bool
	heal   *healer // nil unless Config.Heal.Auto
	logErr string  // the watcher cannot read the log: why (see watchError)
	// schedStop stops the snapshot scheduler (nil: none runs).
	schedStop context.CancelFunc
}

// eventBuffer is the capacity of the Events channel.
const eventBuffer = 256

// New checks cfg, takes the staging's locks and returns a Linker for a
// staging not linked yet. It touches nothing else: Link does the work. A
// staging whose Link was cut short (the process died) is taken up again:
// Link carries on with it.
func New(cfg Config) (*Linker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	l, err := newLinker(cfg)
	if err != nil {
		return nil, err
	}
	st, err := loadState(cfg.Staging.StateDir)
	switch {
	case errors.Is(err, ErrNoState):
		st = &state{}
	case err != nil:
		l.release()
		return nil, err
	case st.Linked:
		l.release()
		return nil, fmt.Errorf("stage: %s is already linked (state in %s): use Open to carry on with it", cfg.Staging.DataDir, cfg.Staging.StateDir)
	}
	st.Config = savedConfigOf(cfg)
	l.st = st
	l.startHealer()
	return l, nil
}

// Open carries on with a staging linked before: it reads the state file
// (found from cfg.Staging.DataDir, or cfg.Staging.StateDir), takes the
// locks, and, if the staging server runs, resumes watching its log from
// where the last Linker stopped, so faults raised in between are reported,
// and reads the log up to now, so that Status tells the present state.
//
// The saved configuration is used; cfg supplies what the state file never
// holds: Source.Password, Logger, Progress, Snapshotter and hook functions,
// and Heal (auto-heal, this process's choice).
func Open(ctx context.Context, cfg Config) (*Linker, error) {
	cfg = cfg.withDefaults()
	if cfg.Staging.StateDir == "" {
		return nil, fmt.Errorf("%w: set Staging.DataDir (or Staging.StateDir) of the staging to open", ErrInvalidConfig)
	}
	st, err := loadState(cfg.Staging.StateDir)
	if err != nil {
		return nil, err
	}
	saved := st.Config.config(cfg).withDefaults()
	if err := saved.validate(); err != nil {
		return nil, fmt.Errorf("%w (saved in %s): %w", ErrInvalidConfig, statePath(cfg.Staging.StateDir), err)
	}
	l, err := newLinker(saved)
	if err != nil {
		return nil, err
	}
	// Read again under the lock: the state may have changed meanwhile.
	if st, err = loadState(saved.Staging.StateDir); err != nil {
		l.release()
		return nil, err
	}
	l.st = st
	if st.Job != "" {
		l.log.Warn("a job was cut short; run it again", "job", st.Job, "step", st.Step)
	}
	if st.Linked && !st.Disabled {
		if err := l.attach(ctx); err != nil {
			l.stopWatcher()
			l.release()
			return nil, err
		}
		l.startPolicy()
	}
	l.startHealer()
	return l, nil
}

func newLinker(cfg Config) (*Linker, error) {
	u, err := osuser.RunAs(cfg.Staging.OSUser)
	if err != nil {
		return nil, fmt.Errorf("%w: Staging.OSUser: %w", ErrInvalidConfig, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Linker{cfg: cfg, log: log, user: u, events: make(chan walwatch.Event, eventBuffer)}
	l.deps = l.realDeps()
	// The data directory first: when its parent is missing, that is what
	// the error names.
	dl, err := lockDataDir(cfg.Staging.DataDir, cfg.Staging.StateDir)
	if err != nil {
		return nil, err
	}
	sl, err := lockStateDir(cfg.Staging.StateDir)
	if err != nil {
		dl.release()
		return nil, err
	}
	l.locks = []*fileLock{sl, dl}
	return l, nil
}

// release gives up the Linker's locks.
func (l *Linker) release() error {
	var errs []error
	for _, lk := range l.locks {
		errs = append(errs, lk.release())
	}
	return errors.Join(errs...)
}

// attach picks up a running staging server: the standby handle, the
// watcher resumed from the saved position, and the present state.
func (l *Linker) attach(ctx context.Context) error {
	sb, err := l.deps.standby()
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.sb = sb
	l.mu.Unlock()
	st, err := sb.Status(ctx)
	if err != nil {
		return err
	}
	if !st.Running {
		l.log.Warn("the staging server is not running: Enable starts it", "data_dir", l.cfg.Staging.DataDir)
		return nil
	}
	if err := l.startWatcher(true); err != nil {
		return err
	}
	return l.catchUp(ctx)
}

// Config returns the configuration in use, defaults filled in.
func (l *Linker) Config() Config { return l.cfg }

// Close stops watching and releases the locks. The staging server keeps
// running: a later Open carries on with it.
func (l *Linker) Close() error {
	l.stopHealer() // first: a heal under way holds the job lock
	l.job.Lock()
	defer l.job.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.stopPolicy()
	l.stopWatcher()
	l.mu.Lock()
	err := l.saveLocked()
	sb := l.sb
	l.mu.Unlock()
	// The standby handle keeps a connection for its queries (Status,
	// WaitStreaming): its backend would idle on the server until the
	// garbage collector closed the socket.
	if c, ok := sb.(io.Closer); ok {
		c.Close()
	}
	close(l.events)
	return errors.Join(err, l.release())
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

// mark records the job step in progress in the state file.
func (l *Linker) mark(job Job, step Step) {
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

// newStandby returns the replica handle for the staging.
func (l *Linker) newStandby() (standby, error) {
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
		Liveness:        c.Liveness,
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
	l.trimEarlyLog()
	return l.user.Chown(l.logDir())
}

func (l *Linker) env(job Job) HookEnv {
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
