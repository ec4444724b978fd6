package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgstage/pgstage/internal/libpq"
)

// DefaultReplPassword is the replication role's password unless Options says
// otherwise. It holds a space, ', \, : and = so that every test proves the
// quoting of conninfo strings, passfiles and configuration files.
const DefaultReplPassword = `s3cr et'pa\ss:w=rd`

// Options configures StartPrimary. Zero fields mean the documented defaults.
type Options struct {
	// Settings are appended to postgresql.conf (values written as given).
	Settings map[string]string
	// ReplUser and ReplPassword: the replication role, default "replicator"
	// and DefaultReplPassword.
	ReplUser, ReplPassword string
	// Tablespace creates tablespace pgstage_ts holding table pgstage_ts_rows.
	Tablespace bool
	// HBA lines go before the harness's own pg_hba.conf lines.
	HBA []string
}

// Primary is a running PostgreSQL server started by StartPrimary.
type Primary struct {
	Major                               int
	BinDir, DataDir, SocketDir, LogFile string
	Host                                string
	Port                                int
	ReplUser, ReplPassword              string
	// TablespaceDir is the tablespace location when Options.Tablespace was set.
	TablespaceDir string

	netns string // the network namespace it runs in (Netns.Move), "" for ours
}

// StartPrimary starts a primary of major in a new temporary directory, on a
// free port, ready to serve replication: wal_level replica, WAL senders and
// slots, a replication role that logs in with a password (scram-sha-256) and
// a pg_hba.conf that lets it in from 127.0.0.1. The server is stopped and its
// directory removed when the test ends; its log is printed if the test failed.
func StartPrimary(t testing.TB, major int, opts Options) *Primary {
	t.Helper()
	p := &Primary{
		Major:        major,
		BinDir:       BinDir(t, major),
		Host:         "127.0.0.1",
		ReplUser:     opts.ReplUser,
		ReplPassword: opts.ReplPassword,
	}
	if p.ReplUser == "" {
		p.ReplUser = "replicator"
	}
	if p.ReplPassword == "" {
		p.ReplPassword = DefaultReplPassword
	}
	base := TempDir(t)
	p.SocketDir = base
	p.DataDir = filepath.Join(base, "data")
	p.LogFile = filepath.Join(base, "server.log")
	// A fresh initdb per primary (under a second) gives each its own system
	// identifier, which tests of "this backup is not from this source" need.
	out, err := Command(context.Background(), filepath.Join(p.BinDir, "initdb"),
		"-D", p.DataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "-N").CombinedOutput()
	if err != nil {
		t.Fatalf("pgtest: initdb %d: %v\n%s", major, err, out)
	}

	var conf strings.Builder
	fmt.Fprintf(&conf, "\n# pgtest\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n", base)
	conf.WriteString("wal_level = replica\nmax_wal_senders = 10\nmax_replication_slots = 10\n")
	conf.WriteString("password_encryption = 'scram-sha-256'\nfsync = off\nshared_buffers = 16MB\n")
	conf.WriteString("log_line_prefix = '%m [%p] '\nlog_min_messages = info\n")
	for k, v := range opts.Settings {
		fmt.Fprintf(&conf, "%s = %s\n", k, v)
	}
	appendFile(t, filepath.Join(p.DataDir, "postgresql.conf"), conf.String())

	var hba strings.Builder
	for _, l := range opts.HBA {
		hba.WriteString(l + "\n")
	}
	fmt.Fprintf(&hba, "local all all trust\nlocal replication all trust\n")
	fmt.Fprintf(&hba, "host all postgres 127.0.0.1/32 trust\nhost replication postgres 127.0.0.1/32 trust\n")
	fmt.Fprintf(&hba, "host replication all 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n")
	writeFile(t, filepath.Join(p.DataDir, "pg_hba.conf"), hba.String())
	Chown(t, base)

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgtest: PostgreSQL %d primary log (%s), last lines:\n%s", major, p.LogFile, p.LogTail(60))
		}
		p.stop("immediate")
	})

	for attempt := 0; attempt < 5; attempt++ {
		p.Port = FreePort(t)
		if err = p.start(); err == nil {
			break
		}
		if !strings.Contains(p.LogTail(20), "could not bind") && !strings.Contains(p.LogTail(20), "could not create any TCP/IP sockets") {
			break // not a port race: retrying will not help
		}
	}
	if err != nil {
		t.Fatalf("pgtest: start PostgreSQL %d: %v\n%s", major, err, p.LogTail(40))
	}

	p.Exec(t, fmt.Sprintf("CREATE ROLE %s LOGIN REPLICATION PASSWORD %s", pgx.Identifier{p.ReplUser}.Sanitize(), quoteLiteral(p.ReplPassword)))
	p.Exec(t, "CREATE TABLE pgstage_rows (id bigserial PRIMARY KEY, note text NOT NULL DEFAULT '')")
	if opts.Tablespace {
		p.TablespaceDir = filepath.Join(base, "ts")
		if err := os.Mkdir(p.TablespaceDir, 0o700); err != nil {
			t.Fatal(err)
		}
		Chown(t, p.TablespaceDir)
		p.Exec(t, fmt.Sprintf("CREATE TABLESPACE pgstage_ts LOCATION %s", quoteLiteral(p.TablespaceDir)))
		p.Exec(t, "CREATE TABLE pgstage_ts_rows (id bigserial PRIMARY KEY, note text) TABLESPACE pgstage_ts")
		p.Exec(t, "INSERT INTO pgstage_ts_rows (note) VALUES ('in a tablespace')")
	}
	return p
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings on).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func appendFile(t testing.TB, name, s string) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, name, s string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (p *Primary) pgctl(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	name, args := filepath.Join(p.BinDir, "pg_ctl"), append([]string{"-D", p.DataDir}, args...)
	cmd := Command(ctx, name, args...)
	if p.netns != "" {
		var err error
		if cmd, err = nsCommand(ctx, p.netns, name, args...); err != nil {
			return err
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (p *Primary) start() error {
	return p.pgctl("-l", p.LogFile, "-w", "-t", "60", "-o", fmt.Sprintf("-p %d", p.Port), "start")
}

func (p *Primary) stop(mode string) error {
	if _, err := os.Stat(filepath.Join(p.DataDir, "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return p.pgctl("-m", mode, "-w", "-t", "60", "stop")
}

// Stop stops the server with the given shutdown mode: "fast", or "immediate"
// (which is, to PostgreSQL, a crash: the next start runs crash recovery).
func (p *Primary) Stop(t testing.TB, mode string) {
	t.Helper()
	if err := p.stop(mode); err != nil {
		t.Fatalf("pgtest: stop PostgreSQL %d: %v", p.Major, err)
	}
}

// Start starts a stopped server again on the same port.
func (p *Primary) Start(t testing.TB) {
	t.Helper()
	if err := p.start(); err != nil {
		t.Fatalf("pgtest: start PostgreSQL %d: %v\n%s", p.Major, err, p.LogTail(40))
	}
}

// Restart stops the server (fast) and starts it again.
func (p *Primary) Restart(t testing.TB) {
	t.Helper()
	p.Stop(t, "fast")
	p.Start(t)
}

// ConnString returns a connection string for the superuser over TCP.
func (p *Primary) ConnString() string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=10", p.Host, p.Port)
}

// ReplConnString returns a physical replication connection string for the
// replication role, password included: for test code only.
func (p *Primary) ReplConnString() string {
	return fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=replication replication=true sslmode=disable connect_timeout=10",
		p.Host, p.Port, libpq.Quote(p.ReplUser), libpq.Quote(p.ReplPassword))
}

func (p *Primary) connect(tb testing.TB) (*pgx.Conn, context.Context, context.CancelFunc) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	conn, err := pgx.Connect(ctx, p.ConnString())
	if err != nil {
		cancel()
		tb.Fatalf("pgtest: connect to PostgreSQL %d on port %d: %v", p.Major, p.Port, err)
	}
	return conn, ctx, cancel
}

// Exec runs sql on the primary as the superuser.
func (p *Primary) Exec(tb testing.TB, sql string, args ...any) {
	tb.Helper()
	conn, ctx, cancel := p.connect(tb)
	defer cancel()
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		tb.Fatalf("pgtest: PostgreSQL %d: %s: %v", p.Major, sql, err)
	}
}

// QueryString runs the query sql and returns the first column of its first
// row in PostgreSQL's text form ("" for NULL).
func (p *Primary) QueryString(tb testing.TB, sql string, args ...any) string {
	tb.Helper()
	conn, ctx, cancel := p.connect(tb)
	defer cancel()
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		tb.Fatalf("pgtest: PostgreSQL %d: %s: %v", p.Major, sql, err)
	}
	defer rows.Close()
	if !rows.Next() {
		tb.Fatalf("pgtest: PostgreSQL %d: %s: no rows (%v)", p.Major, sql, rows.Err())
	}
	raw := rows.RawValues()
	if len(raw) == 0 || raw[0] == nil {
		return ""
	}
	if rows.FieldDescriptions()[0].Format != 0 {
		// Binary format: decode, then print.
		v, err := rows.Values()
		if err != nil {
			tb.Fatal(err)
		}
		return fmt.Sprint(v[0])
	}
	return string(raw[0])
}

