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
}

// versionQueries is the one table of version-specific SQL: half-open ranges
// of majors as replica.Major counts them (906 is 9.6, 1000 is 10).
var versionQueries = []struct {
	from, to        replica.Major
	hot             bool // the staging takes queries (hot standby)
	receive, replay string
	diff            string
}{
	{904, 906, false, "", "", ""},
	{906, 1000, true, "pg_last_xlog_receive_location()", "pg_last_xlog_replay_location()", "pg_xlog_location_diff"},
	{1000, 100000, true, "pg_last_wal_receive_lsn()", "pg_last_wal_replay_lsn()", "pg_wal_lsn_diff"},
}

func queriesFor(pgVersion string) (int, error) {
	m, err := pgver.Parse(pgVersion)
	if err != nil {
		return 0, err
	}
	for i, q := range versionQueries {
		if m >= q.from && m < q.to {
			return i, nil
		}
	}
	return 0, fmt.Errorf("stage: PostgreSQL %s is not supported (9.4 to 18)", pgVersion)
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

// connect opens a connection to the staging over its Unix socket.
func (l *Linker) connect(ctx context.Context) (*pgx.Conn, error) {
	c := l.cfg.Staging
	cs := fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=disable connect_timeout=10 application_name=pgstage",
		libpq.Quote(c.SocketDir), c.Port, libpq.Quote(c.DBUser))
	return pgx.Connect(ctx, cs)
}

// query asks the staging where replication stands.
func (l *Linker) query(ctx context.Context) (*position, error) {
	l.mu.Lock()
	b := l.st.Backup
	sb := l.sb
	l.mu.Unlock()
	if b == nil {
		return nil, ErrNotLinked
	}
	i, err := queriesFor(b.PGVersion)
	if err != nil {
		return nil, err
	}
	q := versionQueries[i]
	if !q.hot {
		return l.warmPosition(ctx, sb)
	}
	conn, err := l.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("stage: connecting to the staging server: %w", err)
	}
	defer conn.Close(context.Background())
	sql := fmt.Sprintf(`SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none'),
		coalesce(%[1]s::text, ''), coalesce(%[2]s::text, ''),
		coalesce(%[3]s(%[1]s, %[2]s)::bigint, 0),
		coalesce((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint()), 0)::bigint,
		pg_last_xact_replay_timestamp()`, q.receive, q.replay, q.diff)
	p := &position{Method: "sql"}
	var tli int64
	var last *time.Time
	if err := conn.QueryRow(ctx, sql).Scan(&p.Receiver, &p.ReceiveLSN, &p.ReplayLSN, &p.LagBytes, &tli, &last); err != nil {
		return nil, fmt.Errorf("stage: asking the staging server: %w", err)
	}
	p.Timeline = uint32(tli)
	if last != nil {
		p.LastReplayed = *last
	}
	return p, nil
}

// warmPosition reads a warm standby's position from pg_control: its
// minimum recovery point is what a restart must replay to.
func (l *Linker) warmPosition(ctx context.Context, sb standby) (*position, error) {
	p := &position{Method: "pg_control", Receiver: "none"}
	if sb != nil {
		if st, err := sb.Status(ctx); err == nil && st.WalReceiver {
			p.Receiver = "streaming"
		}
	}
	cd, err := pgcontrol.ReadFile(l.cfg.Staging.DataDir)
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

// Sync is the original product's DB_Sync: the Pre-Sync hooks, a snapshot,
// the Post-Sync hooks. It fails with an error wrapping the current *Fault
// while replication is faulted.
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

func (l *Linker) sync(ctx context.Context, job string) (*Snapshot, error) {
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

// Snapshot records a consistent point of the staging: time, timeline,
// receive and replay positions, and the backup it came from; then it calls
// Config.Snapshotter with it. It fails with an error wrapping the current
// *Fault (errors.Is(err, ErrFaulted)) while replication is faulted, as the
// original product does, with ErrNotStreaming when the standby does not
// stream for another reason, and with ErrDisabled when disabled.
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

func (l *Linker) snapshot(ctx context.Context, job string) (*Snapshot, error) {
	if f := l.currentFault(); f != nil {
		return nil, fmt.Errorf("stage: snapshot refused: %w", f)
	}
	if err := l.runHooks(ctx, PointPreSnapshot, l.cfg.Hooks.PreSnapshot, l.env(job)); err != nil {
		return nil, err
	}
	p, err := l.query(ctx)
	if err != nil {
		return nil, err
	}
	if p.Receiver != "streaming" {
		// The watcher may not have read the fault's record yet.
		if f := l.currentFault(); f != nil {
			return nil, fmt.Errorf("stage: snapshot refused: %w", f)
		}
		return nil, fmt.Errorf("stage: snapshot refused: %w (walreceiver: %s)", ErrNotStreaming, p.Receiver)
	}
	if p.Method == "sql" {
		// A restartpoint makes a file system snapshot of the mount quick to
		// start: it need replay only from here.
		if conn, err := l.connect(ctx); err == nil {
			if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
				l.log.Warn("restartpoint before the snapshot failed; the snapshot stays consistent", "err", err)
			}
			conn.Close(context.Background())
			if p2, err := l.query(ctx); err == nil {
				p = p2
			}
		}
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
	if l.cfg.Snapshotter != nil {
		if err := l.cfg.Snapshotter.TakeSnapshot(ctx, *s); err != nil {
			return nil, fmt.Errorf("stage: snapshotter: %w", err)
		}
	}
	l.mu.Lock()
	l.st.Snapshots = append(l.st.Snapshots, *s)
	l.saveLocked()
	l.mu.Unlock()
	l.log.Info("snapshot", "job", job, "timeline", s.Timeline, "replay_lsn", s.ReplayLSN, "receive_lsn", s.ReceiveLSN)
	env := l.env(job)
	env.Snapshot = s
	return s, l.runHooks(ctx, PointPostSnapshot, l.cfg.Hooks.PostSnapshot, env)
}
