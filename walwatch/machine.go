package walwatch

import "time"

// machine turns classified records into events: one Fault per outage,
// Recovered when streaming resumes, lifecycle events that are never faults.
// It is driven by one goroutine; it does not lock.
type machine struct {
	st    State
	grace time.Duration
	// termWait is how long a "replication terminated by primary server" is
	// held for a timeline switch to explain it.
	termWait time.Duration
	now      func() time.Time

	outage    *Event // the Fault of the open outage (emitted or pending)
	faultOpen bool   // outage's Fault was emitted
	pending   *pendingFault
	term      *pendingFault
	stopping  bool // shutdown requested: walreceiver errors are expected
	streamEv  *Event
}

type pendingFault struct {
	ev      Event
	logDue  time.Time // in log time (zero if the record had none)
	wallDue time.Time // in wall-clock time
}

func newMachine(st State, grace, termWait time.Duration) *machine {
	if st.Phase == "" {
		st.Phase = PhaseUnknown
	}
	m := &machine{st: st, grace: grace, termWait: termWait, now: time.Now}
	if st.Phase == PhaseFaulted {
		m.faultOpen = true
	}
	return m
}

// feed takes one classified record (ev already filled with the record's
// fields) and returns the events it causes.
func (m *machine) feed(c class, ev Event, out []Event) []Event {
	if c == clsNone || c == clsNoise {
		return out
	}
	now := m.now()
	// A record later than a pending deadline (in log time) settles it first.
	out = m.due(now, ev.LogTime, out)
	switch c {
	case clsStreaming:
		m.term = nil
		if m.faultOpen && m.st.Reason == ReasonWALRemoved {
			// WAL removed on the primary: every retry starts streaming and
			// fails at once. Not a recovery.
			return out
		}
		m.pending = nil
		if m.faultOpen {
			ev.Kind = KindRecovered
			out = append(out, ev)
		} else if m.st.Phase != PhaseStreaming {
			ev.Kind = KindStreaming
			out = append(out, ev)
		}
		m.faultOpen, m.outage = false, nil
		m.setPhase(PhaseStreaming, ev, ReasonNone)
		e := ev
		e.Kind = KindStreaming
		m.streamEv = &e
	case clsTimelineSwitch:
		m.term = nil
	case clsTerminated:
		if m.stopping || m.st.Phase == PhasePromoted || m.term != nil {
			return out
		}
		ev.Kind, ev.Reason = KindFault, ReasonTerminatedByPrimary
		m.term = &pendingFault{ev: ev, wallDue: now.Add(m.termWait)}
		if !ev.LogTime.IsZero() {
			m.term.logDue = ev.LogTime.Add(m.termWait)
		}
	case clsReceiverStopped:
		if m.stopping || m.st.Phase == PhasePromoted {
			return out
		}
		out = m.fault(ev, ReasonReceiverStopped, now, out)
	case clsFault:
		if m.stopping || m.st.Phase == PhasePromoted {
			return out
		}
		out = m.fault(ev, ev.Reason, now, out)
	case clsShutdownRequested:
		m.stopping = true
		m.term, m.pending = nil, nil
		ev.Kind = KindShutdownRequested
		out = append(out, ev)
		m.setPhase(PhaseStopping, ev, m.st.Reason)
	case clsShutdown:
		m.stopping = false
		ev.Kind = KindShutdown
		out = append(out, ev)
		m.setPhase(PhaseStopped, ev, m.st.Reason)
	case clsStarting:
		m.stopping = false
		if m.st.Phase != PhaseFaulted && m.st.Phase != PhaseStarting {
			m.setPhase(PhaseStarting, ev, ReasonNone)
		}
	case clsReadyReadOnly:
		ev.Kind = KindReady
		out = append(out, ev)
		if m.st.Phase == PhaseUnknown || m.st.Phase == PhaseStopped {
			m.setPhase(PhaseStarting, ev, ReasonNone)
		}
	case clsReadyReadWrite:
		ev.Kind = KindReady
		out = append(out, ev)
		m.leaveRecovery(ev)
	case clsCrashed:
		m.term, m.pending = nil, nil
		ev.Kind = KindCrashed
		out = append(out, ev)
		if m.st.Phase != PhaseFaulted {
			m.setPhase(PhaseStarting, ev, ReasonNone)
		}
	case clsPromoted:
		if m.st.Phase != PhasePromoted {
			ev.Kind = KindPromoted
			out = append(out, ev)
		}
		m.leaveRecovery(ev)
	}
	return out
}

