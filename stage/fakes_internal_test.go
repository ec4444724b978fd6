package stage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pgstage/pgstage/backupsel"
	"github.com/pgstage/pgstage/internal/pgver"
	"github.com/pgstage/pgstage/replica"
	"github.com/pgstage/pgstage/walwatch"
	"github.com/stretchr/testify/require"
)

// The fakes stand for what needs a server, a backup or a log, so that the
// tests reach stage's own logic: the steps and their undo, the fault
// bookkeeping, Status.

var errInjected = errors.New("injected failure")

// fakeStandby is a staging server that runs when told and fails where told.
type fakeStandby struct {
	mu      sync.Mutex
	fail    string // the method that fails: Setup, Start, Stop, WaitStreaming
	running bool
	calls   []string
}

func (f *fakeStandby) call(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
	if f.fail == name {
		return errInjected
	}
	switch name {
	case "Start":
		f.running = true
	case "Stop":
		f.running = false
	}
	return nil
}

func (f *fakeStandby) Setup(context.Context) (*replica.Result, error) {
	return &replica.Result{}, f.call("Setup")
}
func (f *fakeStandby) Start(context.Context) error { return f.call("Start") }
func (f *fakeStandby) Stop(context.Context) error  { return f.call("Stop") }
func (f *fakeStandby) Status(context.Context) (replica.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return replica.Status{Running: f.running, WalReceiver: f.running}, nil
}
func (f *fakeStandby) WaitStreaming(context.Context) (*replica.Streaming, error) {
	return &replica.Streaming{Method: "fake"}, f.call("WaitStreaming")
}
func (f *fakeStandby) LogTail(int) string { return "the fake server's log" }

func (f *fakeStandby) isRunning() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

// fakeWatcher is a log watcher fed by the test.
type fakeWatcher struct {
	events chan walwatch.Event
	errs   chan error
	mu     sync.Mutex
	state  walwatch.State
	closed bool
}

func newFakeWatcher() *fakeWatcher {
	return &fakeWatcher{events: make(chan walwatch.Event, 16), errs: make(chan error, 16), state: walwatch.State{Phase: walwatch.PhaseStreaming}}
}

func (w *fakeWatcher) Events() <-chan walwatch.Event { return w.events }
func (w *fakeWatcher) Errors() <-chan error          { return w.errs }
func (w *fakeWatcher) State() walwatch.State {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state
}
func (w *fakeWatcher) setState(s walwatch.State) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.state = s
}
func (w *fakeWatcher) Position() walwatch.Position { return walwatch.Position{} }
func (w *fakeWatcher) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.closed = true
		close(w.events)
		close(w.errs)
	}
	return nil
}

// fakeServer answers the position queries.
type fakeServer struct{ receiver string }

func (s *fakeServer) position(context.Context) (*position, error) {
	return &position{Receiver: s.receiver, ReplayLSN: "0/3000000", ReceiveLSN: "0/3000000", Timeline: 1, Method: "sql"}, nil
}
func (s *fakeServer) restartpoint(context.Context) error { return nil }
func (s *fakeServer) close()                             {}

// rig is a Linker on fakes, with the knobs the tests turn.
type rig struct {
	l        *Linker
	sb       *fakeStandby
	w        *fakeWatcher
	srv      *fakeServer
	cfg      Config
	progress []Progress
	// failStep makes the named step fail (restore, settings, watch, sync);
	// the standby's failures are set on sb.fail.
	failStep Step
}

func newRig(t *testing.T) *rig {
	t.Helper()
	dir := t.TempDir()
	r := &rig{sb: &fakeStandby{}, w: newFakeWatcher(), srv: &fakeServer{receiver: "streaming"}}
	r.cfg = Config{
		BackupPath: filepath.Join(dir, "backups"),
		Source:     Source{Host: "source.invalid", User: "replicator", Password: "pw"},
		Staging:    Staging{DataDir: filepath.Join(dir, "data"), Port: 54329, BinDir: filepath.Join(dir, "bin")},
		Progress:   func(p Progress) { r.progress = append(r.progress, p) },
	}
	l, err := New(r.cfg)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	r.l = l
	l.deps = deps{
		preflight: func(context.Context, preflightMode) (*preflight, error) {
			b := &backupsel.Backup{Name: "PostgreSQL_T20261201000000", Location: "/backups/PostgreSQL_T20261201000000", PGVersion: "15", TotalBytes: 100}
			return &preflight{backup: b, binMajor: pgver.V15}, nil
		},
		restore: func(_ context.Context, b *backupsel.Backup, dataDir string, opts backupsel.RestoreOptions) error {
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				return err
			}
			files := map[string]string{"PG_VERSION": "15\n", "postgresql.conf": "# from the backup\n"}
			for name, text := range files {
				if err := os.WriteFile(filepath.Join(dataDir, name), []byte(text), 0o600); err != nil {
					return err
				}
			}
			opts.Progress(50, 100)
			if r.failStep == StepRestore {
				return errInjected
			}
			opts.Progress(100, 100)
			return nil
		},
		standby: func() (standby, error) { return r.sb, nil },
		watch: func(walwatch.Config) (watcher, error) {
			if r.failStep == StepWatch {
				return nil, errInjected
			}
			r.w = newFakeWatcher()
			return r.w, nil
		},
		server: func(context.Context) (server, error) {
			if r.failStep == StepSync {
				return nil, errInjected
			}
			return r.srv, nil
		},
	}
	return r
}
