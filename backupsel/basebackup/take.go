package basebackup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgstage/pgstage/internal/pgver"
	"github.com/pgstage/pgstage/internal/secret"
)

// Result describes a backup Take wrote.
type Result struct {
	// Path is the backup folder, <BackupPath>/PostgreSQL_T<YYYYMMDDhhmmss>.
	Path string
	// Files are the names of the files in it, sorted.
	Files []string
	// Version is the source's major as PG_VERSION spells it ("9.6", "15").
	Version string
	// SystemIdentifier of the source.
	SystemIdentifier uint64
	// Timeline, StartLSN and EndLSN: the WAL the backup needs, which
	// pg_wal.tar holds.
	Timeline         uint32
	StartLSN, EndLSN LSN
	// Bytes of archive data received (before compression).
	Bytes int64
}

// Take takes a base backup of the source over the replication protocol and
// writes it into a new PostgreSQL_T<YYYYMMDDhhmmss> folder of the backup
// path, exactly as pg_basebackup -F t -X stream would (see the package
// documentation). On any error, ctx's cancellation included, nothing is
// left in the backup path.
func Take(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Port == 0 {
		cfg.Port = 5432
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.Label == "" {
		cfg.Label = "pgstage base backup"
	}
	if cfg.Time.IsZero() {
		cfg.Time = time.Now()
	}
	t := &taker{cfg: cfg, log: cfg.Logger}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.progress.fn = cfg.Progress
	res, err := t.run(ctx)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("basebackup: %w (%w)", ctx.Err(), err)
		}
		return nil, secret.Error(err, cfg.Password)
	}
	return res, nil
}

// taker holds one Take's state.
type taker struct {
	cfg      Config
	log      *slog.Logger
	major    pgver.Major
	rules    rules
	conn     *pgconn.PgConn
	folder   *folder
	sysID    uint64
	segSize  int64
	progress progress

	mu    sync.Mutex
	files []string
}

// run is the list of steps.
func (t *taker) run(parent context.Context) (*Result, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var err error
	t.folder, err = newFolder(t.cfg.BackupPath, "PostgreSQL_T"+t.cfg.Time.UTC().Format("20060102150405"))
	if err != nil {
		return nil, err
	}
	published := false
	defer func() {
		if !published {
			t.folder.remove()
		}
	}()
	if t.conn, err = t.connect(ctx, "base backup connection"); err != nil {
		return nil, err
	}
	defer t.conn.Close(context.Background())
	if err := t.identify(ctx); err != nil {
		return nil, err
	}
	t.log.Info("basebackup: starting", "source", t.cfg.Host, "port", t.cfg.Port, "version", t.major.String(), "folder", t.folder.tmp)

	var stream *walStream
	// first: the stream failed on its own, not because the backup was
	// stopped; its error is then the one to report.
	type streamEnd struct {
		err   error
		first bool
	}
	streamDone := make(chan streamEnd, 1)
	res := &Result{Version: t.major.String(), SystemIdentifier: t.sysID}
	rcv := &receiver{t: t, onStart: func(start LSN, tli uint32) error {
		res.StartLSN, res.Timeline = start, tli
		stream = &walStream{t: t, tli: tli, start: start, end: make(chan LSN, 1)}
		go func() {
			err := stream.run(ctx)
			first := err != nil && ctx.Err() == nil
			if first {
				cancel() // stop the base backup: it cannot be whole
			}
			streamDone <- streamEnd{err, first}
		}()
		return nil
	}}
	if err := t.sendBaseBackup(ctx); err != nil {
		return nil, t.classify("BASE_BACKUP", err)
	}
	err = rcv.run(ctx)
	if stream == nil {
		if err == nil {
			err = errors.New("the source sent no start position")
		}
		return nil, t.classify("BASE_BACKUP", err)
	}
	if err != nil {
		cancel()
		if se := <-streamDone; se.first {
			return nil, se.err // the WAL stream failed first and stopped the backup
		}
		var pe *pathError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, t.classify("BASE_BACKUP", err)
	}
	res.EndLSN = rcv.end
	stream.end <- rcv.end
	if se := <-streamDone; se.err != nil {
		return nil, se.err
	}
	t.progress.finish()
	files := t.fileList()
	if res.Path, err = t.folder.publish(files, t.cfg.NoSync); err != nil {
		return nil, err
	}
	published = true
	res.Files, res.Bytes = files, t.progress.done
	t.log.Info("basebackup: done", "folder", res.Path, "start", res.StartLSN.String(), "end", res.EndLSN.String(), "bytes", res.Bytes)
	return res, nil
}

