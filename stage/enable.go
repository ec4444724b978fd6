package stage

import (
	"context"
	"fmt"
	"time"
)

// Enable starts the staging server and the watcher, then waits until it
// streams. If it does not stream within StreamTimeout the error says why,
// and the staging stays enabled and watched: the fault is reported too.
//
// Enable watches before it waits for streaming, where Link waits first:
// Link's standby is new, and a failure to stream undoes it, so there is
// nothing to watch yet; an enabled staging stays up whatever happens, and
// a staging that cannot stream (WAL removed while it was disabled) must
// raise its fault, which only the watcher does.
func (l *Linker) Enable(ctx context.Context) error {
	if err := l.begin(); err != nil {
		return err
	}
	defer l.end()
	if err := l.needLinked(); err != nil {
		return err
	}
	r := &run{l: l, job: JobEnable, steps: enableSteps}
	r.enter(StepStart, "starting the staging server")
	sb, err := l.deps.standby()
	if err != nil {
		return r.fail(err)
	}
	l.mu.Lock()
	l.sb = sb
	l.mu.Unlock()
	if err := l.prepareDirs(); err != nil {
		return r.fail(err)
	}
	if err := sb.Start(ctx); err != nil {
		return r.fail(err)
	}
	l.mu.Lock()
	l.st.Disabled = false
	l.saveLocked()
	l.mu.Unlock()
	r.enter(StepWatch, "watching the staging server log")
	if err := l.startWatcher(true); err != nil {
		return r.fail(err)
	}
	r.enter(StepStream, "waiting until it streams from the source")
	wctx, cancel := context.WithTimeout(ctx, l.cfg.StreamTimeout)
	defer cancel()
	_, err = sb.WaitStreaming(wctx)
	l.startPolicy() // enabled even when not streaming yet: a skipped snapshot says so
	return r.fail(err)
}

// Disable stops the watcher and then the staging server. A disabled staging
// raises no faults; Snapshot refuses it with ErrDisabled until Enable.
func (l *Linker) Disable(ctx context.Context) error {
	l.interruptHeal() // first: a heal under way holds the job lock
	if err := l.begin(); err != nil {
		return err
	}
	defer l.end()
	if err := l.needLinked(); err != nil {
		return err
	}
	r := &run{l: l, job: JobDisable, steps: disableSteps}
	r.enter(StepStop, "stopping the watcher and the staging server")
	sb, err := l.deps.standby()
	if err != nil {
		return r.fail(err)
	}
	l.stopPolicy()
	l.stopWatcher()
	l.mu.Lock()
	l.sb = sb
	l.st.Disabled = true
	// An outage open when the staging is disabled is over: nothing watches.
	l.closeFaultLocked(time.Now())
	l.saveLocked()
	l.mu.Unlock()
	return r.fail(sb.Stop(ctx))
}

func (l *Linker) needLinked() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.st.Linked {
		return fmt.Errorf("%w: %s (run Link, or Resync after a failed link)", ErrNotLinked, l.cfg.Staging.DataDir)
	}
	return nil
}
