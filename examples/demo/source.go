package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstage/pgstage/internal/pgver"
	"github.com/pgstage/pgstage/internal/secret"
)

// source is the throwaway production server.
type source struct {
	bin, dir string
	user     demoUser
	password string
	port     int
}

func (s *source) data() string { return filepath.Join(s.dir, "data") }

func (s *source) init(ctx context.Context) error {
	if out, err := s.user.command(ctx, filepath.Join(s.bin, "initdb"), "-D", s.data(), "-U", "postgres",
		"-A", "trust", "-E", "UTF8", "--locale=C", "-N").CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	s.port = port
	conf := fmt.Sprintf("\nport = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"+
		"wal_level = replica\nmax_wal_senders = 5\nfsync = off\nshared_buffers = 16MB\n"+
		"password_encryption = 'scram-sha-256'\n", port, s.dir)
	f, err := os.OpenFile(filepath.Join(s.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	hba := "local all all trust\nlocal replication all trust\n" +
		"host all postgres 127.0.0.1/32 trust\nhost replication postgres 127.0.0.1/32 trust\n" +
		"host replication replicator 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(s.data(), "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return err
	}
	return s.user.chown(filepath.Join(s.data(), "pg_hba.conf"))
}

func (s *source) start(ctx context.Context) error {
	out, err := s.user.command(ctx, filepath.Join(s.bin, "pg_ctl"), "-D", s.data(), "-l", filepath.Join(s.dir, "source.log"), "-w", "start").CombinedOutput()
	if err != nil {
		return fmt.Errorf("starting the source: %v\n%s", err, out)
	}
	return s.exec(ctx, fmt.Sprintf("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator') THEN CREATE ROLE replicator LOGIN REPLICATION PASSWORD '%s'; END IF; END$$",
		s.password))
}

func (s *source) stop(ctx context.Context, mode string) error {
	if _, err := os.Stat(filepath.Join(s.data(), "postmaster.pid")); err != nil {
		return nil
	}
	out, err := s.user.command(ctx, filepath.Join(s.bin, "pg_ctl"), "-D", s.data(), "-m", mode, "-w", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("stopping the source: %v\n%s", err, out)
	}
	return nil
}

func (s *source) conninfo(replication bool) string {
	cs := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", s.port)
	if replication {
		cs += " replication=true"
	}
	return cs
}

func (s *source) exec(ctx context.Context, sqls ...string) error {
	conn, err := pgx.Connect(ctx, s.conninfo(false))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, q := range sqls {
		if _, err := conn.Exec(ctx, q); err != nil {
			// The statement may hold the demo role's password.
			return secret.Error(fmt.Errorf("%s: %w", secret.Redact(q, s.password), err), s.password)
		}
	}
	return nil
}

func (s *source) queryRow(ctx context.Context, sql string, dst ...any) error {
	conn, err := pgx.Connect(ctx, s.conninfo(false))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(ctx, sql).Scan(dst...)
}

// backup takes a base backup in tar form into folder: PostgreSQL 15 and
// later write it themselves (BASE_BACKUP TARGET 'server'), which works for
// any major the server bundles hold; earlier majors use Debian's
// pg_basebackup 15 (-F t -X stream), as a DBA would.
func (s *source) backup(ctx context.Context, folder string) error {
	if s.majorAtLeast15() {
		conn, err := pgconn.Connect(ctx, s.conninfo(true))
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		cmd := fmt.Sprintf("BASE_BACKUP (TARGET 'server', TARGET_DETAIL '%s', WAL true, CHECKPOINT 'fast', MANIFEST 'yes', WAIT true)", folder)
		_, err = conn.Exec(ctx, cmd).ReadAll()
		return err
	}
	pgbb := "/usr/lib/postgresql/15/bin/pg_basebackup"
	out, err := exec.CommandContext(ctx, pgbb, "-D", folder, "-F", "t", "-X", "stream", "-h", "127.0.0.1",
		"-p", strconv.Itoa(s.port), "-U", "postgres", "-w", "--checkpoint=fast", "--no-sync").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", pgbb, err, out)
	}
	return nil
}

func (s *source) majorAtLeast15() bool {
	m, err := pgver.ReadDataDir(s.data())
	return err == nil && m >= pgver.V15
}
