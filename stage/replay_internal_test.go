package stage

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/replica"
	"github.com/pgstage/pgstage/walwatch"
)

// answer is one reply of the staging server, at a time after t0.
type answer struct {
	at time.Duration
	rp replica.Replay
}

func streaming(receive, replay replica.LSN) replica.Replay {
	return replica.Replay{Receiver: "streaming", ReceiverPID: 42, Answered: true, ReceiveLSN: receive, ReplayLSN: replay}
}

// unanswered is a walreceiver (pid) that says "streaming" before the
// source's first message.
func unanswered(pid int) replica.Replay {
	return replica.Replay{Receiver: "streaming", ReceiverPID: pid, ReceiveLSN: 100, ReplayLSN: 100}
}

func paused(receive, replay replica.LSN) replica.Replay {
	rp := streaming(receive, replay)
	rp.Paused = true
	return rp
}

func TestReplayCheck(t *testing.T) {
	// The defaults: every 5s, 300s and 0 bytes, a grace of 10s.
	s := time.Second
	// steady is a source under load: replay always a little behind, but
	// applying what came one answer before.
	var steady []answer
	for i := range 200 {
		lsn := replica.LSN(1000 + 100*i)
		steady = append(steady, answer{time.Duration(i) * 5 * s, streaming(lsn+100, lsn)})
	}
	// stalledLong is a paused replay for longer than maxReceived answers.
	var stalledLong []answer
	for i := range 2 * maxReceived {
		stalledLong = append(stalledLong, answer{time.Duration(i) * 5 * s, paused(replica.LSN(2000+100*i), 1000)})
	}
	// refused is a source that refuses every START_REPLICATION: each
	// walreceiver says "streaming" until the refusal, the next is another
	// process, and some answers land in that window.
	var refused []answer
	for i := range 30 {
		rp := replica.Replay{ReceiveLSN: 100, ReplayLSN: 100}
		if i%2 == 0 {
			rp = unanswered(1000 + i)
		}
		refused = append(refused, answer{time.Duration(i) * s, rp})
	}
	// idleSource accepted the stream but has sent nothing yet.
	var idleSource []answer
	for i := range 40 {
		idleSource = append(idleSource, answer{time.Duration(i) * s, unanswered(7)})
	}
	cases := []struct {
		name      string
		cfg       ReplayConfig
		answers   []answer
		want      walwatch.Reason
		wantSince time.Duration
		wantNext  time.Duration // checked when not 0
	}{
		{name: "idle stream", answers: []answer{{0, streaming(100, 100)}, {400 * s, streaming(100, 100)}}},
		{name: "steady load, replay keeping up", answers: steady},
		{name: "paused, below the bound", answers: []answer{{0, streaming(100, 100)}, {5 * s, paused(200, 100)}, {304 * s, paused(900, 100)}},
			wantNext: time.Second},
		{name: "paused, at the bound", answers: []answer{{0, streaming(100, 100)}, {5 * s, paused(200, 100)}, {305 * s, paused(900, 100)}},
			want: ReasonReplayStalled, wantSince: 5 * s},
		{name: "the wait counts from the WAL applied next", answers: []answer{{0, paused(200, 100)}, {100 * s, streaming(300, 150)}, {200 * s, streaming(400, 200)}, {400 * s, streaming(400, 250)}},
			want: ReasonReplayStalled, wantSince: 100 * s},
		{name: "caught up", answers: []answer{{0, paused(200, 100)}, {400 * s, streaming(300, 300)}}},
		{name: "within the byte bound", cfg: ReplayConfig{MaxLagBytes: 500}, answers: []answer{{0, paused(200, 100)}, {900 * s, paused(600, 100)}}},
		{name: "beyond the byte bound", cfg: ReplayConfig{MaxLagBytes: 500}, answers: []answer{{0, paused(200, 100)}, {900 * s, paused(601, 100)}},
			want: ReasonReplayStalled},
		{name: "a small bound", cfg: ReplayConfig{MaxLag: 2 * s, MaxLagBytes: 1}, answers: []answer{{0, paused(200, 100)}, {2 * s, paused(200, 100)}},
			want: ReasonReplayStalled},
		{name: "many answers while stalled keep the first", answers: stalledLong, want: ReasonReplayStalled},
		{name: "walreceiver gone, all replayed, within the grace", answers: []answer{{0, streaming(100, 100)}, {5 * s, replica.Replay{Receiver: "", ReceiveLSN: 100, ReplayLSN: 100}}, {14 * s, replica.Replay{ReceiveLSN: 100, ReplayLSN: 100}}},
			wantNext: time.Second},
		{name: "walreceiver gone, all replayed: not lag 0", answers: []answer{{0, streaming(100, 100)}, {5 * s, replica.Replay{Receiver: "", ReceiveLSN: 100, ReplayLSN: 100}}, {15 * s, replica.Replay{ReceiveLSN: 100, ReplayLSN: 100}}},
			want: ReasonReceiverDown, wantSince: 5 * s},
		{name: "walreceiver waiting", answers: []answer{{0, replica.Replay{Receiver: "waiting"}}, {20 * s, replica.Replay{Receiver: "waiting"}}},
			want: ReasonReceiverDown},
		{name: "refused again and again: not streaming", answers: refused, want: ReasonReceiverDown, wantSince: 0},
		{name: "accepted, the idle source not heard yet: streaming", answers: idleSource},
		{name: "one unanswered answer is not streaming", answers: []answer{{0, replica.Replay{}}, {9 * s, unanswered(5)}, {10 * s, unanswered(6)}},
			want: ReasonReceiverDown, wantSince: 0},
		{name: "one refused walreceiver seen at answers close together: not streaming", answers: []answer{{0, replica.Replay{}},
			{9900 * time.Millisecond, unanswered(5)}, {9950 * time.Millisecond, unanswered(5)}, {10 * s, unanswered(5)}},
			want: ReasonReceiverDown, wantSince: 0},
		{name: "walreceiver back", answers: []answer{{0, replica.Replay{Receiver: ""}}, {8 * s, streaming(100, 100)}, {20 * s, replica.Replay{Receiver: "starting"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &replayCheck{cfg: tc.cfg.withDefaults()}
			var v verdict
			for _, a := range tc.answers {
				v = c.observe(t0.Add(a.at), a.rp)
			}
			assert.Equal(t, tc.want, v.reason, "got %q (%s), want %q", v.reason, v.message, tc.want)
			if tc.want != "" {
				assert.Equal(t, t0.Add(tc.wantSince), v.since)
				assert.NotEmpty(t, v.message)
			}
			if tc.wantNext != 0 {
				assert.Equal(t, tc.wantNext, v.next, "the next question comes when the bound is reached")
			}
			assert.LessOrEqual(t, len(c.received), maxReceived+1)
		})
	}
}

// replayFake is a staging server that answers the replay monitor.
type replayFake struct {
	*fakeStandby
	mu     sync.Mutex
	answer replica.Replay
	grow   bool // the source writes: each answer has received more
	err    error
}

func (f *replayFake) Replay(context.Context) (replica.Replay, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.grow {
		f.answer.ReceiveLSN += 100
	}
	return f.answer, f.err
}

func (f *replayFake) set(rp replica.Replay, grow bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer, f.grow = rp, grow
}

// linkedRig is a linked staging on fakes whose replay monitor is off (the
// fake standby takes no replay questions): the tests call judge.
func linkedRig(t *testing.T) *rig {
	t.Helper()
	r := newRig(t)
	require.NoError(t, r.l.Link(context.Background()))
	require.Nil(t, r.l.mon)
	return r
}

func stalled() verdict {
	return verdict{reason: ReasonReplayStalled, since: t0, message: "replay is behind", next: time.Second}
}

func receiverDown() verdict {
	return verdict{reason: ReasonReceiverDown, since: t0, message: "no walreceiver", next: time.Second}
}

func faultReasons(l *Linker) (reasons []walwatch.Reason, open []bool) {
	for _, f := range l.Faults() {
		reasons, open = append(reasons, f.Reason), append(open, f.Open())
	}
	return reasons, open
}

func TestMonitorFaultBookkeeping(t *testing.T) {
	ctx := context.Background()
	rp := streaming(100, 100)

	t.Run("stalled, then caught up", func(t *testing.T) {
		r := linkedRig(t)
		r.l.judge(stalled(), rp)
		r.l.judge(stalled(), rp)
		st, err := r.l.Status(ctx)
		require.NoError(t, err)
		assert.Equal(t, StateFaulted, st.State, "the log says streaming, the monitor's fault stands")
		require.NotNil(t, st.Fault)
		assert.Equal(t, ReasonReplayStalled, st.Fault.Reason)
		assert.NotEmpty(t, Advice(st.Fault.Reason))

		// Streaming again in the log does not mend replay.
		r.l.handle(walwatch.Event{Kind: walwatch.KindStreaming, Line: 9, Detected: t0})
		reasons, open := faultReasons(r.l)
		assert.Equal(t, []walwatch.Reason{ReasonReplayStalled}, reasons)
		assert.Equal(t, []bool{true}, open)

		r.l.judge(verdict{}, rp)
		_, open = faultReasons(r.l)
		assert.Equal(t, []bool{false}, open)
		st, err = r.l.Status(ctx)
		require.NoError(t, err)
		assert.Equal(t, StateStreaming, st.State)
	})

	t.Run("receiver down while the log shows the outage: no second fault", func(t *testing.T) {
		r := linkedRig(t)
		r.l.handle(faultEvent(1, walwatch.ReasonPrimaryUnreachable))
		r.w.setState(walwatch.State{Phase: walwatch.PhaseFaulted, Reason: walwatch.ReasonPrimaryUnreachable})
		r.l.judge(receiverDown(), rp)
		r.l.judge(stalled(), rp)
		reasons, _ := faultReasons(r.l)
		assert.Equal(t, []walwatch.Reason{walwatch.ReasonPrimaryUnreachable}, reasons)
		r.l.judge(verdict{}, rp) // not the monitor's fault: the log clears it
		_, open := faultReasons(r.l)
		assert.Equal(t, []bool{true}, open)
		r.l.handle(recoveredEvent(2))
		_, open = faultReasons(r.l)
		assert.Equal(t, []bool{false}, open)
	})

	t.Run("receiver down, then the log says why: one fault with the log's reason", func(t *testing.T) {
		r := linkedRig(t)
		r.l.judge(receiverDown(), rp)
		r.l.handle(faultEvent(3, walwatch.ReasonTimeout))
		r.l.handle(faultEvent(4, walwatch.ReasonPrimaryUnreachable))
		reasons, open := faultReasons(r.l)
		assert.Equal(t, []walwatch.Reason{walwatch.ReasonTimeout}, reasons)
		assert.Equal(t, []bool{true}, open)
		r.l.handle(recoveredEvent(5))
		_, open = faultReasons(r.l)
		assert.Equal(t, []bool{false}, open)
	})

	t.Run("receiver down, then streaming again in the log", func(t *testing.T) {
		r := linkedRig(t)
		r.l.judge(receiverDown(), rp)
		r.l.handle(walwatch.Event{Kind: walwatch.KindStreaming, Line: 9, Detected: t0})
		reasons, open := faultReasons(r.l)
		assert.Equal(t, []walwatch.Reason{ReasonReceiverDown}, reasons)
		assert.Equal(t, []bool{false}, open)
	})

	t.Run("one monitor cause gives way to the other", func(t *testing.T) {
		r := linkedRig(t)
		r.l.judge(receiverDown(), rp)
		r.l.judge(stalled(), rp)
		reasons, open := faultReasons(r.l)
		assert.Equal(t, []walwatch.Reason{ReasonReceiverDown, ReasonReplayStalled}, reasons)
		assert.Equal(t, []bool{false, true}, open)
	})

	t.Run("disable closes it", func(t *testing.T) {
		r := linkedRig(t)
		r.l.judge(stalled(), rp)
		require.NoError(t, r.l.Disable(ctx))
		_, open := faultReasons(r.l)
		assert.Equal(t, []bool{false}, open)
	})
}

// The monitor runs with the watcher: one at a time, raising and clearing
// its faults on its own, and gone once Disable or Close returns.
func TestMonitorRuns(t *testing.T) {
	r := newRig(t)
	rf := &replayFake{fakeStandby: r.sb}
	rf.set(streaming(100, 100), false)
	r.l.deps.standby = func() (standby, error) { return rf, nil }
	r.l.cfg.Replay = ReplayConfig{Interval: time.Millisecond, MaxLag: time.Millisecond, ReceiverGrace: time.Hour}
	ctx := context.Background()
	require.NoError(t, r.l.Link(ctx))
	first := r.l.mon
	require.NotNil(t, first)

	rf.set(paused(200, 100), true)
	ev := waitKind(t, r.l, walwatch.KindFault)
	assert.Equal(t, ReasonReplayStalled, ev.Reason)
	assert.Contains(t, ev.Message, "paused")
	rf.set(streaming(100, 100), false)
	ev = waitKind(t, r.l, walwatch.KindRecovered)
	assert.Equal(t, ReasonReplayStalled, ev.Reason)

	require.NoError(t, r.l.startWatcher(true))
	second := r.l.mon
	require.NotNil(t, second)
	assert.True(t, isClosed(first.done), "a second monitor stops the first")

	require.NoError(t, r.l.Disable(ctx))
	assert.Nil(t, r.l.mon)
	assert.True(t, isClosed(second.done), "Disable stops the monitor")

	require.NoError(t, r.l.Enable(ctx))
	third := r.l.mon
	require.NotNil(t, third)
	require.NoError(t, r.l.Close())
	assert.True(t, isClosed(third.done), "Close stops the monitor")
}

// A warm standby takes no queries: the monitor stops by itself.
func TestMonitorWarmStandby(t *testing.T) {
	r := newRig(t)
	rf := &replayFake{fakeStandby: r.sb, err: replica.ErrWarmStandby}
	r.l.deps.standby = func() (standby, error) { return rf, nil }
	require.NoError(t, r.l.Link(context.Background()))
	m := r.l.mon
	require.NotNil(t, m)
	select {
	case <-m.done:
	case <-time.After(time.Minute): // a bound, not a timing assertion
		t.Fatal("the monitor kept asking a warm standby")
	}
}

func TestReplayConfigValidate(t *testing.T) {
	r := newRig(t)
	cfg := r.cfg
	cfg.Staging.DataDir += "2"
	cfg.Replay = ReplayConfig{MaxLag: -time.Second}
	_, err := New(cfg)
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "Replay")
	cfg.Replay = ReplayConfig{Interval: -1}
	l, err := New(cfg)
	require.NoError(t, err, "a negative interval turns the monitor off")
	l.Close()
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Liveness reaches the standby (zero: replica's defaults, about 10 s), and
// Liveness and Replay are kept in the state file for Open and Resync.
func TestLivenessPassedThrough(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Liveness
		want time.Duration
	}{
		{"default", Liveness{}, 8 * time.Second},
		{"set", Liveness{ReceiverTimeout: 3 * time.Second}, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.l.cfg.Liveness = tc.in
			sb, err := r.l.newStandby()
			require.NoError(t, err)
			got := sb.(*replica.Standby).Config().Liveness.ReceiverTimeout
			assert.Equal(t, tc.want, got, "got %v, want %v", got, tc.want)
		})
	}
	cfg := Config{Liveness: Liveness{ConnectTimeout: 7 * time.Second}, Replay: ReplayConfig{MaxLag: time.Minute}}.withDefaults()
	data, err := json.Marshal(savedConfigOf(cfg))
	require.NoError(t, err)
	var saved savedConfig
	require.NoError(t, json.Unmarshal(data, &saved))
	back := saved.config(Config{})
	assert.Equal(t, cfg.Liveness, back.Liveness)
	assert.Equal(t, cfg.Replay, back.Replay)
}
