package basebackup

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgstage/pgstage/internal/libpq"
	"github.com/pgstage/pgstage/internal/secret"
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
	kv := [][2]string{
		{"host", t.cfg.Host},
		{"port", strconv.Itoa(t.cfg.Port)},
		{"user", t.cfg.User},
		{"dbname", "replication"},
		{"replication", "true"},
		{"application_name", "pgstage_basebackup"},
		{"sslmode", t.cfg.SSLMode},
		{"connect_timeout", strconv.Itoa(max(1, int(t.cfg.ConnectTimeout.Seconds())))},
	}
	parts := make([]string, 0, len(kv))
	for _, p := range kv {
		if p[1] != "" {
			parts = append(parts, p[0]+"="+libpq.Quote(p[1]))
		}
	}
	pc, err := pgconn.ParseConfig(strings.Join(parts, " "))
	if err != nil {
		return nil, t.classify(purpose, secret.Error(fmt.Errorf("connection settings: %w", err), t.cfg.Password))
	}
	pc.Password = t.cfg.Password
	pc.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		return pgproto3.NewFrontend(bufio.NewReaderSize(r, readBufferSize), w)
	}
	conn, err := pgconn.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, t.classify(purpose, secret.Error(fmt.Errorf("replication connection: %w", err), t.cfg.Password))
	}
	return conn, nil
}
