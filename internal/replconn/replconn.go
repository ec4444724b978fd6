// Package replconn opens physical replication connections to the source
// server, for replica (to create the replication slot) and stage (to ask
// the source who it is in preflight).
//
// # Passwords
//
// The password goes into the parsed pgconn config, never into a connection
// string, a command line or an environment variable, and errors are passed
// through [secret.Error], so a driver or server message that quotes it
// shows a mask.
package replconn

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgstage/pgstage/internal/libpq"
	"github.com/pgstage/pgstage/internal/secret"
)

// DefaultConnectTimeout bounds each connection attempt when
// Config.ConnectTimeout is zero.
const DefaultConnectTimeout = 10 * time.Second

// Config says where to connect and as whom.
type Config struct {
	Host     string
	Port     int
	User     string
	Password string
	// SSLMode is libpq's sslmode; "" leaves pgconn's default (PGSSLMODE,
	// else prefer).
	SSLMode string
	// ApplicationName shows in the source's pg_stat_replication; "" sends
	// none.
	ApplicationName string
	// ConnectTimeout is libpq's connect_timeout, in whole seconds (at least
	// one); zero means DefaultConnectTimeout. It bounds each attempt (a
	// TLS try then a plain one are two): bound ctx for a limit on the whole.
	ConnectTimeout time.Duration
	// ReadBufferSize, if set, is the size of the buffer reads from the
	// server fill. pgproto3 reads into 8 KiB, a read or two per 32 KiB
	// COPY message; a base backup drains the socket in fewer system calls
	// with a larger one, as libpq's growing input buffer does.
	ReadBufferSize int
}

// conninfo spells cfg, password aside, as a libpq connection string. dbname
// is "replication", as the walreceiver sends: the server ignores it on a
// physical replication connection.
func (cfg Config) conninfo() string {
	timeout := cfg.ConnectTimeout
	if timeout == 0 {
		timeout = DefaultConnectTimeout
	}
	kv := [][2]string{
		{"host", cfg.Host},
		{"port", strconv.Itoa(cfg.Port)},
		{"user", cfg.User},
		{"dbname", "replication"},
		{"replication", "true"},
		{"application_name", cfg.ApplicationName},
		{"sslmode", cfg.SSLMode},
		{"connect_timeout", strconv.Itoa(max(1, int(timeout.Seconds())))},
	}
	parts := make([]string, 0, len(kv))
	for _, p := range kv {
		if p[1] != "" {
			parts = append(parts, p[0]+"="+libpq.Quote(p[1]))
		}
	}
	return strings.Join(parts, " ")
}

// Connect opens a physical replication connection to cfg's server. Its
// errors name the server and user, never the password; the caller prefixes
// its package name.
func Connect(ctx context.Context, cfg Config) (*pgconn.PgConn, error) {
	pc, err := pgconn.ParseConfig(cfg.conninfo())
	if err != nil {
		return nil, secret.Error(fmt.Errorf("source connection settings: %w", err), cfg.Password)
	}
	pc.Password = cfg.Password
	if n := cfg.ReadBufferSize; n > 0 {
		pc.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
			return pgproto3.NewFrontend(bufio.NewReaderSize(r, n), w)
		}
	}
	conn, err := pgconn.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, secret.Error(fmt.Errorf("replication connection to the source %s:%d as %s: %w", cfg.Host, cfg.Port, cfg.User, err), cfg.Password)
	}
	return conn, nil
}
