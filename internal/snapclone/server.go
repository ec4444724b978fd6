package snapclone

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgCtl runs pg_ctl as the OS user (when root) with an environment of
// PATH and LANG only: never the caller's, which may hold PGPASSWORD or
// other secrets.
func (s *Staging) pgCtl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.cfg.BinDir, "pg_ctl"), args...)
	cmd.Env = []string{"PATH=" + s.cfg.BinDir + ":/usr/bin:/bin", "LANG=C"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(s.user.UID), Gid: uint32(s.user.GID)}
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// startServer starts the clone and waits until it accepts writes.
//
// A clone opens by crash recovery, whatever its snapshot: no
// recovery.signal or recovery.conf. With a backup_label (a base backup
// snapshot) the server still replays from the label's checkpoint and
// refuses to open before the backup's end ("WAL ends before end of online
// backup"), as for any standalone backup; without one, from pg_control's
// checkpoint to the end of pg_wal. Archive recovery would end on a new
// timeline, and its first segment is a 16 MiB copy of the last one
// (XLogFileCopy): on a reflink clone, 16 MiB of new blocks for nothing.
// Crash recovery serves no connection before it ends, so pg_ctl -w
// returns once the server is open read-write; pg_is_in_recovery() checks
// it where QueryUser can log in.
func (s *Staging) startServer(ctx context.Context, c *Clone, opts CloneOptions) error {
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	f, err := os.OpenFile(c.LogFile, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("snapclone: %w", err)
	}
	f.Close()
	if err := s.user.Chown(c.LogFile); err != nil {
		return fmt.Errorf("snapclone: %w", err)
	}
	secs := strconv.Itoa(max(int(opts.StartTimeout/time.Second), 1))
	if out, err := s.pgCtl(ctx, "-D", c.DataDir, "-l", c.LogFile, "-w", "-t", secs, "start"); err != nil {
		return s.startError(c, fmt.Errorf("pg_ctl start: %w: %s", err, out))
	}
	if !running(c.DataDir) {
		return s.startError(c, errors.New("the server stopped after it started"))
	}
	if inRecovery, err := askInRecovery(ctx, c, opts.QueryUser); err == nil && inRecovery {
		return s.startError(c, errors.New("the server is still in recovery once started: it must open read-write"))
	}
	return nil
}

func askInRecovery(ctx context.Context, c *Clone, user string) (bool, error) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(qctx, fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=disable", c.SocketDir, c.Port, user))
	if err != nil {
		return false, err
	}
	defer conn.Close(qctx)
	var in bool
	err = conn.QueryRow(qctx, "SELECT pg_is_in_recovery()").Scan(&in)
	return in, err
}

// startError reads the reason from the clone's log. A port or socket
// taken meanwhile is ErrPortInUse as well.
func (s *Staging) startError(c *Clone, err error) error {
	e := &StartError{DataDir: c.DataDir, LogFile: c.LogFile, Err: err}
	if f, ferr := os.Open(c.LogFile); ferr == nil {
		var lines, confErrs []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			lines = append(lines, line)
			switch {
			case e.Reason == "" && (strings.Contains(line, "FATAL:") || strings.Contains(line, "PANIC:")):
				e.Reason = strings.TrimSpace(line)
			case strings.Contains(line, "configuration parameter") || strings.Contains(line, "for parameter \"") ||
				strings.Contains(line, "syntax error in file"):
				// What "configuration file ... contains errors" is about.
				confErrs = append(confErrs, strings.TrimSpace(line))
			}
		}
		f.Close()
		if len(confErrs) > 0 {
			e.Reason = strings.Join(append(confErrs, e.Reason), "; ")
		}
		e.LogTail = strings.Join(lines[max(len(lines)-30, 0):], "\n")
	}
	for _, sign := range []string{"could not bind", "Address already in use", "could not create any TCP/IP sockets", "could not create lock file", "lock file \"/"} {
		if strings.Contains(e.LogTail, sign) {
			e.Err = fmt.Errorf("%w: %w", ErrPortInUse, err)
			break
		}
	}
	return e
}

// stopServer stops the server of dataDir if one runs: fast, then
// immediate when the fast shutdown takes over a minute.
func (s *Staging) stopServer(ctx context.Context, dataDir string) error {
	if !running(dataDir) {
		return nil
	}
	fast, cancel := context.WithTimeout(ctx, 70*time.Second)
	defer cancel()
	if _, err := s.pgCtl(fast, "-D", dataDir, "-m", "fast", "-w", "-t", "60", "stop"); err == nil || !running(dataDir) {
		return nil
	}
	if out, err := s.pgCtl(ctx, "-D", dataDir, "-m", "immediate", "-w", "-t", "60", "stop"); err != nil && running(dataDir) {
		return fmt.Errorf("snapclone: stopping the clone in %s: %w: %s", dataDir, err, out)
	}
	return nil
}
