package stage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pgstage/pgstage/backupsel/basebackup"
	"github.com/pgstage/pgstage/walwatch"
)

// HealConfig turns on auto-heal and tunes it. Zero fields mean the
// documented defaults; auto-heal is off unless Auto is set.
type HealConfig struct {
	// Auto makes a Linker that runs (linked, enabled, watched) resync by
	// itself when a fault needs it (WAL removed on the source, a timeline
	// that diverged, the staging promoted): in take mode from a backup it
	// takes, else from a backup newer than the one in use as soon as one
	// appears in BackupPath. A fault of a wrong primary is not healed: the
	// source reaches another database system, and a resync would quietly
	// make the staging a copy of it.
	Auto bool `json:"auto,omitempty"`
	// Attempts bounds the resyncs tried for one fault; default 5. A heal
	// gives up at once when the source refuses the backup (see
	// basebackup.ErrRefused): retrying cannot help until it is fixed.
	Attempts int `json:"attempts,omitempty"`
	// Backoff is the wait after the first failed attempt, doubled after
	// each one up to MaxBackoff; defaults 30 s and 10 min.
	Backoff    time.Duration `json:"backoff,omitempty"`
	MaxBackoff time.Duration `json:"max_backoff,omitempty"`
	// PollInterval is how often, in external mode, the backup path is
	// looked at for a newer backup besides the file system's change
	// notifications (which network file systems lack); default 1 minute.
	PollInterval time.Duration `json:"poll_interval,omitempty"`
}

// Heal defaults.
const (
	DefaultHealAttempts     = 5
	DefaultHealBackoff      = 30 * time.Second
	DefaultHealMaxBackoff   = 10 * time.Minute
	DefaultHealPollInterval = time.Minute
)

func (h HealConfig) attempts() int { return cmpOr(h.Attempts, DefaultHealAttempts) }
func (h HealConfig) backoff() time.Duration {
	return cmpOr(h.Backoff, DefaultHealBackoff)
}
func (h HealConfig) maxBackoff() time.Duration {
	return max(cmpOr(h.MaxBackoff, DefaultHealMaxBackoff), h.backoff())
}
func (h HealConfig) pollInterval() time.Duration {
	return cmpOr(h.PollInterval, DefaultHealPollInterval)
}

