package stage

import (
	"context"

	"github.com/pgstage/pgstage/backupsel"
	"github.com/pgstage/pgstage/replica"
	"github.com/pgstage/pgstage/walwatch"
)

// The small interfaces stage uses from the packages it composes. The
// concrete types are backupsel.Backup, replica.Standby and walwatch.Watcher.

// restorer writes a selected backup into a data directory.
type restorer interface {
	Restore(ctx context.Context, dataDir string, opts backupsel.RestoreOptions) (*backupsel.RestoreResult, error)
}

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
	_ restorer = (*backupsel.Backup)(nil)
	_ standby  = (*replica.Standby)(nil)
	_ watcher  = (*walwatch.Watcher)(nil)
)
