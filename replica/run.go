package replica

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstage/pgstage/internal/netcheck"
	"github.com/pgstage/pgstage/internal/secret"
	"github.com/pgstage/pgstage/pgconf"
)

// Status is what Status found.
type Status struct {
	Running bool
	PID     int // the postmaster's, when running
	// WalReceiver: a walreceiver process runs under the postmaster.
	WalReceiver bool
}

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

// Start starts the staging server and returns once it runs as a standby:
// from 10, once pg_ctl start -w is satisfied (a hot standby that has reached
// a consistent state), or, when StartTimeout passed first, as long as the
// server still runs without a FATAL error (it waits for WAL from the source).
// A port already in use is reported before anything is started. When the
// server does not start, the error is a *StartError with the reason and
// the tail of the server log.
func (s *Standby) Start(ctx context.Context) error {
	_, r, err := s.version(ctx)
	if err != nil {
		return err
	}
	if st, err := s.Status(ctx); err == nil && st.Running {
		return nil
	}
	if err := s.checkPort(); err != nil {
		return err
	}
	if err := s.prepareLog(r); err != nil {
		return err
	}
	args := []string{"start", "-D", s.cfg.DataDir, "-l", s.cfg.LogFile, "-s"}
	if r.pgctlWaitsForStandby {
		args = append(args, "-w", "-t", pgctlSeconds(s.cfg.StartTimeout))
	} else {
		args = append(args, "-W")
	}
	s.log.Info("replica: starting the staging server", "data_dir", s.cfg.DataDir, "port", s.cfg.Port)
	out, err := s.command(ctx, r, "pg_ctl", args...).CombinedOutput()
	if err != nil {
		// pg_ctl -w also gives up on a hot standby that is up but cannot
		// reach a consistent state yet (its WAL must come from a source
		// that is down): that one runs, and WaitStreaming will say why.
		if st, _ := s.Status(ctx); st.Running && startReason(s.logSince()) == "" {
			s.log.Warn("replica: the standby runs but is not consistent yet", "output", strings.TrimSpace(string(out)))
			return nil
		}
		return s.startError(fmt.Errorf("pg_ctl start: %w: %s", err, strings.TrimSpace(string(out))))
	}
	if !r.pgctlWaitsForStandby {
		return s.waitStarted(ctx)
	}
	return nil
}

// waitStarted waits for a 9.x server started without -w: until the log
// says it entered standby mode while the postmaster lives.
func (s *Standby) waitStarted(ctx context.Context) error {
	deadline := time.Now().Add(s.cfg.StartTimeout)
	for {
		st, _ := s.Status(ctx)
		text := s.logSince()
		if st.Running && (strings.Contains(text, "entering standby mode") || strings.Contains(text, "database system is ready")) {
			return nil
		}
		if !st.Running && strings.Contains(text, "FATAL") || time.Now().After(deadline) {
			return s.startError(errors.New("the server did not come up"))
		}
		select {
		case <-ctx.Done():
			return s.startError(ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

func (s *Standby) startError(err error) error {
	text := s.logSince()
	reason := startReason(text)
	pw := s.cfg.Source.Password
	return &StartError{Reason: secret.Redact(reason, pw), LogFile: s.cfg.LogFile, LogTail: secret.Redact(tail(text, 20), pw), Err: secret.Error(err, pw)}
}

// startReason finds the first FATAL or PANIC line of the log that is not
// the walreceiver's, and the DETAIL lines that follow it (14+ says "recovery aborted because of insufficient
// parameter settings" and names the parameter in the DETAIL).
func startReason(text string) string {
	var reason []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if len(reason) == 0 {
			// The walreceiver's FATALs (source down, refused) do not stop
			// the server: they are WaitStreaming's business.
			if (strings.Contains(line, "FATAL:") || strings.Contains(line, "PANIC:")) && !containsAny(line, walreceiverFaults) {
				reason = append(reason, line)
			}
			continue
		}
		if !strings.Contains(line, "DETAIL:") {
			break
		}
		reason = append(reason, line)
	}
	return strings.Join(reason, " ")
}

// prepareLog creates the log file for the OS user if needed, remembers
// where this start's lines begin, and where the logging collector writes
// when the configuration turns it on.
func (s *Standby) prepareLog(r *rules) error {
	s.collectorDir = ""
	if conf, err := pgconf.Load(s.cfg.DataDir); err == nil {
		if lc, ok := conf.Get("logging_collector"); ok && isOn(lc.Value) {
			dir := r.logDirectory
			if d, ok := conf.Get("log_directory"); ok && d.Value != "" {
				dir = d.Value
			}
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(s.cfg.DataDir, dir)
			}
			s.collectorDir = dir
		}
	}
	st, err := os.Stat(s.cfg.LogFile)
	if errors.Is(err, os.ErrNotExist) {
		if err := s.writeFile(s.cfg.LogFile, nil); err != nil {
			return err
		}
		s.logStart = 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("replica: server log: %w", err)
	}
	s.logStart = st.Size()
	return nil
}

// logSince returns the server log written since Start began (at most the
// last 1 MiB of it), and with logging_collector on, the collector's current
// file as well: the one current_logfiles names (10+), else the newest file
// of log_directory (9.x). scanLog looks at the latest server start only.
func (s *Standby) logSince() string {
	text := readFrom(s.cfg.LogFile, s.logStart)
	if b, err := os.ReadFile(filepath.Join(s.cfg.DataDir, "current_logfiles")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if name, ok := strings.CutPrefix(line, "stderr "); ok {
				if !filepath.IsAbs(name) {
					name = filepath.Join(s.cfg.DataDir, name)
				}
				text += readFrom(name, 0)
			}
		}
	} else if name := newestFile(s.collectorDir); name != "" {
		text += readFrom(name, 0)
	}
	return text
}

// newestFile returns the most recently modified file in dir, "" if none.
func newestFile(dir string) string {
	if dir == "" {
		return ""
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	var best string
	var bestTime time.Time
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		if info.ModTime().After(bestTime) {
			best, bestTime = filepath.Join(dir, e.Name()), info.ModTime()
		}
	}
	return best
}

func readFrom(name string, off int64) string {
	f, err := os.Open(name)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	if st.Size() < off { // truncated or replaced: read it all
		off = 0
	}
	if st.Size()-off > 1<<20 {
		off = st.Size() - 1<<20
	}
	b, _ := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	return string(b)
}

func tail(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LogTail returns the last n lines of the server log since Start.
func (s *Standby) LogTail(n int) string {
	return secret.Redact(tail(s.logSince(), n), s.cfg.Source.Password)
}

// checkPort fails when something already listens on the staging port, on
// TCP at the listen addresses or on the Unix socket.
func (s *Standby) checkPort() error {
	err := netcheck.PortFree(s.cfg.Port, strings.Split(s.cfg.ListenAddresses, ","), strings.Split(s.cfg.SocketDir, ","))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPortInUse, err)
	}
	return nil
}

