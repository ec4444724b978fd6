package stage

import (
	"errors"
	"time"

	"github.com/pgstage/pgstage/walwatch"
)

// ReasonPromoted is the fault reason of a staging server that left
// recovery: it no longer follows the source.
const ReasonPromoted walwatch.Reason = "promoted"

func init() {
	advice[ReasonPromoted] = "the staging server was promoted and no longer follows the source: Resync"
}

// startWatcher (re)starts the log watcher. With resume it carries on from
// the saved position, so that what happened while nothing watched is
// reported; otherwise (or when that position is gone) it starts live, which
// first reads back the current log to learn the present state.
func (l *Linker) startWatcher(resume bool) error {
	l.stopWatcher()
	l.mu.Lock()
	pos, prefix := l.st.Position, l.st.LogPrefix
	l.mu.Unlock()
	wc := walwatch.Config{
		LogDir:       l.logDir(),
		Format:       walwatch.FormatStderr,
		Prefix:       prefix,
		Pattern:      "staging.log",
		PollInterval: l.cfg.WatchPollInterval,
		PollOnly:     l.cfg.WatchPollOnly,
		Logger:       l.log,
	}
	if prefix == "" {
		wc.Prefix = walwatch.DefaultPrefix
	}
	if resume && !pos.IsZero() {
		wc.Start, wc.Resume = walwatch.StartResume, pos
	}
	w, err := walwatch.New(wc)
	if errors.Is(err, walwatch.ErrResumeNotFound) {
		wc.Start, wc.Resume = walwatch.StartLive, walwatch.Position{}
		w, err = walwatch.New(wc)
	}
	if err != nil {
		return err
	}
	done := make(chan struct{})
	l.mu.Lock()
	l.w, l.wDone = w, done
	l.mu.Unlock()
	go l.loop(w, done)
	return nil
}

// stopWatcher closes the watcher, waits for its events to be handled, and
// saves the position reached.
func (l *Linker) stopWatcher() {
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
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			l.log.Warn("log watcher", "err", err)
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
		l.raiseLocked(ev, ReasonPromoted)
		l.saveLocked()
	case walwatch.KindRecovered, walwatch.KindStreaming:
		if l.closeFaultLocked(ev.Detected) {
			l.saveLocked()
		}
	}
	l.mu.Unlock()
	switch ev.Kind {
	case walwatch.KindFault, walwatch.KindRecovered:
		l.log.Info("replication "+string(ev.Kind), "reason", ev.Reason, "message", ev.Message, "file", ev.File, "line", ev.Line)
	}
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
		if reason.NeedsResync() || reason == ReasonPromoted {
			f.Reason, f.Message, f.Detail, f.NeedsResync = reason, ev.Message, ev.Detail, true
		}
		return
	}
	since := ev.LogTime
	if since.IsZero() {
		since = ev.Detected
	}
	l.st.Faults = append(l.st.Faults, Fault{
		Reason: reason, Message: ev.Message, Detail: ev.Detail,
		NeedsResync: reason.NeedsResync() || reason == ReasonPromoted,
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
	if l.w != nil {
		s := l.w.State()
		if s.Phase != walwatch.PhaseFaulted && s.Phase != walwatch.PhasePromoted {
			return nil
		}
		if rec == nil {
			r := s.Reason
			if s.Phase == walwatch.PhasePromoted {
				r = ReasonPromoted
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
