package walwatch

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// receiverStatus reads pg_stat_wal_receiver.status (9.6+): "none" when no
// walreceiver runs.
func receiverStatus(ctx context.Context, connString string) (status string, inRecovery bool, err error) {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return "", false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	err = conn.QueryRow(ctx, `SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none'), pg_is_in_recovery()`).Scan(&status, &inRecovery)
	return status, inRecovery, err
}

// confirm returns the walreceiver status for an event, "" if unknown.
func (w *Watcher) confirm() string {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.ConfirmTimeout)
	defer cancel()
	go func() {
		select {
		case <-w.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	s, _, err := receiverStatus(ctx, w.cfg.ConnString)
	if err != nil {
		w.log.Debug("walwatch: confirmation by SQL failed", "err", err)
		return ""
	}
	return s
}

// initialBySQL learns the state from the server when the logs told nothing.
func (w *Watcher) initialBySQL() {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.ConfirmTimeout)
	defer cancel()
	s, inRecovery, err := receiverStatus(ctx, w.cfg.ConnString)
	if err != nil {
		w.log.Debug("walwatch: initial state by SQL failed", "err", err)
		return
	}
	now := time.Now()
	ev := Event{LogTime: now, Message: "pg_stat_wal_receiver.status = " + s, Receiver: s}
	switch {
	case !inRecovery:
		w.m.leaveRecovery(ev)
	case s == "streaming":
		w.out = w.m.feed(clsStreaming, ev, w.out[:0])
		w.emit()
	default:
		w.m.setPhase(PhaseStarting, ev, ReasonNone)
	}
	w.mu.Lock()
	w.state = w.m.st
	w.mu.Unlock()
}
