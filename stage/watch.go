package stage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/pgstage/pgstage/walwatch"
)

// startWatcher (re)starts the log watcher. With resume it carries on from
// the saved position, so that what happened while nothing watched is
// reported; otherwise it starts live, which first reads back the current
// log to learn the present state. When the saved position's file is gone,
// walwatch reads every file written after it from its start (and says so
// on Errors, see loop).
func (l *Linker) startWatcher(resume bool) error {
	l.stopWatcher()
	l.mu.Lock()
	pos := l.st.Position
	l.logErr = ""
	l.mu.Unlock()
	wl := readWatchLog(l.cfg.Staging.DataDir)
	wc := walwatch.Config{
		LogDir:       l.logDir(),
		Format:       walwatch.FormatStderr,
		Prefix:       wl.prefix,
		PrefixEmpty:  wl.empty,
		Pattern:      wl.pattern,
		PollInterval: l.cfg.Watch.PollInterval,
		PollOnly:     l.cfg.Watch.PollOnly,
		Logger:       l.log,
	}
	if resume && !pos.IsZero() {
		wc.Start, wc.Resume = walwatch.StartResume, pos
	}
	w, err := l.deps.watch(wc)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	l.mu.Lock()
	l.w, l.wDone = w, done
	l.mu.Unlock()
	go l.loop(w, done)
	l.startMonitor()
	go l.pruneLoop(w, done)
	return nil
}

// stopWatcher closes the watcher, waits for its events to be handled, and
// saves the position reached.
func (l *Linker) stopWatcher() {
	l.stopMonitor()
	l.mu.Lock()
	w, done := l.w, l.wDone
	l.w, l.wDone = nil, nil
	l.mu.Unlock()
	if w == nil {
		return
	}
	w.Close()
	<-done
	l.mu.Lock()
	if pos := w.Position(); !pos.IsZero() {
		l.st.Position = pos
	}
	l.saveLocked()
	l.mu.Unlock()
}

func (l *Linker) loop(w watcher, done chan struct{}) {
	defer close(done)
	evs, errs := w.Events(), w.Errors()
	for evs != nil || errs != nil {
		select {
		case ev, ok := <-evs:
			if !ok {
				evs = nil
				continue
			}
			l.handle(ev)
			l.prune(ev.Position)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			if errors.Is(err, walwatch.ErrResumeNotFound) {
				// The log the last Linker read up to was removed (or
				// replaced): what was written in between may be lost,
				// and the files written after it are read from their
				// start instead.
				l.log.Warn("the saved log position is gone: reading the staging server log from the start of the files written since; faults logged in between in a removed file are not reported",
					"err", err)
				continue
			}
			if !l.watchError(err) {
				l.log.Warn("log watcher", "err", err)
			}
		}
	}
}

// handle records an event and passes it on to Events.
func (l *Linker) handle(ev walwatch.Event) {
	l.mu.Lock()
	l.st.Position = ev.Position
	switch ev.Kind {
	case walwatch.KindFault:
		l.raiseLocked(ev, ev.Reason)
		l.saveLocked()
	case walwatch.KindPromoted:
		l.raiseLocked(ev, walwatch.ReasonPromoted)
		l.saveLocked()
	case walwatch.KindRecovered, walwatch.KindStreaming:
		// Streaming again does not mend a stalled replay: the replay
		// monitor clears that fault when replay catches up.
		if f := l.openFaultLocked(); f != nil && f.Reason != ReasonReplayStalled && l.closeFaultLocked(ev.Detected) {
			l.saveLocked()
		}
	}
	l.mu.Unlock()
	l.healOn(ev)
	switch ev.Kind {
	case walwatch.KindFault, walwatch.KindRecovered:
		l.log.Info("replication "+string(ev.Kind), "reason", ev.Reason, "message", ev.Message, "file", ev.File, "line", ev.Line)
	}
	l.emit(ev)
}

// emit passes an event on to Events, unless nobody reads them.
func (l *Linker) emit(ev walwatch.Event) {
	select {
	case l.events <- ev:
	default:
		l.log.Warn("event dropped: nobody reads Events", "kind", ev.Kind)
	}
}

