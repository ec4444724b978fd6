package stage

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgstage/pgstage/backupsel"
	"github.com/pgstage/pgstage/backupsel/basebackup"
	"github.com/pgstage/pgstage/walwatch"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// healRig is a rig with auto-heal on (or, with noLoop, with a healer whose
// goroutine does not run, so that its kicks can be counted), and a fake
// take and newer-backup look-up.
type healRig struct {
	*rig
	takes   atomic.Int32
	running atomic.Int32 // takes in progress
	maxRun  atomic.Int32
	// take is the fake take's body; nil succeeds.
	take  func(ctx context.Context, n int32) error
	newer atomic.Bool

	mu      sync.Mutex
	backoff []time.Duration
}

func newHealRig(t *testing.T, mode BackupMode, noLoop bool) *healRig {
	t.Helper()
	r := newRig(t)
	d := r.l.deps
	require.NoError(t, r.l.Close())
	r.cfg.BackupMode = mode
	r.cfg.Heal = HealConfig{Auto: !noLoop, Attempts: 3, Backoff: time.Millisecond, MaxBackoff: 3 * time.Millisecond, PollInterval: time.Hour}
	require.NoError(t, os.MkdirAll(r.cfg.BackupPath, 0o700))
	h := &healRig{rig: r}
	d.take = func(ctx context.Context, pf *preflight, progress func(done, total int64)) (*backupsel.Backup, error) {
		n := h.takes.Add(1)
		run := h.running.Add(1)
		defer h.running.Add(-1)
		for m := h.maxRun.Load(); run > m && !h.maxRun.CompareAndSwap(m, run); m = h.maxRun.Load() {
		}
		progress(50, 100)
		if h.take != nil {
			if err := h.take(ctx, n); err != nil {
				return nil, err
			}
		}
		progress(100, 100)
		return &backupsel.Backup{Name: "PostgreSQL_T20261201100000", Location: "/backups/PostgreSQL_T20261201100000", PGVersion: "15"}, nil
	}
	d.newerBackup = func(context.Context) (bool, error) { return h.newer.Load(), nil }
	l, err := New(r.cfg)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	l.deps = d
	if noLoop {
		done := make(chan struct{})
		close(done)
		l.heal = &healer{kick: make(chan struct{}, 1), stop: func() {}, done: done}
	} else {
		l.heal.mu.Lock()
		l.heal.after = func(d time.Duration) <-chan time.Time {
			h.mu.Lock()
			h.backoff = append(h.backoff, d)
			h.mu.Unlock()
			return time.After(0)
		}
		l.heal.mu.Unlock()
	}
	r.l = l
	return h
}

// blockTake makes the next take wait for its context's end; the channel
// is closed when it has started.
func (h *healRig) blockTake() <-chan struct{} {
	started := make(chan struct{})
	h.take = func(ctx context.Context, n int32) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}
	return started
}

// fault makes the running staging faulted with reason, as the watcher
// would: its state first, then its event.
func (h *healRig) fault(reason walwatch.Reason, line int) {
	h.w.setState(walwatch.State{Phase: walwatch.PhaseFaulted, Reason: reason, NeedsResync: reason.NeedsResync(), Since: t0.Add(time.Duration(line) * time.Second)})
	h.l.handle(faultEvent(line, reason))
}

// healEvents reads Events until one of the kinds in until, returning the
// heal events seen (the watcher's are skipped).
func healEvents(t *testing.T, l *Linker, until ...walwatch.Kind) []walwatch.Kind {
	t.Helper()
	var got []walwatch.Kind
	timeout := time.After(time.Minute) // a bound, not a timing assertion
	for {
		select {
		case ev, ok := <-l.Events():
			require.True(t, ok, "Events closed after %v", got)
			if len(ev.Kind) < 5 || ev.Kind[:5] != "heal-" {
				continue
			}
			got = append(got, ev.Kind)
			for _, k := range until {
				if ev.Kind == k {
					return got
				}
			}
		case <-timeout:
			t.Fatalf("no %v event; saw %v", until, got)
		}
	}
}

