package stage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/snapclone"
	"github.com/pgstage/pgstage/walwatch"
)

// fakeSnapper makes directories for snapshots and clones, and fails the
// clones on busyPort as a port in use.
type fakeSnapper struct {
	busyPort int
}

func (f *fakeSnapper) Snapshot(_ context.Context, dir string) (*snapclone.Snapshot, error) {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	return &snapclone.Snapshot{Dir: dir, Method: snapclone.MethodCopy, Consistency: snapclone.ConsistentBackup, ExtraBytes: 4096}, nil
}
func (f *fakeSnapper) DeleteSnapshot(_ context.Context, dir string) error { return os.RemoveAll(dir) }
func (f *fakeSnapper) Clone(_ context.Context, snapDir string, o snapclone.CloneOptions) (*snapclone.Clone, error) {
	if o.Port == f.busyPort {
		return nil, fmt.Errorf("%w: port %d", snapclone.ErrPortInUse, o.Port)
	}
	if err := os.Mkdir(o.Dir, 0o700); err != nil {
		return nil, err
	}
	return &snapclone.Clone{Dir: o.Dir, DataDir: filepath.Join(o.Dir, "data"), Snapshot: snapDir, Method: snapclone.MethodCopy, Port: o.Port, SocketDir: o.SocketDir}, nil
}
func (f *fakeSnapper) DestroyClone(_ context.Context, dir string) error { return os.RemoveAll(dir) }

// policyRig is a rig whose snapshots hold (fake) data, with a schedule
// whose ticks the test sends.
type policyRig struct {
	*rig
	ticks    chan time.Time
	tickers  int // schedulers started
	snapshot chan string
}

func newPolicyRig(t *testing.T, sc SnapshotConfig) *policyRig {
	t.Helper()
	p := &policyRig{rig: newRig(t), ticks: make(chan time.Time), snapshot: make(chan string, 16)}
	p.l.cfg.Snapshots = sc.withDefaults(p.l.cfg.Staging.DataDir)
	fs := &fakeSnapper{busyPort: 1}
	p.l.deps.snap = func() (snapper, error) { return fs, nil }
	p.l.deps.tick = func(context.Context, schedule) <-chan time.Time {
		p.tickers++
		return p.ticks
	}
	p.l.cfg.Hooks.PostSnapshot = []Hook{{Func: func(_ context.Context, e HookEnv) error {
		p.snapshot <- e.Snapshot.ID
		return nil
	}}}
	return p
}

// tick makes the scheduler take a snapshot and returns its ID.
func (p *policyRig) tick(t *testing.T) string {
	t.Helper()
	p.ticks <- time.Now()
	select {
	case id := <-p.snapshot:
		return id
	case <-time.After(time.Minute):
		t.Fatal("no scheduled snapshot after a tick")
	}
	return ""
}

func TestScheduler(t *testing.T) {
	p := newPolicyRig(t, SnapshotConfig{Every: time.Hour})
	ctx := context.Background()
	require.NoError(t, p.l.Link(ctx))
	<-p.snapshot // Link's first sync
	require.Equal(t, 1, p.tickers, "Link starts the scheduler")

	id := p.tick(t)
	snaps := p.l.Snapshots()
	require.Len(t, snaps, 2)
	assert.Equal(t, id, snaps[1].ID)
	assert.Equal(t, "copy", snaps[1].DataMethod, "a scheduled snapshot holds the data")
	assert.DirExists(t, snaps[1].Location)
	assert.Empty(t, snaps[0].Location, "Link's first sync records positions only")

	p.l.startPolicy()
	assert.Equal(t, 1, p.tickers, "never two schedulers")

	// Faulted: the tick is a skipped-snapshot event, not a silent gap.
	p.w.setState(walwatch.State{Phase: walwatch.PhaseFaulted, Reason: walwatch.ReasonPrimaryUnreachable, Since: time.Now()})
	p.ticks <- time.Now()
	ev := waitKind(t, p.l, KindSnapshotSkipped)
	assert.Equal(t, walwatch.ReasonPrimaryUnreachable, ev.Reason)
	assert.Contains(t, ev.Message, "scheduled snapshot not taken")
	assert.Len(t, p.l.Snapshots(), 2)
	p.w.setState(walwatch.State{Phase: walwatch.PhaseStreaming})

	require.NoError(t, p.l.Disable(ctx))
	assert.Nil(t, p.l.schedStop, "Disable stops the scheduler")
	select {
	case p.ticks <- time.Now():
		t.Fatal("a disabled staging's scheduler took a tick")
	default:
	}
	require.NoError(t, p.l.Enable(ctx))
	assert.Equal(t, 2, p.tickers, "Enable starts it again")
	p.tick(t)
	require.NoError(t, p.l.Close())
	assert.Nil(t, p.l.schedStop, "Close stops it")
}

