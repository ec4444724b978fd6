package stage

import (
	"context"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/pgstage/pgstage/backupsel"
)

// waitNewerBackup waits, in external mode, until the backup path holds a
// backup newer than the one in use, one that selection would choose (so
// that the resync restores it): it looks at once, then on every change the
// file system reports in the backup path and every Heal.PollInterval. It
// returns ctx's error when ctx ends, errNoHeal when the staging no longer
// needs healing.
func (l *Linker) waitNewerBackup(ctx context.Context, f *Fault) error {
	var changes <-chan fsnotify.Event
	if !l.cfg.Watch.PollOnly {
		if w, err := fsnotify.NewWatcher(); err != nil {
			l.log.Warn("auto-heal: cannot watch the backup path, polling it", "err", err)
		} else {
			defer w.Close()
			if err := w.Add(l.cfg.BackupPath); err != nil {
				l.log.Warn("auto-heal: cannot watch the backup path, polling it", "path", l.cfg.BackupPath, "err", err)
			} else {
				changes = w.Events
			}
		}
	}
	tick := time.NewTicker(l.cfg.Heal.pollInterval())
	defer tick.Stop()
	waiting := false
	for {
		if !l.stillHealing() {
			return errNoHeal
		}
		newer, err := l.deps.newerBackup(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			l.log.Debug("auto-heal: no newer backup yet", "path", l.cfg.BackupPath, "err", err)
		}
		if newer {
			return nil
		}
		if !waiting {
			waiting = true
			l.healEvent(KindHealWaiting, f, "waiting for a backup newer than the one in use in %s", l.cfg.BackupPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changes:
		case <-tick.C:
		}
	}
}

// stillHealing reports whether a heal under way still has work: the
// staging is enabled and either faulted so (linked) or undone by an attempt
// that failed (not linked).
func (l *Linker) stillHealing() bool {
	l.mu.Lock()
	disabled, linked := l.st.Disabled, l.st.Linked
	l.mu.Unlock()
	return !disabled && (!linked || l.toHeal() != nil)
}

// newerBackup reports whether selection in the backup path now chooses a
// backup other than the one in use, and newer when both have a time.
func (l *Linker) newerBackup(ctx context.Context) (bool, error) {
	l.mu.Lock()
	var inUse BackupInfo
	if l.st.Backup != nil {
		inUse = *l.st.Backup
	}
	l.mu.Unlock()
	b, err := backupsel.Select(ctx, l.cfg.BackupPath, l.selectOptions(nil))
	if err != nil {
		return false, err
	}
	if b.Location == inUse.Location {
		return false, nil
	}
	return inUse.Time.IsZero() || b.Time.IsZero() || b.Time.After(inUse.Time), nil
}