// Only faults that need a resync wake auto-heal, and a wrong primary is
// not one it heals.
func TestHealTriggers(t *testing.T) {
	cases := []struct {
		reason walwatch.Reason
		heals  bool
	}{
		{walwatch.ReasonWALRemoved, true},
		{walwatch.ReasonTimelineDiverged, true},
		{walwatch.ReasonPromoted, true},
		{walwatch.ReasonWrongPrimary, false},
		{walwatch.ReasonStreamLost, false},
		{walwatch.ReasonPrimaryUnreachable, false},
		{walwatch.ReasonAuthRefused, false},
	}
	for _, tc := range cases {
		t.Run(string(tc.reason), func(t *testing.T) {
			h := newHealRig(t, BackupTake, true)
			require.NoError(t, h.l.Link(context.Background()))
			h.fault(tc.reason, 1)
			assert.Equal(t, tc.heals, len(h.l.heal.kick) == 1, "kicked")
			assert.Equal(t, tc.heals, h.l.toHeal() != nil, "a fault to heal")
		})
	}
	t.Run("the promoted event", func(t *testing.T) {
		h := newHealRig(t, BackupTake, true)
		require.NoError(t, h.l.Link(context.Background()))
		h.w.setState(walwatch.State{Phase: walwatch.PhasePromoted, Since: t0})
		h.l.handle(walwatch.Event{Kind: walwatch.KindPromoted, File: "staging.log", Line: 3, LogTime: t0})
		assert.Len(t, h.l.heal.kick, 1)
		assert.NotNil(t, h.l.toHeal())
	})
}

// In take mode a heal takes a backup and resyncs; the fault is closed and
// Status says when it healed.
func TestHealTakeMode(t *testing.T) {
	h := newHealRig(t, BackupTake, false)
	ctx := context.Background()
	require.NoError(t, h.l.Link(ctx))
	require.EqualValues(t, 1, h.takes.Load(), "Link took one")
	h.fault(walwatch.ReasonWALRemoved, 1)
	assert.Equal(t, []walwatch.Kind{KindHealStarted, KindHealSucceeded}, healEvents(t, h.l, KindHealSucceeded))
	assert.EqualValues(t, 2, h.takes.Load())
	st, err := h.l.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, StateStreaming, st.State)
	require.NotNil(t, st.Heal)
	assert.False(t, st.Heal.Healing)
	assert.Equal(t, 1, st.Heal.Attempts)
	assert.False(t, st.Heal.Healed.IsZero())
	assert.False(t, h.l.Faults()[0].Open(), "the healed fault is closed")
}

// Failed attempts are retried after a back-off that doubles up to
// MaxBackoff, Attempts times; then the staging stays faulted, with the
// last error in Status.
func TestHealBackoffAndGiveUp(t *testing.T) {
	h := newHealRig(t, BackupTake, false)
	ctx := context.Background()
	require.NoError(t, h.l.Link(ctx))
	h.take = func(ctx context.Context, n int32) error { return basebackup.ErrBusy }
	h.fault(walwatch.ReasonWALRemoved, 1)
	assert.Equal(t, []walwatch.Kind{KindHealStarted, KindHealFailed, KindHealStarted, KindHealFailed, KindHealStarted, KindHealFailed, KindHealGaveUp},
		healEvents(t, h.l, KindHealGaveUp))
	assert.EqualValues(t, 1+3, h.takes.Load())
	h.mu.Lock()
	assert.Equal(t, []time.Duration{time.Millisecond, 2 * time.Millisecond}, h.backoff)
	h.mu.Unlock()
	st, err := h.l.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, StateFaulted, st.State, "the take failed before anything was touched")
	assert.Equal(t, walwatch.ReasonWALRemoved, st.Fault.Reason)
	require.NotNil(t, st.Heal)
	assert.True(t, st.Heal.GaveUp)
	assert.Equal(t, 3, st.Heal.Attempts)
	assert.Contains(t, st.Heal.LastError, "busy")
	assert.True(t, h.sb.isRunning(), "the staging server still runs")
}

// A fault given up on (or healed) is not healed again when the watcher
// reports it again; the next fault is.
func TestHealSettledFault(t *testing.T) {
	h := newHealRig(t, BackupTake, true)
	ctx := context.Background()
	require.NoError(t, h.l.Link(ctx))
	h.fault(walwatch.ReasonWALRemoved, 1)
	h.l.heal.settled = t0.Add(time.Second)
	h.l.heal1(ctx, h.l.heal)
	assert.EqualValues(t, 1, h.takes.Load(), "only Link's")

	h.l.handle(recoveredEvent(2))
	h.fault(walwatch.ReasonWALRemoved, 3)
	h.l.heal1(ctx, h.l.heal)
	assert.EqualValues(t, 2, h.takes.Load())
	assert.Equal(t, t0.Add(3*time.Second), h.l.heal.settled)
}

