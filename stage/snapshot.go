package stage

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgstage/pgstage/internal/libpq"
	"github.com/pgstage/pgstage/internal/pgcontrol"
	"github.com/pgstage/pgstage/internal/pgver"
	"github.com/pgstage/pgstage/replica"
)

// Snapshot is a consistent point of the staging, as Snapshot recorded it.
type Snapshot struct {
	Time     time.Time `json:"time"`
	Timeline uint32    `json:"timeline"`
	// ReceiveLSN is the WAL received from the source, ReplayLSN the WAL
	// applied (both "" when the server cannot tell).
	ReceiveLSN string `json:"receive_lsn,omitempty"`
	ReplayLSN  string `json:"replay_lsn"`
	// LastReplayed is the commit time of the last transaction replayed
	// (zero when none was replayed since the server started).
	LastReplayed time.Time `json:"last_replayed,omitzero"`
	// Method says where the positions come from: "sql" (hot standby) or
	// "pg_control" (warm standby of 9.4 and 9.5, which takes no queries).
	Method string `json:"method"`
	// Backup names the backup the staging was restored from.
	Backup  string `json:"backup"`
	DataDir string `json:"data_dir"`

	// ID names the snapshot for Clone and DeleteSnapshot.
	ID string `json:"id,omitempty"`
	// The data, when the snapshot holds it (see snapdata.go): DataMethod is
	// btrfs, reflink or copy ("" for a record of positions only: Link's
	// first sync, or Snapshots.Method "none"), Location its directory,
	// Consistency how it starts ("backup", "crash" or "stopped"),
	// ExtraBytes the disk it added when made (measured as SizeMeasure
	// says) and Took how long it took.
	DataMethod  string        `json:"data_method,omitempty"`
	Location    string        `json:"location,omitempty"`
	Consistency string        `json:"consistency,omitempty"`
	ExtraBytes  int64         `json:"extra_bytes,omitempty"`
	SizeMeasure string        `json:"size_measure,omitempty"`
	Took        time.Duration `json:"took,omitempty"`
}

// positionSQL is how a staging of a version is asked where replication
// stands; hot is false for the warm standbys, which take no queries.
type positionSQL struct {
	hot                   bool
	receive, replay, diff string
}

var positionQueries = pgver.Table[positionSQL]{
	{Range: pgver.Range{From: pgver.V9_4, To: pgver.V9_6}},
	{Range: pgver.Range{From: pgver.V9_6, To: pgver.V10}, Rules: positionSQL{true, "pg_last_xlog_receive_location()", "pg_last_xlog_replay_location()", "pg_xlog_location_diff"}},
	{Range: pgver.Since(pgver.V10), Rules: positionSQL{true, "pg_last_wal_receive_lsn()", "pg_last_wal_replay_lsn()", "pg_wal_lsn_diff"}},
}

// position is what the staging says about its replication.
type position struct {
	Receiver     string // pg_stat_wal_receiver.status, "none" without a walreceiver
	ReceiveLSN   string
	ReplayLSN    string
	LagBytes     int64
	Timeline     uint32
	LastReplayed time.Time
	Method       string
}

// server is the running staging server, asked over one connection.
type server interface {
	position(ctx context.Context) (*position, error)
	// restartpoint asks for a restartpoint, so that a file system snapshot
	// of the mount need replay only from here.
	restartpoint(ctx context.Context) error
	close()
}

// openServer opens the staging server: one connection to a hot standby, the
// data directory's pg_control for a warm one.
func (l *Linker) openServer(ctx context.Context) (server, error) {
	l.mu.Lock()
	b, sb := l.st.Backup, l.sb
	l.mu.Unlock()
	if b == nil {
		return nil, ErrNotLinked
	}
	m, err := pgver.Parse(b.PGVersion)
	if err != nil {
		return nil, fmt.Errorf("stage: the backup's version: %w", err)
	}
	q, ok := positionQueries.For(m)
	if !ok {
		return nil, fmt.Errorf("stage: PostgreSQL %s is not supported (%s to %s)", m, pgver.Oldest, pgver.Newest)
	}
	if !q.hot {
		return &warmServer{dataDir: l.cfg.Staging.DataDir, sb: sb}, nil
	}
	c := l.cfg.Staging
	cs := fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=disable connect_timeout=10 application_name=pgstage",
		libpq.Quote(c.SocketDir), c.Port, libpq.Quote(c.DBUser))
	conn, err := pgx.Connect(ctx, cs)
	if err != nil {
		return nil, fmt.Errorf("stage: connecting to the staging server: %w", err)
	}
	return &hotServer{conn: conn, q: q}, nil
}

type hotServer struct {
	conn *pgx.Conn
	q    positionSQL
}

func (s *hotServer) position(ctx context.Context) (*position, error) {
	sql := fmt.Sprintf(`SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none'),
		coalesce(%[1]s::text, ''), coalesce(%[2]s::text, ''),
		coalesce(%[3]s(%[1]s, %[2]s)::bigint, 0),
		coalesce((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint()), 0)::bigint,
		pg_last_xact_replay_timestamp()`, s.q.receive, s.q.replay, s.q.diff)
	p := &position{Method: "sql"}
	var tli int64
	var last *time.Time
	if err := s.conn.QueryRow(ctx, sql).Scan(&p.Receiver, &p.ReceiveLSN, &p.ReplayLSN, &p.LagBytes, &tli, &last); err != nil {
		return nil, fmt.Errorf("stage: asking the staging server: %w", err)
	}
	p.Timeline = uint32(tli)
	if last != nil {
		p.LastReplayed = *last
	}
	return p, nil
}

func (s *hotServer) restartpoint(ctx context.Context) error {
	_, err := s.conn.Exec(ctx, "CHECKPOINT")
	return err
}

