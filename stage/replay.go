package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pgstage/pgstage/replica"
	"github.com/pgstage/pgstage/walwatch"
)

// Fault reasons of stage's own, beside walwatch's: the replay monitor raises
// them from what the staging server says, for what its log does not show.
const (
	// ReasonReplayStalled: WAL received from the source waits to be applied
	// beyond Config.Replay's bounds: replay paused, a recovery conflict held
	// by a long query, a staging whose disk filled. Streaming may go on.
	// Recovered when replay is back within the bounds.
	ReasonReplayStalled walwatch.Reason = "replay-stalled"
	// ReasonReceiverDown: no walreceiver streams from the source, and the
	// log shows no fault (so lag queries, which compare received and
	// replayed WAL, would say 0). A fault the log then explains takes the
	// log's reason. Recovered when a walreceiver streams again.
	ReasonReceiverDown walwatch.Reason = "receiver-down"
)

// monitorReason reports whether the replay monitor raises and clears
// faults with this reason (the log watcher those with the others).
func monitorReason(r walwatch.Reason) bool {
	return r == ReasonReplayStalled || r == ReasonReceiverDown
}

// replayer is what the monitor asks: the concrete type is replica.Standby.
type replayer interface {
	Replay(ctx context.Context) (replica.Replay, error)
}

var _ replayer = (*replica.Standby)(nil)

func (c ReplayConfig) withDefaults() ReplayConfig {
	if c.Interval == 0 {
		c.Interval = DefaultReplayInterval
	}
	if c.MaxLag == 0 {
		c.MaxLag = DefaultMaxLag
	}
	if c.ReceiverGrace == 0 {
		c.ReceiverGrace = DefaultReceiverGrace
	}
	return c
}

// minWait keeps the monitor from asking in a busy loop when a bound is
// about to be reached.
const minWait = 50 * time.Millisecond

// maxReceived bounds the receive positions a stalled replay keeps: past
// it, every other one is dropped, which can only make the wait measured
// shorter (a fault later), never longer.
const maxReceived = 256

// replayCheck judges what the staging server says, one answer at a time.
// It needs no server: the tests feed it answers and times.
type replayCheck struct {
	cfg ReplayConfig
	// received are receive positions in the order first seen, each with
	// when: the oldest one past the replay position tells how long the
	// WAL applied next has waited. Positions applied are dropped.
	received []received
	// down is when the walreceiver was first seen not streaming; zero
	// while it streams.
	down time.Time
	// unanswered is the walreceiver that said "streaming" at the last
	// answer with the source unheard (pid 0: none), and when it was first
	// seen so.
	unanswered struct {
		pid   int
		since time.Time
	}
}

// unansweredStreams is how long one walreceiver must say "streaming"
// without a message from the source before the monitor believes it: a
// refused one lives through a connection and a few round trips (more on a
// loaded host), an accepted one on an idle source until its first message
// (up to wal_receiver_timeout / 2).
const unansweredStreams = 2 * time.Second

type received struct {
	at  time.Time
	lsn replica.LSN
}

// verdict is what one answer tells.
type verdict struct {
	reason  walwatch.Reason // "" when nothing is wrong
	since   time.Time       // when the monitor first saw the cause
	message string
	detail  string
	next    time.Duration // when to ask again
}

// observe takes one answer at now.
func (c *replayCheck) observe(now time.Time, rp replica.Replay) verdict {
	v := verdict{next: c.cfg.Interval, detail: fmt.Sprintf("received up to %s, replayed up to %s", rp.ReceiveLSN, rp.ReplayLSN)}
	if c.streams(now, rp) {
		c.down = time.Time{}
	} else if c.down.IsZero() {
		c.down = now
	}
	c.record(now, rp)
	if !c.down.IsZero() {
		left := c.cfg.ReceiverGrace - now.Sub(c.down)
		if left <= 0 {
			status := rp.Receiver
			if status == "" {
				status = "no walreceiver"
			}
			v.reason, v.since = ReasonReceiverDown, c.down
			v.message = fmt.Sprintf("no walreceiver streams from the source (pg_stat_wal_receiver: %s) for %s, and the staging server log shows no fault",
				status, now.Sub(c.down).Round(time.Second))
			return v
		}
		v.next = min(v.next, left)
	}
	if behind := rp.Behind(); behind > c.cfg.MaxLagBytes && len(c.received) > 0 {
		waited := now.Sub(c.received[0].at)
		left := c.cfg.MaxLag - waited
		if left <= 0 {
			v.reason, v.since = ReasonReplayStalled, c.received[0].at
			v.message = fmt.Sprintf("replay is %s behind the WAL received from the source, which has waited %s to be applied",
				humanBytes(behind), waited.Round(time.Second))
			if rp.Paused {
				v.message += " (replay is paused on the staging)"
			}
			return v
		}
		v.next = min(v.next, left)
	}
	return v
}

// streams tells whether rp, at now, shows a walreceiver streaming. One the
// source has answered does. One that says "streaming" unanswered may be
// waiting for the first message of an idle source, or be refused
// (replica.Replay.Answered): it counts once the same walreceiver has said
// so for unansweredStreams (at most half the grace), measured in time, not
// answers, since answers come faster as the grace runs out. A refused one
// exits at once and the next is another process.
func (c *replayCheck) streams(now time.Time, rp replica.Replay) bool {
	if !rp.Streaming() || rp.Answered || rp.ReceiverPID == 0 {
		c.unanswered.pid = 0
		return rp.Streaming() && rp.Answered
	}
	if c.unanswered.pid != rp.ReceiverPID {
		c.unanswered.pid, c.unanswered.since = rp.ReceiverPID, now
	}
	return now.Sub(c.unanswered.since) >= min(unansweredStreams, c.cfg.ReceiverGrace/2)
}

