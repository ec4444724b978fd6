package stage

import (
	"context"
	"time"

	"github.com/pgstage/pgstage/backupsel"
	"github.com/pgstage/pgstage/replica"
	"github.com/pgstage/pgstage/walwatch"
)

// The small interfaces stage uses from the packages it composes. The
// concrete types are replica.Standby and walwatch.Watcher.

// standby is the staging server.
type standby interface {
	Setup(ctx context.Context) (*replica.Result, error)
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Status(ctx context.Context) (replica.Status, error)
	WaitStreaming(ctx context.Context) (*replica.Streaming, error)
	LogTail(n int) string
}

// watcher follows the staging server's log.
type watcher interface {
	Events() <-chan walwatch.Event
	Errors() <-chan error
	State() walwatch.State
	Position() walwatch.Position
	Close() error
}

var (
	_ standby = (*replica.Standby)(nil)
	_ watcher = (*walwatch.Watcher)(nil)
)

// deps are the parts of a Linker that need a server, a backup or a log:
// the unit tests replace them with fakes to reach stage's own logic (fault
// bookkeeping, the steps and their undo, Status) without servers.
type deps struct {
	preflight func(ctx context.Context, mode preflightMode) (*preflight, error)
	restore   func(ctx context.Context, b *backupsel.Backup, dataDir string, opts backupsel.RestoreOptions) error
	standby   func() (standby, error)
	watch     func(walwatch.Config) (watcher, error)
	// server opens the running staging server to ask where replication
	// stands.
	server func(ctx context.Context) (server, error)
	// take takes a backup (take mode) and selects and checks as preflight
	// does; newerBackup says whether the backup path has a newer backup
	// than the one in use (auto-heal).
	take        func(ctx context.Context, pf *preflight, progress func(done, total int64)) (*backupsel.Backup, error)
	newerBackup func(ctx context.Context) (bool, error)
	// snap takes snapshots that hold the data and makes clones (nil:
	// snapshots record positions only); tick sends the scheduled
	// snapshots' due times.
	snap func() (snapper, error)
	tick func(ctx context.Context, s schedule) <-chan time.Time
}

func (l *Linker) realDeps() deps {
	return deps{
		preflight: l.runPreflight,
		restore: func(ctx context.Context, b *backupsel.Backup, dataDir string, opts backupsel.RestoreOptions) error {
			_, err := b.Restore(ctx, dataDir, opts)
			return err
		},
		standby: l.newStandby,
		watch: func(c walwatch.Config) (watcher, error) {
			w, err := walwatch.New(c)
			if err != nil {
				return nil, err
			}
			return w, nil
		},
		server:      l.openServer,
		take:        l.takeBackup,
		newerBackup: l.newerBackup,
		snap:        l.newSnapper,
		tick:        realTicks,
	}
}
