package replica

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// queryTimeout bounds a connection to the standby and one query on it.
const queryTimeout = 5 * time.Second

// queryRow runs sql on the standby over its Unix socket as QueryUser,
// without password, and returns the first row in text form (a NULL is nil),
// or nil when there is none.
//
// The connection is kept for the next query: a caller that asks every
// second (a replay monitor) would otherwise pay a fork and an
// authentication on the server each time. A query that fails closes it, and
// a connection found broken is replaced once, so a restarted server is
// asked again at once. Close releases it.
func (s *Standby) queryRow(ctx context.Context, sql string) ([][]byte, error) {
	return s.ask(ctx, func(ctx context.Context, c *pgconn.PgConn) ([]*pgconn.Result, error) {
		return c.Exec(ctx, sql).ReadAll()
	})
}

// preparedRow is queryRow for a question asked again and again (the
// replay monitor's, every second): the server parses and plans it once per
// connection rather than at each ask, which was most of what answering
// cost it. name is the statement's name on the connection.
func (s *Standby) preparedRow(ctx context.Context, name, sql string) ([][]byte, error) {
	return s.ask(ctx, func(ctx context.Context, c *pgconn.PgConn) ([]*pgconn.Result, error) {
		if !s.qprepared[name] {
			if _, err := c.Prepare(ctx, name, sql, nil); err != nil {
				return nil, err
			}
			s.qprepared[name] = true
		}
		// No result formats: every column in text, as Exec gives them.
		return []*pgconn.Result{c.ExecPrepared(ctx, name, nil, nil, nil).Read()}, nil
	})
}

// ask runs one question over the kept connection (see queryRow) and
// returns the first row of its first result.
func (s *Standby) ask(ctx context.Context, q func(context.Context, *pgconn.PgConn) ([]*pgconn.Result, error)) ([][]byte, error) {
	cctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		fresh := s.qconn == nil
		if fresh {
			conn, err := s.connectQuery(cctx)
			if err != nil {
				return nil, err
			}
			s.qconn, s.qprepared = conn, map[string]bool{}
		}
		res, err := q(cctx, s.qconn)
		if err == nil && len(res) > 0 {
			err = res[0].Err
		}
		if err != nil {
			s.closeQuery()
			if !fresh && attempt == 0 && cctx.Err() == nil {
				continue // a kept connection the server dropped: once more
			}
			return nil, err
		}
		if len(res) == 0 || len(res[0].Rows) == 0 {
			return nil, nil
		}
		return res[0].Rows[0], nil
	}
}

func (s *Standby) connectQuery(ctx context.Context) (*pgconn.PgConn, error) {
	kv := map[string]string{
		"host":            strings.TrimSpace(strings.Split(s.cfg.SocketDir, ",")[0]),
		"port":            strconv.Itoa(s.cfg.Port),
		"user":            s.cfg.QueryUser,
		"dbname":          s.cfg.QueryDatabase,
		"connect_timeout": seconds(queryTimeout),
		"sslmode":         "disable",
	}
	pc, err := pgconn.ParseConfig(conninfo(kv))
	if err != nil {
		return nil, err
	}
	pc.Password = "" // not the one a PGPASSWORD of this process would give
	conn, err := pgconn.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, err
	}
	// A staging inherits the source's settings: with log_statement = 'all'
	// or log_min_duration_statement = 0, as many sources have, each
	// question (every second from the replay monitor) would be a log line
	// for the server to write and the watcher to read, for ever. Only a
	// superuser may turn them off: for another QueryUser the questions
	// stay logged, which costs log lines, not correctness.
	conn.Exec(ctx, quietSession).ReadAll()
	return conn, nil
}

// quietSession keeps the session's statements out of the server log.
const quietSession = "SELECT set_config('log_statement', 'none', false), set_config('log_min_duration_statement', '-1', false), set_config('log_duration', 'off', false)"

func (s *Standby) closeQuery() {
	if s.qconn != nil {
		s.qconn.Close(context.Background())
		s.qconn, s.qprepared = nil, nil
	}
}

// Close releases the connection the standby's queries keep (WaitStreaming,
// Replay, Status). The Standby stays usable: the next query connects again.
func (s *Standby) Close() error {
	s.closeQuery()
	return nil
}
