package stage

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/pgstage/pgstage/walwatch"
)

// JobScheduled is a snapshot the schedule (SnapshotConfig.Every or Cron)
// took.
const JobScheduled Job = "scheduled-snapshot"

// KindSnapshotSkipped is the Events kind of a scheduled snapshot that was
// not taken (replication faulted, or the snapshot failed): Reason is the
// fault's reason, if any, and Message says why. It is logged too.
const KindSnapshotSkipped walwatch.Kind = "snapshot-skipped"

// schedule says when scheduled snapshots are due.
type schedule struct {
	every time.Duration
	cron  *cronSpec
}

// next is the first due time after t.
func (s schedule) next(t time.Time) time.Time {
	if s.cron != nil {
		return s.cron.next(t)
	}
	return t.Add(s.every)
}

// realTicks sends on the returned channel at each due time of s until ctx
// ends. A tick that finds the last one unhandled is dropped: a slow
// snapshot delays the next, never stacks them.
func realTicks(ctx context.Context, s schedule) <-chan time.Time {
	ch := make(chan time.Time)
	go func() {
		for at := s.next(time.Now()); !at.IsZero(); at = s.next(time.Now()) {
			timer := time.NewTimer(time.Until(at))
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case now := <-timer.C:
				select {
				case ch <- now:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return ch
}

// startPolicy starts the scheduler when a schedule is configured and none
// runs; it runs while the staging is linked and enabled (Link, Enable and
// Open start it; Disable and Close stop it).
func (l *Linker) startPolicy() {
	sc := l.cfg.Snapshots
	if !sc.scheduled() || l.deps.tick == nil {
		return
	}
	s := schedule{every: sc.Every}
	if sc.Cron != "" {
		spec, err := parseCron(sc.Cron)
		if err != nil { // validated before: cannot happen
			l.log.Error("snapshot schedule", "err", err)
			return
		}
		s.cron = spec
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.schedStop != nil || l.closed || !l.st.Linked || l.st.Disabled {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.schedStop = cancel
	go l.schedule(ctx, l.deps.tick(ctx, s))
	l.log.Info("snapshot schedule started", "every", sc.Every, "cron", sc.Cron)
}

// stopPolicy stops the scheduler. It does not wait for it: a job calls it
// with the job lock held, which the scheduler takes to act; the scheduler
// checks its context once it holds the lock, so a stopped one never acts.
func (l *Linker) stopPolicy() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.schedStop != nil {
		l.schedStop()
		l.schedStop = nil
	}
}

func (l *Linker) schedule(ctx context.Context, ticks <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			l.scheduledSnapshot(ctx)
		}
	}
}

// scheduledSnapshot takes one scheduled snapshot, as a job. A snapshot
// refused (faulted) or failed is a KindSnapshotSkipped event, not a gap
// nobody sees.
func (l *Linker) scheduledSnapshot(ctx context.Context) {
	l.job.Lock()
	defer l.job.Unlock()
	if ctx.Err() != nil {
		return // stopped while waiting for the job lock
	}
	if err := l.ready(); err != nil {
		l.log.Info("scheduled snapshot not taken", "err", err)
		return
	}
	_, err := l.snapshot(ctx, JobScheduled)
	if err == nil || ctx.Err() != nil {
		return
	}
	ev := walwatch.Event{Kind: KindSnapshotSkipped, Detected: time.Now(), Message: "scheduled snapshot not taken: " + err.Error()}
	var f *Fault
	if errors.As(err, &f) {
		ev.Reason, ev.LogTime = f.Reason, f.Since
	}
	l.log.Warn("scheduled snapshot skipped", "reason", ev.Reason, "err", err)
	select {
	case l.events <- ev:
	default:
		l.log.Warn("event dropped: nobody reads Events", "kind", ev.Kind)
	}
}

// applyRetention deletes the snapshots the retention policy no longer
// keeps. Failures are logged: the snapshot just taken stands.
func (l *Linker) applyRetention(ctx context.Context) {
	sc := l.cfg.Snapshots
	if sc.KeepLast == 0 && sc.KeepWithin == 0 {
		return
	}
	l.mu.Lock()
	ids := expired(l.st.Snapshots, l.st.Clones, sc.KeepLast, sc.KeepWithin, time.Now())
	l.mu.Unlock()
	for _, id := range ids {
		if err := l.deleteSnapshot(ctx, id); err != nil {
			l.log.Error("retention: deleting a snapshot", "id", id, "err", err)
			continue
		}
		l.log.Info("retention: snapshot deleted", "id", id)
	}
}

// expired lists the snapshots holding data that neither rule keeps: not
// among the newest keepLast, not younger than keepWithin (a zero rule keeps
// none by itself, both zero keep all), and used by no clone.
func expired(snaps []Snapshot, clones []Clone, keepLast int, keepWithin time.Duration, now time.Time) []string {
	if keepLast == 0 && keepWithin == 0 {
		return nil
	}
	var data []Snapshot
	for _, s := range snaps {
		if s.Location != "" {
			data = append(data, s)
		}
	}
	slices.SortStableFunc(data, func(a, b Snapshot) int { return b.Time.Compare(a.Time) })
	var out []string
	for i, s := range data {
		kept := i < keepLast || keepWithin > 0 && now.Sub(s.Time) < keepWithin
		used := slices.ContainsFunc(clones, func(c Clone) bool { return c.Snapshot == s.ID })
		if !kept && !used {
			out = append(out, s.ID)
		}
	}
	return out
}
