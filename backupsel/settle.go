package backupsel

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// settleSleep waits d; tests replace it to change files deterministically.
var settleSleep = func(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// checkSettled skips a candidate whose files are still being written: when a
// file changed within the settle window, wait the window and compare again.
func checkSettled(ctx context.Context, c Candidate, files []candidateFile, settle time.Duration) error {
	paths := make([]string, 0, len(files))
	if c.Layout == LayoutZip {
		paths = append(paths, c.Location)
	} else {
		for _, f := range files {
			paths = append(paths, f.path)
		}
	}
	type stamp struct {
		size int64
		mod  time.Time
	}
	before := make([]stamp, len(paths))
	recent := false
	now := time.Now()
	for i, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return reasonf("unreadable: %w", err)
		}
		before[i] = stamp{info.Size(), info.ModTime()}
		if now.Sub(info.ModTime()) < settle {
			recent = true
		}
	}
	if !recent {
		return nil
	}
	if err := settleSleep(ctx, settle); err != nil {
		return err
	}
	for i, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return reasonf("still being written: %s: %w", filepath.Base(p), err)
		}
		if info.Size() != before[i].size || !info.ModTime().Equal(before[i].mod) {
			return reasonf("still being written: %s changed within %s", filepath.Base(p), settle)
		}
	}
	return nil
}
