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
func (s *Standby) queryRow(ctx context.Context, sql string) ([][]byte, error) {
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
	cctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	conn, err := pgconn.ConnectConfig(cctx, pc)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	res, err := conn.Exec(cctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(res) == 0 || len(res[0].Rows) == 0 {
		return nil, nil
	}
	return res[0].Rows[0], nil
}