// Stop stops the staging server: a fast shutdown, then an immediate one if
// the fast one has not finished within StopTimeout.
func (s *Standby) Stop(ctx context.Context) error {
	st, err := s.Status(ctx)
	if err != nil {
		return err
	}
	if !st.Running {
		return nil
	}
	_, r, err := s.version(ctx)
	if err != nil {
		return err
	}
	out, err := s.command(ctx, r, "pg_ctl", "stop", "-D", s.cfg.DataDir, "-m", "fast", "-w", "-t", pgctlSeconds(s.cfg.StopTimeout)).CombinedOutput()
	if err == nil {
		return nil
	}
	s.log.Warn("replica: fast shutdown did not finish, shutting down immediately", "output", strings.TrimSpace(string(out)))
	// Even when ctx has ended (which is what cut the fast shutdown short):
	// a server left half-way through a shutdown serves nobody.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 70*time.Second)
	defer cancel()
	out, err = s.command(ictx, r, "pg_ctl", "stop", "-D", s.cfg.DataDir, "-m", "immediate", "-w", "-t", "60").CombinedOutput()
	if err != nil {
		if st, serr := s.Status(ctx); serr == nil && !st.Running {
			return nil // it went down between the two attempts
		}
		return fmt.Errorf("replica: stopping the staging server: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// pgctlSeconds is d as pg_ctl's -t: whole seconds, rounded up, at least 1
// (pg_ctl -t 0 gives up at once).
func pgctlSeconds(d time.Duration) string {
	secs := int64(math.Ceil(d.Seconds()))
	return strconv.FormatInt(max(secs, 1), 10)
}

// Status reports whether the staging server runs (its postmaster.pid names
// a live process) and whether a walreceiver runs under it.
func (s *Standby) Status(ctx context.Context) (Status, error) {
	pid, err := s.postmaster()
	if err != nil || pid == 0 {
		return Status{}, err
	}
	return Status{Running: true, PID: pid, WalReceiver: walReceiverOf(pid)}, nil
}

// postmaster returns the pid of the running postmaster, 0 when none runs.
func (s *Standby) postmaster() (int, error) {
	b, err := os.ReadFile(filepath.Join(s.cfg.DataDir, "postmaster.pid"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("replica: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, nil // being written, or garbage: not running
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0, nil // stale file
	}
	return pid, nil
}

// walReceiverOf reports whether a child of pid is a walreceiver, from
// /proc (Linux): its process title is "postgres: walreceiver ..." (10+) or
// "postgres: wal receiver process ..." (9.x).
func walReceiverOf(pid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	want := strconv.Itoa(pid)
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[1] != want {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if c := string(cmd); strings.Contains(c, "walreceiver") || strings.Contains(c, "wal receiver") {
			return true
		}
	}
	return false
}

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
			status, err := s.receiverStatus(ctx)
			switch {
			case err == nil && status == "streaming":
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
	pw := s.cfg.Source.Password
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
// Unix socket. No row: no receiver ("").
func (s *Standby) receiverStatus(ctx context.Context) (string, error) {
	kv := map[string]string{
		"host":            strings.TrimSpace(strings.Split(s.cfg.SocketDir, ",")[0]),
		"port":            strconv.Itoa(s.cfg.Port),
		"user":            s.cfg.QueryUser,
		"dbname":          s.cfg.QueryDatabase,
		"connect_timeout": "5",
		"sslmode":         "disable",
	}
	pc, err := pgconn.ParseConfig(conninfo(kv))
	if err != nil {
		return "", err
	}
	pc.Password = ""
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgconn.ConnectConfig(cctx, pc)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	res, err := conn.Exec(cctx, "SELECT status FROM pg_stat_wal_receiver").ReadAll()
	if err != nil {
		return "", err
	}
	if len(res) == 0 || len(res[0].Rows) == 0 {
		return "", nil
	}
	return string(res[0].Rows[0][0]), nil
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
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