// An attempt that fails after the restore began undoes the staging, as a
// failed Resync does: Status still reports it faulted, and the next
// attempt rebuilds it.
func TestHealAfterAnUndo(t *testing.T) {
	h := newHealRig(t, BackupTake, false)
	ctx := context.Background()
	require.NoError(t, h.l.Link(ctx))
	var once sync.Once
	h.take = func(ctx context.Context, n int32) error {
		once.Do(func() { h.sb.mu.Lock(); h.sb.fail = "WaitStreaming"; h.sb.mu.Unlock() })
		if n == 3 {
			h.sb.mu.Lock()
			h.sb.fail = ""
			h.sb.mu.Unlock()
		}
		return nil
	}
	h.fault(walwatch.ReasonWALRemoved, 1)
	assert.Equal(t, []walwatch.Kind{KindHealStarted, KindHealFailed, KindHealStarted, KindHealSucceeded}, healEvents(t, h.l, KindHealSucceeded, KindHealGaveUp))
	st, err := h.l.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, StateStreaming, st.State)
}

// The Status of a staging a failed attempt undid, while the heal waits.
func TestHealStatusWhileUndone(t *testing.T) {
	h := newHealRig(t, BackupTake, false)
	ctx := context.Background()
	require.NoError(t, h.l.Link(ctx))
	h.take = func(ctx context.Context, n int32) error { return nil }
	h.sb.fail = "WaitStreaming"
	h.fault(walwatch.ReasonWALRemoved, 1)
	healEvents(t, h.l, KindHealGaveUp)
	st, err := h.l.Status(ctx)
	require.NoError(t, err)
	assert.False(t, st.Linked)
	assert.Equal(t, StateFaulted, st.State)
	require.NotNil(t, st.Fault)
	assert.Equal(t, walwatch.ReasonWALRemoved, st.Fault.Reason)
	assert.Contains(t, st.Heal.LastError, "injected")
}

// A disabled staging is never healed, and Disable interrupts a heal under
// way; Close stops auto-heal.
func TestHealNeverWhileDisabled(t *testing.T) {
	t.Run("disabled first", func(t *testing.T) {
		h := newHealRig(t, BackupTake, true)
		ctx := context.Background()
		require.NoError(t, h.l.Link(ctx))
		require.NoError(t, h.l.Disable(ctx))
		h.fault(walwatch.ReasonWALRemoved, 1)
		assert.Nil(t, h.l.toHeal())
		assert.ErrorIs(t, h.l.healResync(ctx, &Fault{Reason: walwatch.ReasonWALRemoved}), errNoHeal)
		assert.EqualValues(t, 1, h.takes.Load(), "only Link's")
	})
	t.Run("Disable interrupts, Close stops", func(t *testing.T) {
		h := newHealRig(t, BackupTake, false)
		ctx := context.Background()
		require.NoError(t, h.l.Link(ctx))
		started := h.blockTake()
		h.fault(walwatch.ReasonWALRemoved, 1)
		<-started
		require.NoError(t, h.l.Disable(ctx))
		require.NoError(t, h.l.Close())
		var got []walwatch.Kind
		for ev := range h.l.Events() {
			if ev.Kind == KindHealStarted || ev.Kind == KindHealFailed || ev.Kind == KindHealGaveUp || ev.Kind == KindHealSucceeded {
				got = append(got, ev.Kind)
			}
		}
		assert.Equal(t, []walwatch.Kind{KindHealStarted, KindHealFailed}, got, "no attempt after Disable")
		assert.EqualValues(t, 2, h.takes.Load())
	})
	t.Run("Close stops a heal under way", func(t *testing.T) {
		h := newHealRig(t, BackupTake, false)
		require.NoError(t, h.l.Link(context.Background()))
		started := h.blockTake()
		h.fault(walwatch.ReasonWALRemoved, 1)
		<-started
		require.NoError(t, h.l.Close())
		assert.EqualValues(t, 2, h.takes.Load())
	})
}

