package stage

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgstage/pgstage/walwatch"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func faultEvent(line int, reason walwatch.Reason) walwatch.Event {
	return walwatch.Event{Kind: walwatch.KindFault, Reason: reason, Message: string(reason), File: "staging.log", Line: line,
		LogTime: t0.Add(time.Duration(line) * time.Second), Detected: t0.Add(time.Duration(line) * time.Second)}
}

func recoveredEvent(line int) walwatch.Event {
	return walwatch.Event{Kind: walwatch.KindRecovered, File: "staging.log", Line: line,
		LogTime: t0.Add(time.Duration(line) * time.Second), Detected: t0.Add(time.Duration(line) * time.Second)}
}

func TestFaultBookkeeping(t *testing.T) {
	cases := []struct {
		name   string
		events []walwatch.Event
		want   []Fault // Reason, NeedsResync, Since, Cleared only
	}{
		{"one fault per outage", []walwatch.Event{
			faultEvent(1, walwatch.ReasonStreamLost), faultEvent(2, walwatch.ReasonPrimaryUnreachable), faultEvent(3, walwatch.ReasonPrimaryUnreachable),
		}, []Fault{{Reason: walwatch.ReasonStreamLost, Since: t0.Add(time.Second)}}},
		{"recovered closes it, the next outage is another fault", []walwatch.Event{
			faultEvent(1, walwatch.ReasonStreamLost), recoveredEvent(2), faultEvent(3, walwatch.ReasonTimeout),
		}, []Fault{
			{Reason: walwatch.ReasonStreamLost, Since: t0.Add(time.Second), Cleared: t0.Add(2 * time.Second)},
			{Reason: walwatch.ReasonTimeout, Since: t0.Add(3 * time.Second)},
		}},
		{"a record read again after a resume is not a second fault", []walwatch.Event{
			faultEvent(1, walwatch.ReasonStreamLost), recoveredEvent(2), faultEvent(1, walwatch.ReasonStreamLost),
		}, []Fault{{Reason: walwatch.ReasonStreamLost, Since: t0.Add(time.Second), Cleared: t0.Add(2 * time.Second)}}},
		{"an open fault learns it needs a resync", []walwatch.Event{
			faultEvent(1, walwatch.ReasonStreamLost), faultEvent(2, walwatch.ReasonWALRemoved), faultEvent(3, walwatch.ReasonPrimaryUnreachable),
		}, []Fault{{Reason: walwatch.ReasonWALRemoved, NeedsResync: true, Since: t0.Add(time.Second)}}},
		{"promoted needs a resync", []walwatch.Event{
			{Kind: walwatch.KindPromoted, File: "staging.log", Line: 4, LogTime: t0},
		}, []Fault{{Reason: walwatch.ReasonPromoted, NeedsResync: true, Since: t0}}},
		{"lifecycle events raise nothing", []walwatch.Event{
			{Kind: walwatch.KindShutdown, Line: 1}, {Kind: walwatch.KindReady, Line: 2}, {Kind: walwatch.KindStreaming, Line: 3},
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			for _, ev := range tc.events {
				r.l.handle(ev)
			}
			var got []Fault
			for _, f := range r.l.Faults() {
				got = append(got, Fault{Reason: f.Reason, NeedsResync: f.NeedsResync, Since: f.Since, Cleared: f.Cleared})
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// Disable closes the open fault: nothing watches a disabled staging.
func TestDisableClosesTheOpenFault(t *testing.T) {
	r := newRig(t)
	require.NoError(t, r.l.Link(context.Background()))
	r.l.handle(faultEvent(1, walwatch.ReasonPrimaryUnreachable))
	require.True(t, r.l.Faults()[0].Open())
	require.NoError(t, r.l.Disable(context.Background()))
	assert.False(t, r.l.Faults()[0].Open())
	st, err := r.l.Status(context.Background())
	require.NoError(t, err)
	assert.Equal(t, StateDisabled, st.State)
	assert.Nil(t, st.Fault)
}

func TestStatusDerive(t *testing.T) {
	fault := &Fault{Reason: walwatch.ReasonStreamLost}
	cases := []struct {
		name string
		st   Status
		want State
	}{
		{"not linked", Status{}, StateUnlinked},
		{"not linked wins over all", Status{Disabled: true, Fault: fault, Running: true}, StateUnlinked},
		{"disabled", Status{Linked: true, Disabled: true, Fault: fault}, StateDisabled},
		{"faulted", Status{Linked: true, Fault: fault, Running: true, Receiver: "streaming"}, StateFaulted},
		{"stopped", Status{Linked: true}, StateStopped},
		{"streaming by the server", Status{Linked: true, Running: true, Receiver: "streaming"}, StateStreaming},
		{"streaming by the log when the server cannot be asked", Status{Linked: true, Running: true, Watch: walwatch.State{Phase: walwatch.PhaseStreaming}}, StateStreaming},
		{"the server's word wins over the log's", Status{Linked: true, Running: true, Receiver: "waiting", Watch: walwatch.State{Phase: walwatch.PhaseStreaming}}, StateStarting},
		{"starting", Status{Linked: true, Running: true, Receiver: "none"}, StateStarting},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.st.derive()
			assert.Equal(t, tc.want, got, "got %s, want %s", got, tc.want)
		})
	}
}

// Status and Snapshot take the watcher's word for a fault it has seen
// before its event is handled.
func TestFaultSeenByTheWatcherFirst(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	require.NoError(t, r.l.Link(ctx))
	r.w.setState(walwatch.State{Phase: walwatch.PhaseFaulted, Reason: walwatch.ReasonWALRemoved, NeedsResync: true, Since: t0})
	st, err := r.l.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, StateFaulted, st.State)
	_, err = r.l.Snapshot(ctx)
	require.ErrorIs(t, err, ErrFaulted)
	assert.True(t, NeedsResync(err))

	r.w.setState(walwatch.State{Phase: walwatch.PhaseStreaming})
	r.srv.receiver = "waiting"
	_, err = r.l.Snapshot(ctx)
	require.Error(t, err)
	assert.False(t, NeedsResync(err))
	assert.Contains(t, err.Error(), "walreceiver: waiting")
}

// When the log position saved by the last Linker is gone (the file was
// removed), the watcher reads the files written since from their start:
// the outage logged there is reported, and the log says what happened.
func TestResumePositionGone(t *testing.T) {
	r := newRig(t)
	var logged bytes.Buffer
	r.l.log = slog.New(slog.NewTextHandler(&logged, nil))
	r.l.deps.watch = (&Linker{}).realDeps().watch
	require.NoError(t, r.l.prepareDirs())
	require.NoError(t, os.MkdirAll(r.cfg.Staging.DataDir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(r.cfg.Staging.DataDir, "postgresql.conf"), []byte("log_line_prefix = '%m [%p] '\n"), 0o600))
	line := func(s int, sev, msg string) string {
		return fmt.Sprintf("%s [42] %s:  %s\n", t0.Add(time.Duration(s)*time.Second).Format("2006-01-02 15:04:05.000 MST"), sev, msg)
	}
	require.NoError(t, os.WriteFile(r.l.logFile(), []byte(
		line(1, "LOG", "started streaming WAL from primary at 0/3000000 on timeline 1")+
			line(2, "FATAL", "could not receive data from WAL stream: server closed the connection unexpectedly")), 0o600))
	r.l.st.Position = walwatch.Position{File: filepath.Join(r.l.logDir(), "staging.log.1"), Dev: 1, Ino: 1, Offset: 10, Line: 2,
		ModTime: t0, State: walwatch.State{Phase: walwatch.PhaseStreaming}}
	require.NoError(t, r.l.startWatcher(true))
	ev := waitKind(t, r.l, walwatch.KindFault)
	assert.Equal(t, walwatch.ReasonStreamLost, ev.Reason)
	r.l.stopWatcher()
	require.Len(t, r.l.Faults(), 1)
	assert.Contains(t, logged.String(), "the saved log position is gone")
}

func waitKind(t *testing.T, l *Linker, kind walwatch.Kind) walwatch.Event {
	t.Helper()
	timeout := time.After(time.Minute) // a bound, not a timing assertion
	for {
		select {
		case ev := <-l.Events():
			if ev.Kind == kind {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event", kind)
		}
	}
}
