package stage

import (
	"context"
	"fmt"

	"github.com/pgstage/pgstage/replica"
)

// Replication asks the running staging server where its replication
// stands (see [replica.Replay]): the walreceiver's status, what it received
// and applied, when it last heard from the source, the last transaction
// replayed, and whether replay is paused. Unlike a lag computed from
// positions alone, it tells a dead walreceiver from a standby that has
// applied everything it had. It may be called at any time, also while a job
// runs; ctx bounds it.
//
// It fails with ErrNotLinked, ErrDisabled or ErrClosed when there is no
// server to ask, with replica.ErrWarmStandby for 9.4 and 9.5 (which take no
// queries), and with the connection's error when the server is not running.
func (l *Linker) Replication(ctx context.Context) (replica.Replay, error) {
	l.mu.Lock()
	closed, linked, disabled := l.closed, l.st.Linked, l.st.Disabled
	l.mu.Unlock()
	switch {
	case closed:
		return replica.Replay{}, ErrClosed
	case !linked:
		return replica.Replay{}, fmt.Errorf("%w: %s", ErrNotLinked, l.cfg.Staging.DataDir)
	case disabled:
		return replica.Replay{}, fmt.Errorf("%w: %s", ErrDisabled, l.cfg.Staging.DataDir)
	}
	// A handle of its own, not the one jobs use: a replica.Standby is not
	// meant for calls from two goroutines at once.
	sb, err := l.deps.standby()
	if err != nil {
		return replica.Replay{}, err
	}
	r, ok := sb.(replayer)
	if !ok {
		return replica.Replay{}, fmt.Errorf("stage: the staging server handle %T cannot be asked about replay", sb)
	}
	return r.Replay(ctx)
}
