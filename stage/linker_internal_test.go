package stage

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLinkOnFakes(t *testing.T) {
	r := newRig(t)
	require.NoError(t, r.l.Link(context.Background()))
	st, err := r.l.Status(context.Background())
	require.NoError(t, err)
	assert.Equal(t, StateStreaming, st.State)
	assert.Empty(t, st.Job, "no job left unfinished")
	require.NotNil(t, st.Backup)
	assert.Equal(t, "PostgreSQL_T20261201000000", st.Backup.Name)
	assert.Len(t, r.l.Snapshots(), 1, "link takes the first snapshot")
	assert.Equal(t, []string{"Setup", "Start", "WaitStreaming"}, r.sb.calls)
}

// A failure at each step after preflight leaves no watcher, no server and
// an empty data directory, and the state file says not linked and no job
// in progress, so that Link can simply run again.
func TestUndoAfterEachStep(t *testing.T) {
	cases := []struct {
		step   Step
		break_ func(r *rig)
	}{
		{StepRestore, func(r *rig) { r.failStep = StepRestore }},
		{StepConfigure, func(r *rig) { r.sb.fail = "Setup" }},
		// A hot-standby minimum needs the restored pg_control, which the
		// fake restore does not write.
		{StepSettings, func(r *rig) { r.l.cfg.Settings = []Setting{{Name: "max_connections", Value: "1"}} }},
		{StepStart, func(r *rig) { r.sb.fail = "Start" }},
		{StepStream, func(r *rig) { r.sb.fail = "WaitStreaming" }},
		{StepWatch, func(r *rig) { r.failStep = StepWatch }},
		{StepSync, func(r *rig) { r.failStep = StepSync }},
	}
	for _, tc := range cases {
		t.Run(string(tc.step), func(t *testing.T) {
			r := newRig(t)
			tc.break_(r)
			err := r.l.Link(context.Background())
			var se *StepError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.step, se.Step, "got step %s, want %s", se.Step, tc.step)
			assert.Equal(t, JobLink, se.Job)
			assert.False(t, r.sb.isRunning(), "the server is stopped")
			entries, _ := os.ReadDir(r.cfg.Staging.DataDir)
			assert.Empty(t, entries, "the data directory is emptied")
			assert.Nil(t, r.l.w, "no watcher")
			st, err := loadState(r.l.cfg.Staging.StateDir)
			require.NoError(t, err)
			assert.False(t, st.Linked)
			assert.Empty(t, st.Job, "no job recorded in progress")

			// And Link again, with the failure gone, links.
			r.failStep, r.sb.fail, r.l.cfg.Settings = "", "", nil
			require.NoError(t, r.l.Link(context.Background()))
		})
	}
	t.Run("preflight", func(t *testing.T) {
		r := newRig(t)
		r.l.deps.preflight = func(context.Context, preflightMode) (*preflight, error) {
			return nil, &PreflightError{Problems: []error{errInjected}}
		}
		require.NoError(t, os.MkdirAll(r.cfg.Staging.DataDir, 0o700))
		require.NoError(t, os.WriteFile(r.cfg.Staging.DataDir+"/mine", nil, 0o600))
		require.ErrorIs(t, r.l.Link(context.Background()), ErrPreflight)
		entries, _ := os.ReadDir(r.cfg.Staging.DataDir)
		assert.Len(t, entries, 1, "a failed preflight touches nothing")
		assert.Empty(t, r.sb.calls)
	})
}

// A process that died mid-link leaves its step in the state file; Link in
// the next process carries on: it stops what that process started and
// empties what it restored before linking again.
func TestLinkCarriesOnAfterACrash(t *testing.T) {
	for _, step := range []Step{StepRestore, StepStart, StepStream, StepSync} {
		t.Run(string(step), func(t *testing.T) {
			r := newRig(t)
			require.NoError(t, os.MkdirAll(r.cfg.Staging.DataDir, 0o700))
			require.NoError(t, os.WriteFile(r.cfg.Staging.DataDir+"/half-restored", nil, 0o600))
			r.sb.running = step != StepRestore
			r.l.mark(JobLink, step)
			require.NoError(t, r.l.Close())

			r2 := newRig(t)
			r2.cfg, r2.sb = r.cfg, r.sb
			l, err := New(r.cfg)
			require.NoError(t, err)
			defer l.Close()
			l.deps = r2.l.deps
			r2.l.Close()
			st, err := l.Status(context.Background())
			require.NoError(t, err)
			assert.Equal(t, step, st.Step, "the step the last process died in")
			require.NoError(t, l.Link(context.Background()))
			assert.Equal(t, "Stop", r.sb.calls[0], "the server the dead process started is stopped first")
			_, err = os.Stat(r.cfg.Staging.DataDir + "/half-restored")
			assert.True(t, os.IsNotExist(err), "what the dead process restored is gone")
		})
	}
}

func TestPercent(t *testing.T) {
	each := 50.0 / 7 // link: the restore takes half, seven other steps the rest
	cases := []struct {
		name        string
		steps       []Step
		index       int
		done, total int64
		want        float64
	}{
		{"link starts", linkSteps, 1, 0, 0, 0},
		{"restore starts", linkSteps, 2, 0, 0, each},
		{"restore half done", linkSteps, 2, 50, 100, each + 25},
		{"restore over-reported", linkSteps, 2, 150, 100, each + 50},
		{"configure", linkSteps, 3, 0, 0, each + 50},
		{"last step", linkSteps, 8, 0, 0, 6*each + 50},
		{"enable, no restore", enableSteps, 2, 0, 0, 100.0 / 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := percent(tc.steps, tc.index, tc.done, tc.total)
			assert.InDelta(t, tc.want, got, 1e-9, "got %v, want %v", got, tc.want)
		})
	}
}

// The progress of a whole link only goes forward, reports the restore's
// bytes, and ends at 100.
func TestLinkProgress(t *testing.T) {
	r := newRig(t)
	require.NoError(t, r.l.Link(context.Background()))
	require.NotEmpty(t, r.progress)
	var steps []Step
	last := -1.0
	sawBytes := false
	for _, p := range r.progress {
		assert.GreaterOrEqual(t, p.Percent, last, "progress went back at %s", p.Step)
		last = p.Percent
		if p.Done > 0 {
			sawBytes = true
			assert.Equal(t, StepRestore, p.Step)
		} else if len(steps) == 0 || steps[len(steps)-1] != p.Step {
			steps = append(steps, p.Step)
		}
	}
	assert.True(t, sawBytes)
	assert.Equal(t, 100.0, last)
	assert.Equal(t, linkSteps, steps)
}

// Two Linkers of one data directory with different state directories: the
// second is refused while the first holds it, and after, because the first
// staging owns it.
func TestDataDirLock(t *testing.T) {
	r := newRig(t)
	other := r.cfg
	other.Staging.StateDir = r.cfg.Staging.DataDir + ".elsewhere"
	_, err := New(other)
	require.ErrorIs(t, err, ErrLocked)
	assert.Contains(t, err.Error(), "one Linker per data directory")

	require.NoError(t, r.l.Link(context.Background()))
	require.NoError(t, r.l.Close())
	_, err = New(other)
	require.ErrorIs(t, err, ErrLocked)
	assert.Contains(t, err.Error(), "belongs to the staging whose state is in "+r.l.cfg.Staging.StateDir)
	_, err = os.Stat(other.Staging.StateDir)
	assert.True(t, os.IsNotExist(err), "the refused Linker created no state directory")
}
