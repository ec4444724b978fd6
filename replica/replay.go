package replica

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/pgstage/pgstage/internal/pgcontrol"
)

// LSN is a WAL location; its String spells it as PostgreSQL does
// ("0/16B3748").
type LSN = pgcontrol.LSN

// Replay is where the standby's replication stands: what it received, what
// it applied, and when it last heard from the source. It tells a stream
// that stalled (received WAL not applied: replay paused, a recovery
// conflict, a full disk) from one that is merely idle, and a dead
// walreceiver from a standby that has applied everything it had (where a
// lag computed as receive - replay says 0).
type Replay struct {
	// Receiver is pg_stat_wal_receiver.status ("streaming", "starting",
	// "waiting", "restarting", "stopping"; PostgreSQL's development branch
	// adds "connecting"); "" when no walreceiver runs.
	Receiver string
	// ReceiverPID is the walreceiver's process ID; 0 without one.
	ReceiverPID int
	// Answered: the walreceiver has had a message from the source. A
	// walreceiver says "streaming" from the moment it starts, before it has
	// connected, and keeps saying so when the source cannot serve it (the
	// WAL is already removed: the walsender accepts START_REPLICATION, then
	// fails before sending anything) until it exits and the next one
	// starts. The walsender's first message parts last_msg_send_time (the
	// source's clock) from last_msg_receipt_time, which the walreceiver
	// set to one same instant when it started. On an idle source that
	// first message may take wal_receiver_timeout / 2 (the walreceiver's
	// ping), so a stream may be accepted yet not Answered. It stays true
	// for the life of the process: a walreceiver that restarts streaming
	// itself (at the end of a timeline) keeps its earlier times.
	Answered bool
	// ReceiveLSN is the end of the WAL received and flushed by streaming
	// (pg_last_wal_receive_lsn); ReplayLSN the end of the WAL applied
	// (pg_last_wal_replay_lsn). 0 when unknown.
	ReceiveLSN, ReplayLSN LSN
	// LastMessage is when the standby last heard from the source
	// (pg_stat_wal_receiver.last_msg_receipt_time); zero without a
	// walreceiver.
	LastMessage time.Time
	// LastReplayed is the commit time of the last transaction applied
	// (pg_last_xact_replay_timestamp); zero when none since the start.
	LastReplayed time.Time
	// Paused: replay was paused (pg_wal_replay_pause).
	Paused bool
}

// Streaming reports whether the walreceiver says it streams from the
// source. That alone does not prove the source accepted it: see Answered.
func (r Replay) Streaming() bool { return r.Receiver == "streaming" }

// Behind is how many bytes of received WAL are not applied yet.
func (r Replay) Behind() int64 {
	if r.ReceiveLSN <= r.ReplayLSN {
		return 0
	}
	return int64(r.ReceiveLSN - r.ReplayLSN)
}

// Replay asks the standby where its replication stands, over its Unix
// socket as QueryUser.
func (s *Standby) Replay(ctx context.Context) (Replay, error) {
	_, r, err := s.version(ctx)
	if err != nil {
		return Replay{}, err
	}
	if !r.hotStandby || !r.walReceiverView {
		return Replay{}, ErrWarmStandby
	}
	// Status is NULL for a role that may not see the walreceiver's details
	// (pid is not): "unknown" then, which still says one runs. Times come as
	// epoch microseconds, whatever the session's DateStyle and TimeZone. The
	// view is read once (a join, not a subquery per column), and the
	// statement is prepared: the monitor asks it every second.
	sql := fmt.Sprintf(`SELECT CASE WHEN w.pid IS NULL THEN '' ELSE coalesce(w.status, 'unknown') END,
		coalesce(%s()::text, ''), coalesce(%s()::text, ''),
		(extract(epoch FROM w.last_msg_receipt_time) * 1000000)::bigint,
		(extract(epoch FROM pg_last_xact_replay_timestamp()) * 1000000)::bigint,
		%s(),
		coalesce(w.pid, 0), (w.last_msg_send_time IS DISTINCT FROM w.last_msg_receipt_time)
		FROM (SELECT) one LEFT JOIN pg_stat_wal_receiver w ON true`, r.funcs.receiveLSN, r.funcs.replayLSN, r.funcs.replayPaused)
	row, err := s.preparedRow(ctx, "pgstage_replay", sql)
	if err != nil {
		return Replay{}, fmt.Errorf("replica: asking the standby about replay: %w", err)
	}
	if len(row) != 8 {
		return Replay{}, fmt.Errorf("replica: asking the standby about replay: %d columns, want 8", len(row))
	}
	rp := Replay{Receiver: string(row[0]), Paused: string(row[5]) == "t", Answered: string(row[7]) == "t"}
	if rp.ReceiverPID, err = strconv.Atoi(string(row[6])); err != nil {
		return Replay{}, fmt.Errorf("replica: asking the standby about replay: %q is not a process ID", row[6])
	}
	for i, dst := range []*LSN{&rp.ReceiveLSN, &rp.ReplayLSN} {
		if *dst, err = parseLSN(string(row[1+i])); err != nil {
			return Replay{}, fmt.Errorf("replica: asking the standby about replay: %w", err)
		}
	}
	for i, dst := range []*time.Time{&rp.LastMessage, &rp.LastReplayed} {
		if row[3+i] == nil {
			continue
		}
		us, err := strconv.ParseInt(string(row[3+i]), 10, 64)
		if err != nil {
			return Replay{}, fmt.Errorf("replica: asking the standby about replay: %q is not a time", row[3+i])
		}
		*dst = time.UnixMicro(us)
	}
	return rp, nil
}

// parseLSN reads "16/B374D848"; "" is 0.
func parseLSN(s string) (LSN, error) {
	if s == "" {
		return 0, nil
	}
	var hi, lo uint32
	if _, err := fmt.Sscanf(s, "%X/%X", &hi, &lo); err != nil {
		return 0, fmt.Errorf("%q is not a WAL location", s)
	}
	return LSN(uint64(hi)<<32 | uint64(lo)), nil
}