func cmpOr[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Events of auto-heal, sent on Events beside the watcher's: Reason is the
// fault's, Message says the attempt and, for a failure, the error.
const (
	// KindHealWaiting: external mode; the heal waits for a newer backup in
	// BackupPath.
	KindHealWaiting walwatch.Kind = "heal-waiting"
	// KindHealStarted: a resync attempt begins.
	KindHealStarted walwatch.Kind = "heal-started"
	// KindHealSucceeded: the staging streams again.
	KindHealSucceeded walwatch.Kind = "heal-succeeded"
	// KindHealFailed: an attempt failed; another follows after the back-off
	// unless the attempts are used up.
	KindHealFailed walwatch.Kind = "heal-failed"
	// KindHealGaveUp: every attempt failed; the staging stays faulted (see
	// Status.Heal) until a Resync or a new fault.
	KindHealGaveUp walwatch.Kind = "heal-gave-up"
)

// HealStatus is auto-heal's part of a Status.
type HealStatus struct {
	// Healing: a heal is under way (waiting for a backup, resyncing, or
	// waiting to try again).
	Healing bool `json:"healing"`
	// Reason is the fault the latest heal is for; Attempts how many
	// resyncs it tried so far, LastError the last one's failure.
	Reason    walwatch.Reason `json:"reason,omitempty"`
	Attempts  int             `json:"attempts,omitempty"`
	LastError string          `json:"last_error,omitempty"`
	// GaveUp: the latest heal used up its attempts.
	GaveUp bool `json:"gave_up,omitempty"`
	// Healed is when the latest heal succeeded.
	Healed time.Time `json:"healed,omitzero"`
}

// healer runs auto-heal: one goroutine for the Linker's life, woken by
// faults that need a resync, one heal at a time.
type healer struct {
	kick chan struct{}
	stop context.CancelFunc
	done chan struct{}
	// after is time.After; the tests record the back-off with it.
	after func(time.Duration) <-chan time.Time

	mu     sync.Mutex
	cancel context.CancelFunc // the heal under way, for Disable
	status HealStatus
	fault  *Fault // the fault the latest heal is for, while it is not healed
	// settled is the start of the last fault healed or given up on: a
	// watcher started anew may report it again while it reads the log
	// back, and it is not healed twice.
	settled time.Time
}

// errNoHeal: the staging no longer needs the heal (the fault closed, the
// staging was disabled, or a user job linked it again).
var errNoHeal = errors.New("stage: nothing to heal")

// startHealer starts auto-heal if the configuration asks for it, and looks
// at once for a fault to heal (Open may find one).
func (l *Linker) startHealer() {
	if !l.cfg.Heal.Auto {
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	h := &healer{kick: make(chan struct{}, 1), stop: stop, done: make(chan struct{}), after: time.After}
	l.mu.Lock()
	l.heal = h
	l.mu.Unlock()
	go l.healLoop(ctx, h)
	h.poke()
}

// stopHealer ends auto-heal and waits for it; for Close.
func (l *Linker) stopHealer() {
	l.mu.Lock()
	h := l.heal
	l.mu.Unlock()
	if h == nil {
		return
	}
	h.stop()
	<-h.done
}

// interruptHeal cancels the heal under way, if any; for Disable.
func (l *Linker) interruptHeal() {
	l.mu.Lock()
	h := l.heal
	l.mu.Unlock()
	if h == nil {
		return
	}
	h.mu.Lock()
	if h.cancel != nil {
		h.cancel()
	}
	h.mu.Unlock()
}

func (h *healer) poke() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// healOn wakes auto-heal on an event that may need it.
func (l *Linker) healOn(ev walwatch.Event) {
	l.mu.Lock()
	h := l.heal
	l.mu.Unlock()
	if h != nil && (ev.Kind == walwatch.KindFault && healable(ev.Reason) || ev.Kind == walwatch.KindPromoted) {
		h.poke()
	}
}

func healable(r walwatch.Reason) bool {
	return r.NeedsResync() && r != walwatch.ReasonWrongPrimary
}

func (l *Linker) healLoop(ctx context.Context, h *healer) {
	defer close(h.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.kick:
		}
		l.heal1(ctx, h)
	}
}

// toHeal returns the fault a running staging needs healed, or nil.
func (l *Linker) toHeal() *Fault {
	l.mu.Lock()
	run := l.st.Linked && !l.st.Disabled && !l.closed && l.w != nil
	l.mu.Unlock()
	if !run {
		return nil
	}
	f := l.currentFault()
	if f == nil || !healable(f.Reason) {
		return nil
	}
	return f
}

// heal1 heals one fault: attempts with back-off until one succeeds, the
// attempts are used up, the staging no longer needs it, or ctx ends.
func (l *Linker) heal1(parent context.Context, h *healer) {
	f := l.toHeal()
	if f == nil {
		return
	}
	h.mu.Lock()
	settled := !f.Since.After(h.settled)
	h.mu.Unlock()
	if settled {
		return
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	h.mu.Lock()
	h.cancel = cancel
	h.status = HealStatus{Healing: true, Reason: f.Reason}
	h.fault = f
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.cancel = nil
		h.status.Healing = false
		h.mu.Unlock()
	}()
	cfg := l.cfg.Heal
	delay := cfg.backoff()
	for attempt := 1; ; attempt++ {
		if !l.takes() {
			if err := l.waitNewerBackup(ctx, f); err != nil {
				return
			}
		}
		l.healEvent(KindHealStarted, f, "heal attempt %d of %d: resync (%s mode)", attempt, cfg.attempts(), l.backupMode())
		err := l.healResync(ctx, f)
		switch {
		case err == nil:
			h.mu.Lock()
			h.status.Healing, h.status.Attempts, h.status.LastError, h.status.Healed, h.fault = false, attempt, "", time.Now(), nil
			h.settled = f.Since
			h.mu.Unlock()
			l.healEvent(KindHealSucceeded, f, "healed by attempt %d: the staging streams again", attempt)
			return
		case errors.Is(err, errNoHeal):
			h.mu.Lock()
			h.fault = nil
			h.mu.Unlock()
			return
		}
		h.mu.Lock()
		h.status.Attempts, h.status.LastError = attempt, err.Error()
		h.mu.Unlock()
		l.healEvent(KindHealFailed, f, "heal attempt %d of %d failed: %v", attempt, cfg.attempts(), err)
		if ctx.Err() != nil {
			return
		}
		if attempt >= cfg.attempts() || hopeless(err) {
			h.mu.Lock()
			h.status.Healing, h.status.GaveUp, h.settled = false, true, f.Since
			h.mu.Unlock()
			l.healEvent(KindHealGaveUp, f, "gave up after %d attempts: the staging stays faulted; Resync it (last error: %v)", attempt, err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-h.after(delay):
		}
		delay = min(2*delay, cfg.maxBackoff())
	}
}

// hopeless reports whether retrying cannot help until the configuration
// is changed: the source refuses the backup, or the settings are wrong.
func hopeless(err error) bool {
	return errors.Is(err, basebackup.ErrRefused) || errors.Is(err, basebackup.ErrInvalidConfig) || errors.Is(err, ErrInvalidConfig)
}

func (l *Linker) backupMode() BackupMode {
	if l.takes() {
		return BackupTake
	}
	return BackupExternal
}

// healResync is Resync for a heal: under the job lock it checks again that
// the staging still needs it (a user job may have run meanwhile, or
// Disable), so that a heal never runs on a disabled staging.
func (l *Linker) healResync(ctx context.Context, f *Fault) error {
	if err := l.begin(); err != nil {
		return err
	}
	defer l.end()
	l.mu.Lock()
	disabled, linked, backup := l.st.Disabled, l.st.Linked, l.st.Backup != nil
	l.mu.Unlock()
	switch {
	case disabled:
		return errNoHeal
	case linked:
		if l.toHeal() == nil {
			return errNoHeal
		}
	case !backup:
		return errNoHeal // never linked: nothing of ours to rebuild
	}
	// Not linked: an attempt before failed past preflight and undid the
	// staging; the next one rebuilds it.
	if err := l.resync(ctx); err != nil {
		return err
	}
	// Streaming again: the fault healed is over (the new watcher reports
	// streaming too, a little later).
	l.mu.Lock()
	if o := l.openFaultLocked(); o != nil && o.Since.Equal(f.Since) {
		l.closeFaultLocked(time.Now())
		l.saveLocked()
	}
	l.mu.Unlock()
	return nil
}

// healEvent sends an auto-heal event on Events, and logs it.
func (l *Linker) healEvent(kind walwatch.Kind, f *Fault, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	ev := walwatch.Event{Kind: kind, Reason: f.Reason, Message: msg, Detected: time.Now()}
	if kind == KindHealFailed || kind == KindHealGaveUp {
		l.log.Warn("auto-heal: "+msg, "reason", f.Reason)
	} else {
		l.log.Info("auto-heal: "+msg, "reason", f.Reason)
	}
	select {
	case l.events <- ev:
	default:
		l.log.Warn("event dropped: nobody reads Events", "kind", kind)
	}
}

// healStatus is auto-heal's part of Status; nil when auto-heal is off.
func (l *Linker) healStatus() *HealStatus {
	l.mu.Lock()
	h := l.heal
	l.mu.Unlock()
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.status
	return &s
}

// healFault is the fault a heal is for while the staging is not linked
// (an attempt failed past preflight, which empties the data directory):
// Status reports it faulted with that fault, not merely unlinked.
func (l *Linker) healFault() *Fault {
	l.mu.Lock()
	h, linked := l.heal, l.st.Linked
	l.mu.Unlock()
	if h == nil || linked {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fault == nil {
		return nil
	}
	f := *h.fault
	return &f
}