// raiseLocked opens a fault, or updates the open one: the watcher raises a
// second Fault in the same outage when it learns the outage needs a resync.
// A record already seen (a resumed watcher reads again what came after the
// last saved position) is not recorded twice.
func (l *Linker) raiseLocked(ev walwatch.Event, reason walwatch.Reason) {
	for i := len(l.st.Faults) - 1; i >= 0 && i >= len(l.st.Faults)-5; i-- {
		f := l.st.Faults[i]
		if f.File == ev.File && f.Line == ev.Line && f.Since.Equal(ev.LogTime) {
			return
		}
	}
	if f := l.openFaultLocked(); f != nil {
		switch {
		case reason.NeedsResync():
			f.Reason, f.Message, f.Detail, f.NeedsResync = reason, ev.Message, ev.Detail, true
		case f.Reason == ReasonReceiverDown:
			// The log says why the walreceiver is down: a better reason.
			f.Reason, f.Message, f.Detail, f.File, f.Line = reason, ev.Message, ev.Detail, ev.File, ev.Line
		}
		return
	}
	since := ev.LogTime
	if since.IsZero() {
		since = ev.Detected
	}
	l.st.Faults = append(l.st.Faults, Fault{
		Reason: reason, Message: ev.Message, Detail: ev.Detail,
		NeedsResync: reason.NeedsResync(),
		Since:       since, Detected: ev.Detected, File: ev.File, Line: ev.Line,
	})
}

// openFaultLocked returns the open fault, or nil.
func (l *Linker) openFaultLocked() *Fault {
	if n := len(l.st.Faults); n > 0 && l.st.Faults[n-1].Open() {
		return &l.st.Faults[n-1]
	}
	return nil
}

// closeFaultLocked clears the open fault, if any, and reports whether there
// was one.
func (l *Linker) closeFaultLocked(at time.Time) bool {
	f := l.openFaultLocked()
	if f == nil {
		return false
	}
	f.Cleared = at
	return true
}

// currentFault returns a copy of the open fault, or nil. The watcher's own
// state decides (it is current even before its event is handled); without a
// watcher, the record does.
func (l *Linker) currentFault() *Fault {
	l.mu.Lock()
	defer l.mu.Unlock()
	rec := l.openFaultLocked()
	if rec != nil && monitorReason(rec.Reason) {
		c := *rec // the replay monitor's: the log does not show it
		return &c
	}
	if l.w != nil {
		s := l.w.State()
		if s.Phase != walwatch.PhaseFaulted && s.Phase != walwatch.PhasePromoted {
			return nil
		}
		if rec == nil {
			r := s.Reason
			if s.Phase == walwatch.PhasePromoted {
				r = walwatch.ReasonPromoted
			}
			return &Fault{Reason: r, Message: s.Message, NeedsResync: s.NeedsResync || s.Phase == walwatch.PhasePromoted, Since: s.Since, Detected: time.Now()}
		}
	}
	if rec == nil {
		return nil
	}
	c := *rec
	return &c
}

// catchUpLimit bounds how long Open waits for the resumed watcher to read
// what the log holds: past it, Status may report the saved state a little
// longer, and says so in the log.
const catchUpLimit = 30 * time.Second

// catchUp waits until the resumed watcher has read the staging server log
// up to where it ends now, so that what Status reports is the present
// state (streaming again, say) and not the one saved when the last Linker
// stopped watching.
func (l *Linker) catchUp(ctx context.Context) error {
	l.mu.Lock()
	w, saved := l.w, l.st.Position
	l.mu.Unlock()
	dev, ino, end, err := logEnd(l.currentLog())
	if w == nil || err != nil || end == 0 {
		return nil // nothing to read: the watcher's state is all there is
	}
	read := func(p walwatch.Position) bool { return p.Dev == dev && p.Ino == ino && p.Offset >= end }
	if read(saved) {
		return nil // nothing was logged since the last Linker stopped watching
	}
	deadline := time.Now().Add(catchUpLimit)
	for {
		if read(w.Position()) {
			return nil
		}
		if time.Now().After(deadline) {
			l.log.Warn("the log watcher has not read the staging server log up to now yet: Status may report the saved state for a while", "log", l.currentLog())
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// logEnd identifies the log file and returns the offset just after its
// last complete line.
func logEnd(path string) (dev, ino uint64, end int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, 0, err
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, 0, errors.New("no file identity")
	}
	size := fi.Size()
	buf := make([]byte, min(size, 64<<10))
	if _, err := f.ReadAt(buf, size-int64(len(buf))); err != nil && !errors.Is(err, io.EOF) {
		return 0, 0, 0, err
	}
	i := bytes.LastIndexByte(buf, '\n')
	if i < 0 {
		return uint64(sys.Dev), sys.Ino, 0, nil
	}
	return uint64(sys.Dev), sys.Ino, size - int64(len(buf)) + int64(i) + 1, nil
}
