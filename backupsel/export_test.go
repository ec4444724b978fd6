package backupsel

import (
	"context"
	"errors"
	"time"
)

// SetSettleSleep replaces the settle wait for a test and returns the undo.
func SetSettleSleep(f func(ctx context.Context, d time.Duration) error) func() {
	old := settleSleep
	settleSleep = f
	return func() { settleSleep = old }
}

// WALIdentity is walIdentity, for the real-server check of the page magics.
var WALIdentity = walIdentity

// Candidates returns the candidates a "no usable backup" error lists.
func Candidates(err error) []Candidate {
	var nb *noBackupError
	if errors.As(err, &nb) {
		return nb.candidates
	}
	return nil
}

// CopyFallbacks is how many files writers copied without copy_file_range.
func CopyFallbacks() int64 { return copyFallbacks.Load() }