// InsertRows inserts n rows into pgstage_rows and returns the largest id.
func (p *Primary) InsertRows(tb testing.TB, n int) int64 {
	tb.Helper()
	conn, ctx, cancel := p.connect(tb)
	defer cancel()
	defer conn.Close(ctx)
	var id int64
	err := conn.QueryRow(ctx, "WITH ins AS (INSERT INTO pgstage_rows (note) SELECT 'row ' || g FROM generate_series(1, $1) g RETURNING id) SELECT max(id) FROM ins", n).Scan(&id)
	if err != nil {
		tb.Fatalf("pgtest: PostgreSQL %d: insert %d rows: %v", p.Major, n, err)
	}
	return id
}

// SystemIdentifier returns the primary's database system identifier.
func (p *Primary) SystemIdentifier(tb testing.TB) uint64 {
	tb.Helper()
	conn, ctx, cancel := p.connect(tb)
	defer cancel()
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, "SELECT system_identifier::text FROM pg_control_system()").Scan(&s); err != nil {
		tb.Fatalf("pgtest: PostgreSQL %d: system identifier: %v", p.Major, err)
	}
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		tb.Fatalf("pgtest: PostgreSQL %d: system identifier %q: %v", p.Major, s, err)
	}
	return id
}

// LogTail returns the last n lines of the server log.
func (p *Primary) LogTail(n int) string { return Tail(p.LogFile, n) }

// Tail returns the last n lines of a file, or a note saying why it cannot.
func Tail(name string, n int) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