// A heal and a user's Resync never run at once: the Linker runs one job
// at a time.
func TestHealNeverTwoAtOnce(t *testing.T) {
	h := newHealRig(t, BackupTake, false)
	ctx := context.Background()
	require.NoError(t, h.l.Link(ctx))
	release := make(chan struct{})
	started := make(chan struct{})
	h.take = func(ctx context.Context, n int32) error {
		if n == 2 {
			close(started)
			<-release
		}
		return nil
	}
	h.fault(walwatch.ReasonWALRemoved, 1)
	<-started
	done := make(chan error)
	go func() { done <- h.l.Resync(ctx) }()
	for i := 0; i < 5; i++ {
		h.l.heal.poke()
	}
	close(release)
	require.NoError(t, <-done)
	healEvents(t, h.l, KindHealSucceeded)
	assert.EqualValues(t, 1, h.maxRun.Load(), "takes in progress at once")
	assert.EqualValues(t, 3, h.takes.Load(), "Link, the heal, the user's Resync")
}

// In external mode a heal waits for a newer backup in the backup path,
// which it notices when the path changes.
func TestHealExternalWaitsForANewerBackup(t *testing.T) {
	h := newHealRig(t, BackupExternal, false)
	ctx := context.Background()
	require.NoError(t, h.l.Link(ctx))
	h.fault(walwatch.ReasonWALRemoved, 1)
	assert.Equal(t, []walwatch.Kind{KindHealWaiting}, healEvents(t, h.l, KindHealWaiting))
	h.newer.Store(true)
	require.NoError(t, os.Mkdir(filepath.Join(h.cfg.BackupPath, "PostgreSQL_T20261201120000"), 0o700))
	assert.Equal(t, []walwatch.Kind{KindHealStarted, KindHealSucceeded}, healEvents(t, h.l, KindHealSucceeded))
	assert.EqualValues(t, 0, h.takes.Load(), "external mode takes none")
}

// Link in take mode: the take step comes after preflight, reports its
// bytes, and a take that fails touches nothing; a Resync whose take fails
// leaves the staging running.
func TestTakeStep(t *testing.T) {
	h := newHealRig(t, BackupTake, true)
	ctx := context.Background()
	h.take = func(ctx context.Context, n int32) error {
		if n == 1 {
			return basebackup.ErrRefused
		}
		return nil
	}
	err := h.l.Link(ctx)
	var se *StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, StepTakeBackup, se.Step)
	assert.ErrorIs(t, err, basebackup.ErrRefused)
	assert.Empty(t, h.sb.calls, "nothing touched")

	h.progress = nil
	require.NoError(t, h.l.Link(ctx))
	var take []Progress
	for _, p := range h.progress {
		if p.Step == StepTakeBackup {
			take = append(take, p)
		}
	}
	require.Len(t, take, 3)
	assert.Equal(t, 2, take[0].Index)
	assert.Equal(t, len(linkSteps)+1, take[0].Steps)
	assert.Less(t, take[0].Percent, take[1].Percent)
	assert.Less(t, take[1].Percent, take[2].Percent)
	assert.EqualValues(t, 100, take[2].Done)

	h.take = func(ctx context.Context, n int32) error { return basebackup.ErrBusy }
	require.ErrorIs(t, h.l.Resync(ctx), basebackup.ErrBusy)
	st, err := h.l.Status(ctx)
	require.NoError(t, err)
	assert.True(t, st.Linked)
	assert.True(t, h.sb.isRunning())
}

func TestBackupPathProblem(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	assert.Nil(t, backupPathProblem(dir))
	assert.Contains(t, backupPathProblem(filepath.Join(dir, "missing")).Error(), "no such file")
	assert.Contains(t, backupPathProblem(file).Error(), "not a directory")
}

func TestModeProblems(t *testing.T) {
	assert.Empty(t, Config{}.modeProblems())
	assert.Empty(t, Config{BackupMode: BackupTake}.modeProblems())
	assert.Len(t, Config{BackupMode: "fetch", Heal: HealConfig{Attempts: -1}}.modeProblems(), 2)
}

// A source that refuses the backup is not asked again: the heal gives up
// after one attempt.
func TestHealGivesUpAtOnceWhenRefused(t *testing.T) {
	h := newHealRig(t, BackupTake, false)
	require.NoError(t, h.l.Link(context.Background()))
	h.take = func(ctx context.Context, n int32) error { return basebackup.ErrRefused }
	h.fault(walwatch.ReasonWALRemoved, 1)
	assert.Equal(t, []walwatch.Kind{KindHealStarted, KindHealFailed, KindHealGaveUp}, healEvents(t, h.l, KindHealGaveUp))
	assert.EqualValues(t, 2, h.takes.Load())
}