func (m *machine) leaveRecovery(ev Event) {
	m.term, m.pending, m.outage = nil, nil, nil
	m.faultOpen = false
	m.setPhase(PhasePromoted, ev, ReasonNone)
}

// fault opens an outage (or updates the open one).
func (m *machine) fault(ev Event, r Reason, now time.Time, out []Event) []Event {
	ev.Kind, ev.Reason = KindFault, r
	if m.term != nil {
		// The stream ended without a timeline switch: the primary went away.
		first := m.term.ev
		m.term = nil
		out = m.open(first, now, out)
	}
	if m.faultOpen || m.pending != nil {
		escalates := r.NeedsResync() && !m.st.NeedsResync
		m.st.Reason, m.st.Message = r, ev.Message
		if escalates {
			m.st.NeedsResync = true
			if m.faultOpen {
				// The outage turned out not to heal by itself: say so once.
				out = append(out, ev)
			}
		}
		return out
	}
	return m.open(ev, now, out)
}

func (m *machine) open(ev Event, now time.Time, out []Event) []Event {
	if m.faultOpen || m.pending != nil {
		return out
	}
	e := ev
	m.outage = &e
	if ev.Reason.NeedsResync() {
		m.st.NeedsResync = true
	}
	if m.grace > 0 {
		m.pending = &pendingFault{ev: ev, wallDue: now.Add(m.grace)}
		if !ev.LogTime.IsZero() {
			m.pending.logDue = ev.LogTime.Add(m.grace)
		}
		return out
	}
	return m.raise(ev, out)
}

func (m *machine) raise(ev Event, out []Event) []Event {
	m.pending = nil
	m.faultOpen = true
	needs := m.st.NeedsResync
	m.setPhase(PhaseFaulted, ev, ev.Reason)
	m.st.NeedsResync = needs || ev.Reason.NeedsResync()
	return append(out, ev)
}

func (m *machine) setPhase(p Phase, ev Event, r Reason) {
	if m.st.Phase != p {
		m.st.Since = ev.LogTime
	}
	needs := m.st.NeedsResync
	m.st = State{Phase: p, Reason: r, Since: m.st.Since, NeedsResync: needs}
	if p == PhaseFaulted {
		m.st.Message = ev.Message
	} else if p == PhaseStreaming || p == PhasePromoted {
		m.st.NeedsResync = false
	}
}

// due settles pending faults whose time has come: by wall clock (now) or by
// the log time of a later record (logNow, zero if unknown).
func (m *machine) due(now, logNow time.Time, out []Event) []Event {
	passed := func(p *pendingFault) bool {
		return !now.Before(p.wallDue) || (!logNow.IsZero() && !p.logDue.IsZero() && !logNow.Before(p.logDue))
	}
	if m.term != nil && passed(m.term) {
		ev := m.term.ev
		m.term = nil
		out = m.open(ev, now, out)
	}
	if m.pending != nil && passed(m.pending) {
		out = m.raise(m.pending.ev, out)
	}
	return out
}

// nextDue is the wall-clock time of the next pending deadline.
func (m *machine) nextDue() (time.Time, bool) {
	var t time.Time
	for _, p := range []*pendingFault{m.term, m.pending} {
		if p != nil && (t.IsZero() || p.wallDue.Before(t)) {
			t = p.wallDue
		}
	}
	return t, !t.IsZero()
}

// finish settles everything pending at the end of a replay: the logs end
// while the stream is down, so the outage is real as far as they tell.
func (m *machine) finish(out []Event) []Event {
	if m.term != nil {
		ev := m.term.ev
		m.term = nil
		if !m.faultOpen && m.pending == nil {
			return m.raise(ev, out)
		}
	}
	if m.pending != nil {
		out = m.raise(m.pending.ev, out)
	}
	return out
}

// current is the event describing the present state after a silent
// read-back: the open outage's Fault, or the last Streaming.
func (m *machine) current() (Event, bool) {
	switch {
	case m.faultOpen && m.outage != nil:
		return *m.outage, true
	case m.st.Phase == PhaseStreaming && m.streamEv != nil:
		return *m.streamEv, true
	}
	return Event{}, false
}
