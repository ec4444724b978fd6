package basebackup

import (
	"context"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstage/pgstage/internal/replconn"
)

// readBufferSize is what each read from the source may fill. pgproto3
// reads a message at a time into an 8 KiB buffer, which for 32 KiB
// archive messages means a read or two per message; a larger buffer
// drains the socket in few system calls, as libpq's growing input buffer
// does for pg_basebackup.
const readBufferSize = 256 << 10

// connect opens a physical replication connection to the source. The
// password goes into the parsed settings, never into the connection string.
func (t *taker) connect(ctx context.Context, purpose string) (*pgconn.PgConn, error) {
	conn, err := replconn.Connect(ctx, replconn.Config{
		Host: t.cfg.Host, Port: t.cfg.Port, User: t.cfg.User, Password: t.cfg.Password,
		SSLMode: t.cfg.SSLMode, ApplicationName: "pgstage_basebackup",
		ConnectTimeout: t.cfg.ConnectTimeout, ReadBufferSize: readBufferSize,
	})
	if err != nil {
		return nil, t.classify(purpose, err)
	}
	return conn, nil
}