func (s *hotServer) close() { s.conn.Close(context.Background()) }

// warmServer reads a warm standby's position from pg_control: its minimum
// recovery point is what a restart must replay to.
type warmServer struct {
	dataDir string
	sb      standby
}

func (s *warmServer) position(ctx context.Context) (*position, error) {
	p := &position{Method: "pg_control", Receiver: "none"}
	if s.sb != nil {
		if st, err := s.sb.Status(ctx); err == nil && st.WalReceiver {
			p.Receiver = "streaming"
		}
	}
	cd, err := pgcontrol.ReadFile(s.dataDir)
	if err != nil {
		return nil, err
	}
	p.ReplayLSN = cd.MinRecoveryPoint.String()
	p.Timeline = cd.MinRecoveryPointTLI
	if p.Timeline == 0 {
		p.Timeline = cd.TimeLineID
	}
	return p, nil
}

// restartpoint: a warm standby takes no CHECKPOINT command.
func (s *warmServer) restartpoint(context.Context) error { return nil }
func (s *warmServer) close()                             {}

// Sync runs the Pre-Sync hooks, takes a snapshot, then runs the Post-Sync
// hooks. It fails with an error wrapping the current *Fault while
// replication is faulted, before any hook runs.
func (l *Linker) Sync(ctx context.Context) (*Snapshot, error) {
	if err := l.begin(); err != nil {
		return nil, err
	}
	defer l.end()
	if err := l.ready(); err != nil {
		return nil, err
	}
	return l.sync(ctx, JobSync)
}

func (l *Linker) sync(ctx context.Context, job Job) (*Snapshot, error) {
	if f := l.currentFault(); f != nil {
		return nil, fmt.Errorf("stage: %s refused: %w", job, f)
	}
	if err := l.runHooks(ctx, PointPreSync, l.cfg.Hooks.PreSync, l.env(job)); err != nil {
		return nil, err
	}
	s, err := l.snapshot(ctx, job)
	if err != nil {
		return nil, err
	}
	env := l.env(job)
	env.Snapshot = s
	return s, l.runHooks(ctx, PointPostSync, l.cfg.Hooks.PostSync, env)
}

// Snapshot takes a snapshot of the staging that holds its data (see
// SnapshotConfig.Method) and records it: time, timeline, receive and replay
// positions, the backup it came from, and the data's method, location and
// size; then it calls Config.Snapshotter with it and applies the retention
// policy. It fails with an error wrapping the current
// *Fault (errors.Is(err, ErrFaulted)) while replication is faulted, with
// replica.ErrNotStreaming when the standby does not stream for another
// reason, and with ErrDisabled when disabled.
func (l *Linker) Snapshot(ctx context.Context) (*Snapshot, error) {
	if err := l.begin(); err != nil {
		return nil, err
	}
	defer l.end()
	if err := l.ready(); err != nil {
		return nil, err
	}
	return l.snapshot(ctx, JobSnapshot)
}

// ready checks the staging is linked and enabled.
func (l *Linker) ready() error {
	if err := l.needLinked(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st.Disabled {
		return fmt.Errorf("%w: %s (Enable it first)", ErrDisabled, l.cfg.Staging.DataDir)
	}
	return nil
}

func (l *Linker) snapshot(ctx context.Context, job Job) (*Snapshot, error) {
	srv, err := l.deps.server(ctx)
	if err != nil {
		return nil, err
	}
	defer srv.close()
	p, err := srv.position(ctx)
	if err != nil {
		return nil, err
	}
	// One check, after the server answered: a fault the watcher has read
	// by now explains a receiver that does not stream.
	if f := l.currentFault(); f != nil {
		return nil, fmt.Errorf("stage: snapshot refused: %w", f)
	}
	if p.Receiver != "streaming" {
		return nil, fmt.Errorf("stage: snapshot refused: %w (walreceiver: %s)", replica.ErrNotStreaming, p.Receiver)
	}
	if err := l.runHooks(ctx, PointPreSnapshot, l.cfg.Hooks.PreSnapshot, l.env(job)); err != nil {
		return nil, err
	}
	if err := srv.restartpoint(ctx); err != nil {
		l.log.Warn("restartpoint before the snapshot failed; the snapshot stays consistent", "err", err)
	} else if p2, err := srv.position(ctx); err == nil {
		p = p2
	}
	l.mu.Lock()
	backup := ""
	if l.st.Backup != nil {
		backup = l.st.Backup.Name
	}
	l.mu.Unlock()
	s := &Snapshot{
		Time: time.Now().UTC(), Timeline: p.Timeline, ReceiveLSN: p.ReceiveLSN, ReplayLSN: p.ReplayLSN,
		LastReplayed: p.LastReplayed, Method: p.Method, Backup: backup, DataDir: l.cfg.Staging.DataDir,
	}
	if err := l.keepData(ctx, s, job); err != nil {
		return nil, err
	}
	if l.cfg.Snapshotter != nil {
		if err := l.cfg.Snapshotter.TakeSnapshot(ctx, *s); err != nil {
			l.dropData(ctx, s)
			return nil, fmt.Errorf("stage: snapshotter: %w", err)
		}
	}
	l.mu.Lock()
	l.st.Snapshots = append(l.st.Snapshots, *s)
	l.saveLocked()
	l.mu.Unlock()
	l.log.Info("snapshot", "job", job, "id", s.ID, "timeline", s.Timeline, "replay_lsn", s.ReplayLSN, "receive_lsn", s.ReceiveLSN, "data_method", s.DataMethod)
	l.applyRetention(ctx)
	env := l.env(job)
	env.Snapshot = s
	return s, l.runHooks(ctx, PointPostSnapshot, l.cfg.Hooks.PostSnapshot, env)
}