// Retention keeps the newest, and never deletes a snapshot a clone uses;
// DeleteSnapshot refuses it too until the clone is destroyed. A clone that
// fails leaves no record.
func TestRetentionAndClones(t *testing.T) {
	p := newPolicyRig(t, SnapshotConfig{KeepLast: 1})
	ctx := context.Background()
	require.NoError(t, p.l.Link(ctx))
	a, err := p.l.Snapshot(ctx)
	require.NoError(t, err)
	c, err := p.l.Clone(ctx, a.ID, CloneOptions{ID: "alice"})
	require.NoError(t, err)
	assert.NotZero(t, c.Port, "a free port is picked")
	assert.Equal(t, "postgres", c.User)

	_, err = p.l.Clone(ctx, a.ID, CloneOptions{ID: "bob", Port: 1})
	require.ErrorIs(t, err, snapclone.ErrPortInUse)
	assert.Len(t, p.l.Clones(), 1, "a failed clone is not recorded")
	assert.NoDirExists(t, filepath.Join(p.l.cfg.Snapshots.CloneDir, "bob"))

	b, err := p.l.Snapshot(ctx)
	require.NoError(t, err)
	last, err := p.l.Snapshot(ctx)
	require.NoError(t, err)
	var ids []string
	for _, s := range p.l.Snapshots() {
		if s.Location != "" {
			ids = append(ids, s.ID)
		}
	}
	assert.Equal(t, []string{a.ID, last.ID}, ids, "the cloned one and the newest kept")
	assert.NoDirExists(t, b.Location)
	assert.DirExists(t, a.Location)

	err = p.l.DeleteSnapshot(ctx, a.ID)
	require.ErrorIs(t, err, ErrInUse)
	require.ErrorIs(t, p.l.DeleteSnapshot(ctx, "nope"), ErrNotFound)
	_, err = p.l.Clone(ctx, p.l.Snapshots()[0].ID, CloneOptions{})
	require.ErrorIs(t, err, ErrNoData, "Link's record holds no data")

	require.NoError(t, p.l.DestroyClone(ctx, "alice"))
	assert.Empty(t, p.l.Clones())
	assert.NoDirExists(t, c.Dir)
	require.NoError(t, p.l.DeleteSnapshot(ctx, a.ID))
	assert.NoDirExists(t, a.Location)
}

func TestExpired(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	snaps := []Snapshot{
		{ID: "d1", Time: now.Add(-4 * time.Hour), Location: "/s/d1"},
		{ID: "d2", Time: now.Add(-3 * time.Hour), Location: "/s/d2"},
		{ID: "p", Time: now.Add(-150 * time.Minute)}, // positions only
		{ID: "d3", Time: now.Add(-2 * time.Hour), Location: "/s/d3"},
		{ID: "d4", Time: now.Add(-1 * time.Hour), Location: "/s/d4"},
	}
	cases := []struct {
		name     string
		keepLast int
		within   time.Duration
		clones   []Clone
		want     []string
	}{
		{"no rule keeps all", 0, 0, nil, nil},
		{"newest two", 2, 0, nil, []string{"d2", "d1"}},
		{"younger than 150m", 0, 150 * time.Minute, nil, []string{"d2", "d1"}},
		{"either rule keeps", 1, 150 * time.Minute, nil, []string{"d2", "d1"}},
		{"both loose", 3, 4*time.Hour + time.Minute, nil, nil},
		{"a cloned one stays", 1, 0, []Clone{{ID: "c", Snapshot: "d1"}}, []string{"d3", "d2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := expired(snaps, tc.clones, tc.keepLast, tc.within, now)
			assert.Equal(t, tc.want, got, "got %v, want %v", got, tc.want)
		})
	}
}
