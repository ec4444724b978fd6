package stage

import "errors"

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