// record notes the receive position, if new, and drops those applied.
func (c *replayCheck) record(now time.Time, rp replica.Replay) {
	n := len(c.received)
	if rp.ReceiveLSN > rp.ReplayLSN && (n == 0 || rp.ReceiveLSN > c.received[n-1].lsn) {
		c.received = append(c.received, received{now, rp.ReceiveLSN})
	}
	i := 0
	for i < len(c.received) && c.received[i].lsn <= rp.ReplayLSN {
		i++
	}
	c.received = append(c.received[:0], c.received[i:]...)
	if len(c.received) > maxReceived {
		kept := c.received[:1]
		for j := 2; j < len(c.received); j += 2 {
			kept = append(kept, c.received[j])
		}
		c.received = kept
	}
}

// unknown forgets what depends on the answers following each other: the
// server could not be asked (stopped, restarting).
func (c *replayCheck) unknown() { c.down, c.unanswered.pid = time.Time{}, 0 }

// monitorRun is a running monitor.
type monitorRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startMonitor starts the replay monitor, after stopping any other: it runs
// with the log watcher (startWatcher and stopWatcher start and stop it),
// so only while the staging is enabled. It asks through a standby handle of
// its own (replica.Standby serves one goroutine at a time).
func (l *Linker) startMonitor() {
	l.stopMonitor()
	if l.cfg.Replay.Interval < 0 {
		return
	}
	sb, err := l.deps.standby()
	if err != nil {
		l.log.Warn("replay monitor off: no standby handle", "err", err)
		return
	}
	rs, ok := sb.(replayer)
	if !ok {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &monitorRun{cancel: cancel, done: make(chan struct{})}
	l.mu.Lock()
	l.mon = m
	l.mu.Unlock()
	go l.monitor(ctx, rs, m.done)
}

// stopMonitor stops the replay monitor and waits until it has.
func (l *Linker) stopMonitor() {
	l.mu.Lock()
	m := l.mon
	l.mon = nil
	l.mu.Unlock()
	if m == nil {
		return
	}
	m.cancel()
	<-m.done
}

func (l *Linker) monitor(ctx context.Context, rs replayer, done chan struct{}) {
	defer close(done)
	if c, ok := rs.(io.Closer); ok {
		defer c.Close() // the connection its questions keep
	}
	check := &replayCheck{cfg: l.cfg.Replay}
	timer := time.NewTimer(0)
	defer timer.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		rp, err := rs.Replay(ctx)
		next := l.cfg.Replay.Interval
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, replica.ErrWarmStandby):
			l.log.Info("replay monitor off: a warm standby (9.4, 9.5) takes no queries; the log watcher alone raises faults")
			return
		case err != nil:
			if !failing {
				l.log.Warn("replay monitor: cannot ask the staging server; trying again", "err", err)
			}
			failing = true
			check.unknown()
		default:
			failing = false
			v := check.observe(time.Now(), rp)
			l.judge(v, rp)
			next = v.next
		}
		timer.Reset(max(next, minWait))
	}
}

// judge raises or clears the monitor's faults. A cause the log already
// shows (the watcher's fault for the same outage) raises nothing more: one
// fault per outage.
func (l *Linker) judge(v verdict, rp replica.Replay) {
	now := time.Now()
	receiver := rp.Receiver
	if receiver == "" {
		receiver = "none"
	}
	var evs []walwatch.Event
	l.mu.Lock()
	open := l.openFaultLocked()
	if open != nil && monitorReason(open.Reason) && open.Reason != v.reason {
		open.Cleared = now
		evs = append(evs, walwatch.Event{Kind: walwatch.KindRecovered, Reason: open.Reason, Message: "cleared: " + open.Message,
			Detail: v.detail, LogTime: now, Detected: now, Receiver: receiver})
		open = nil
	}
	if v.reason != "" && open == nil && !(v.reason == ReasonReceiverDown && l.logShowsOutageLocked()) {
		l.st.Faults = append(l.st.Faults, Fault{Reason: v.reason, Message: v.message, Detail: v.detail, Since: v.since, Detected: now})
		evs = append(evs, walwatch.Event{Kind: walwatch.KindFault, Reason: v.reason, Message: v.message, Detail: v.detail,
			LogTime: v.since, Detected: now, Receiver: receiver})
	}
	if len(evs) > 0 {
		l.saveLocked()
	}
	l.mu.Unlock()
	for _, ev := range evs {
		l.log.Info("replication "+string(ev.Kind), "reason", ev.Reason, "message", ev.Message, "detail", ev.Detail)
		l.emit(ev)
	}
}

// logShowsOutageLocked reports whether the log watcher sees replication
// stopped or the server going away: the walreceiver is then expected down.
func (l *Linker) logShowsOutageLocked() bool {
	if l.w == nil {
		return false
	}
	switch l.w.State().Phase {
	case walwatch.PhaseFaulted, walwatch.PhasePromoted, walwatch.PhaseStopping, walwatch.PhaseStopped:
		return true
	}
	return false
}
