package replica

import (
	"bufio"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstage/pgstage/internal/secret"
)

// Streaming is how WaitStreaming confirmed streaming.
type Streaming struct {
	// Method is "pg_stat_wal_receiver" (asked the standby) or "log" (the
	// "started streaming WAL" line of this start and a live walreceiver
	// process: warm standbys of 9.4 and 9.5 take no connections, and the
	// fallback when the standby refuses our query connection).
	Method  string
	LogLine string // the streaming line, when seen
}

// pollInterval paces WaitStreaming and the 9.x start wait.
const pollInterval = 100 * time.Millisecond

// walreceiverFaults mark the log lines of the walreceiver (which relay
// the primary's and libpq's words after their own).
var walreceiverFaults = []string{
	"could not connect to the primary server", "streaming replication receiver",
	"could not receive data from WAL stream", "could not start WAL streaming",
	"database system identifier differs", "terminating walreceiver",
	"highest timeline", "is not a child", "replication slot",
}

// finalFaults, in a walreceiver line, end WaitStreaming at once: retrying
// cannot fix them without someone changing the source or the credentials.
var finalFaults = []string{
	"password authentication failed", "no pg_hba.conf entry", "authentication failed",
	"database system identifier differs", "does not exist", "has already been removed",
	"no password supplied",
}

// WaitStreaming waits until the standby streams from the source: 9.6+ asks
// pg_stat_wal_receiver (status "streaming"); 9.4/9.5 warm standbys, which
// take no connections, are judged by the "started streaming WAL" line of
// this start and a live walreceiver process. It fails at once on a fault
// that cannot heal by itself (authentication refused, another system's
// WAL), else when ctx ends, naming the last fault the server logged.
func (s *Standby) WaitStreaming(ctx context.Context) (*Streaming, error) {
	_, r, err := s.version(ctx)
	if err != nil {
		return nil, err
	}
	useSQL := r.walReceiverView && r.hotStandby
	lastFault := ""
	for {
		pid, err := s.postmaster()
		if err != nil {
			return nil, err
		}
		text := s.logSince()
		streamLine, fault, final := scanLog(text)
		if fault != "" {
			lastFault = fault
		}
		if pid == 0 {
			return nil, s.streamError(lastFault, ErrNotRunning)
		}
		if final {
			return nil, s.streamError(lastFault, nil)
		}
		if useSQL {
			status, heard, err := s.receiverStatus(ctx)
			switch {
			case err == nil && status == "streaming" && (heard || streamLine != "" && fault == ""):
				return &Streaming{Method: "pg_stat_wal_receiver", LogLine: streamLine}, nil
			case err != nil && refused(err):
				// No way in for us: the log and the process will do.
				s.log.Info("replica: cannot query the standby, judging streaming by its log", "err", err)
				useSQL = false
			}
		}
		if !useSQL && streamLine != "" && fault == "" && walReceiverOf(pid) {
			return &Streaming{Method: "log", LogLine: streamLine}, nil
		}
		select {
		case <-ctx.Done():
			return nil, s.streamError(lastFault, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

func (s *Standby) streamError(fault string, err error) error {
	pw := s.cfg.Source.Password.Reveal()
	return &StreamError{Fault: secret.Redact(fault, pw), LogTail: secret.Redact(tail(s.logSince(), 20), pw), Err: err}
}

// scanLog finds the last streaming line and the last fault line of the
// latest server start in text. A fault after the last streaming line counts;
// final says it cannot heal.
func scanLog(text string) (streamLine, fault string, final bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "starting PostgreSQL") || strings.Contains(line, "database system was ") {
			// A new start of the server: what an earlier run logged is over.
			streamLine, fault, final = "", "", false
			continue
		}
		if strings.Contains(line, "started streaming WAL from primary") || strings.Contains(line, "restarted WAL streaming at") {
			streamLine, fault, final = strings.TrimSpace(line), "", false
			continue
		}
		if !containsAny(line, walreceiverFaults) {
			continue
		}
		fault = strings.TrimSpace(line)
		final = containsAny(line, finalFaults)
	}
	return streamLine, fault, final
}

// receiverStatus asks the standby for pg_stat_wal_receiver.status over its
// Unix socket, and whether the walreceiver has heard from the source. No
// row: no receiver ("").
//
// The status alone does not prove a stream: a walreceiver says "streaming"
// from the moment it starts, before it has connected, and goes on saying so
// when the source cannot serve it (WAL already removed: the walsender
// accepts START_REPLICATION, then fails before sending anything), until it
// exits and the next one starts. What proves it is a message from the
// walsender, sent only once it streams: the walreceiver sets
// last_msg_send_time and last_msg_receipt_time to one same instant when it
// starts, and they part at the first message (the source's clock and ours).
// An idle source may send none for wal_receiver_timeout / 2: then the log's
// "started streaming" line with no fault after it tells.
func (s *Standby) receiverStatus(ctx context.Context) (status string, heard bool, err error) {
	row, err := s.queryRow(ctx, "SELECT status, (last_msg_send_time IS DISTINCT FROM last_msg_receipt_time)::text FROM pg_stat_wal_receiver")
	if err != nil || row == nil {
		return "", false, err
	}
	return string(row[0]), string(row[1]) == "true", nil
}

// refused tells an error that will not go away by waiting (authentication,
// no such role or database, no socket where we look) from a standby still
// starting up (57P03) or a query that merely timed out.
func refused(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code != "57P03"
	}
	return !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && !pgconn.Timeout(err)
}

func containsAny(s string, subs []string) bool {
	return slices.ContainsFunc(subs, func(sub string) bool { return strings.Contains(s, sub) })
}
