package stage

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/replica"
)

// replayStandby is a fake standby that can be asked about replay.
type replayStandby struct {
	*fakeStandby
	rp replica.Replay
}

func (s *replayStandby) Replay(context.Context) (replica.Replay, error) { return s.rp, nil }

func TestReplication(t *testing.T) {
	want := replica.Replay{Receiver: "streaming", ReceiveLSN: 0x3000100, ReplayLSN: 0x3000000}
	cases := []struct {
		name    string
		prepare func(t *testing.T, r *rig)
		wantErr error
	}{
		{"not linked", func(*testing.T, *rig) {}, ErrNotLinked},
		{"linked", func(t *testing.T, r *rig) { require.NoError(t, r.l.Link(context.Background())) }, nil},
		{"disabled", func(t *testing.T, r *rig) {
			require.NoError(t, r.l.Link(context.Background()))
			require.NoError(t, r.l.Disable(context.Background()))
		}, ErrDisabled},
		{"closed", func(t *testing.T, r *rig) {
			require.NoError(t, r.l.Link(context.Background()))
			require.NoError(t, r.l.Close())
		}, ErrClosed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			tc.prepare(t, r)
			r.l.deps.standby = func() (standby, error) { return &replayStandby{fakeStandby: r.sb, rp: want}, nil }
			got, err := r.l.Replication(context.Background())
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}

	// A handle that cannot be asked is an error, not a zero Replay.
	r := newRig(t)
	require.NoError(t, r.l.Link(context.Background()))
	_, err := r.l.Replication(context.Background())
	require.ErrorContains(t, err, "cannot be asked about replay")
}