// identify learns the source's version, system identifier and WAL segment
// size.
func (t *taker) identify(ctx context.Context) error {
	v := t.conn.ParameterStatus("server_version")
	m, err := pgver.Parse(v)
	if err != nil {
		return t.classify("server_version", err)
	}
	r, ok := versionRules.For(m)
	if !ok || !m.Supported() {
		return t.classify("server_version", fmt.Errorf("PostgreSQL %s is not supported (9.4 to 18 are)", m))
	}
	t.major, t.rules = m, r
	sysID, _, err := identifySystem(ctx, t.conn)
	if err != nil {
		return t.classify("IDENTIFY_SYSTEM", err)
	}
	t.sysID = sysID
	t.segSize = defaultSegSize
	if r.showSegSize {
		rows, err := simpleQuery(ctx, t.conn, "SHOW wal_segment_size")
		if err != nil {
			return t.classify("SHOW wal_segment_size", err)
		}
		if len(rows) != 1 || len(rows[0]) != 1 {
			return t.classify("SHOW wal_segment_size", errors.New("no value"))
		}
		if t.segSize, err = parseSize(string(rows[0][0])); err != nil {
			return t.classify("SHOW wal_segment_size", err)
		}
	}
	return nil
}

func (t *taker) sendBaseBackup(ctx context.Context) error {
	var rateKB int64
	if t.cfg.MaxRate > 0 {
		rateKB = max(32, t.cfg.MaxRate/1024)
	}
	cmd := t.rules.baseBackupCommand(t.cfg.Label, t.cfg.Progress != nil, t.cfg.FastCheckpoint, rateKB)
	t.log.Debug("basebackup: command", "sql", cmd)
	t.conn.Frontend().Send(&pgproto3.Query{String: cmd})
	return t.conn.Frontend().Flush()
}

// identifySystem runs IDENTIFY_SYSTEM: the system identifier and timeline.
func identifySystem(ctx context.Context, conn *pgconn.PgConn) (uint64, uint32, error) {
	rows, err := simpleQuery(ctx, conn, "IDENTIFY_SYSTEM")
	if err != nil {
		return 0, 0, err
	}
	if len(rows) != 1 || len(rows[0]) < 2 {
		return 0, 0, errors.New("IDENTIFY_SYSTEM returned no row")
	}
	id, err := strconv.ParseUint(string(rows[0][0]), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("system identifier %q: %w", rows[0][0], err)
	}
	tli, err := strconv.ParseUint(string(rows[0][1]), 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("timeline %q: %w", rows[0][1], err)
	}
	return id, uint32(tli), nil
}

// simpleQuery runs a replication command that returns one result set.
func simpleQuery(ctx context.Context, conn *pgconn.PgConn, sql string) ([][][]byte, error) {
	results, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	for _, r := range results {
		if r.Err != nil {
			return nil, r.Err
		}
		if len(r.FieldDescriptions) > 0 {
			return r.Rows, nil
		}
	}
	return nil, nil
}

func (t *taker) addFile(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.files = append(t.files, name)
}

func (t *taker) fileList() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string{}, t.files...)
	slices.Sort(out)
	return out
}

// pathErr names the backup path in a write failure and says what to do.
func (t *taker) pathErr(err error) error {
	var pe *pathError
	if errors.As(err, &pe) {
		return err
	}
	hint := ""
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		hint = "free space in the backup path or choose another one (the partial backup was removed)"
	case errors.Is(err, os.ErrPermission):
		hint = "the backup path must be writable by this process"
	case errors.Is(err, os.ErrExist), errors.Is(err, os.ErrNotExist):
		hint = "another writer changed the partial backup folder: give each writer its own backup path"
	}
	return &pathError{path: t.cfg.BackupPath, what: "writing the backup into", hint: hint, err: err}
}

// progress counts archive bytes and reports them, at most once per MiB.
type progress struct {
	fn           func(done, total int64)
	done, total  int64
	lastReported int64
}

func (p *progress) setTotal(total int64) { p.total = total }

func (p *progress) add(n int64) {
	p.done += n
	if p.fn != nil && p.done-p.lastReported >= 1<<20 {
		p.lastReported = p.done
		p.fn(p.done, max(p.total, p.done))
	}
}

func (p *progress) finish() {
	if p.fn != nil {
		p.fn(p.done, p.done)
	}
}
