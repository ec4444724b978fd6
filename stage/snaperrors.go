package stage

import (
	"errors"

	"github.com/pgstage/pgstage/internal/snapclone"
)

// Errors of snapshots and clones a caller branches on (the other sentinels
// are in errors.go).
var (
	// ErrNotFound: no snapshot or clone has that ID.
	ErrNotFound = errors.New("stage: no such snapshot or clone")
	// ErrInUse: a clone made from the snapshot still exists.
	ErrInUse = errors.New("stage: snapshot in use by a clone")
	// ErrNoData: the snapshot records positions only; it cannot be cloned.
	ErrNoData = errors.New("stage: snapshot holds no data")
)

// Errors of the snapshot and clone machinery a caller branches on; they
// are snapclone's own, so errors.Is finds them in what Snapshot and Clone
// return.
var (
	// ErrPortInUse: something already listens on the clone's port.
	ErrPortInUse = snapclone.ErrPortInUse
	// ErrNoBackupAPI: a reflink or copy snapshot of a running 9.4 or 9.5
	// staging, which takes no base backup on a standby.
	ErrNoBackupAPI = snapclone.ErrNoBackupAPI
	// ErrMethod: the filesystem cannot do the snapshot method asked for.
	ErrMethod = snapclone.ErrMethod
	// ErrNoSpace: the filesystem filled up while copying; what was made
	// is removed.
	ErrNoSpace = snapclone.ErrNoSpace
)
