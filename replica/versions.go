package replica

import (
	"fmt"

	"github.com/pgstage/pgstage/internal/pgver"
)

// Major is a PostgreSQL major version (904 for 9.4, 1500 for 15), as
// [Result].Major reports it; its String spells it as PG_VERSION does.
type Major = pgver.Major

// rules is what differs between majors for a standby. Code asks
// rulesFor(major) and never compares version numbers itself.
type rules struct {
	// recoveryConf: standby settings go into recovery.conf (before 12);
	// else standby.signal plus settings in the server's configuration.
	recoveryConf bool
	// hotStandby: the standby accepts read-only connections. 9.4 and 9.5
	// are set up as warm standbys (hot_standby = off): they take no
	// connections and are judged by their log alone.
	hotStandby bool
	// passfileParam: libpq of this major knows passfile= (10+); before, the
	// server's environment carries PGPASSFILE.
	passfileParam bool
	// tcpUserTimeout: libpq of this major knows tcp_user_timeout (12+).
	tcpUserTimeout bool
	// walReceiverView: pg_stat_wal_receiver exists (9.6+).
	walReceiverView bool
	// pgctlWaitsForStandby: pg_ctl start -w returns once a standby is up
	// (10+ reads the state from postmaster.pid); before, pg_ctl -w waits for
	// connections that a warm standby never accepts, so we poll ourselves.
	pgctlWaitsForStandby bool
	// stale lists settings of the server's configuration that a source may
	// carry and that would make a standby misbehave (a leftover recovery
	// target promotes it) or refuse to start. Commented out.
	stale []string
	// hbaAuth is the password method of a generated pg_hba.conf.
	hbaAuth string
	// defaults are the server defaults of the hot-standby parameters, used
	// when the configuration does not set them.
	defaults map[string]int
	// slotReserveWAL: CREATE_REPLICATION_SLOT ... PHYSICAL RESERVE_WAL (9.6+).
	slotReserveWAL bool
	// logDirectory is log_directory's default.
	logDirectory string
	// funcs names the recovery functions (10 renamed xlog to wal).
	funcs recoveryFuncs
}

// recoveryFuncs are the names of a major's recovery information functions.
type recoveryFuncs struct{ receiveLSN, replayLSN, replayPaused string }

var (
	xlogFuncs = recoveryFuncs{"pg_last_xlog_receive_location", "pg_last_xlog_replay_location", "pg_is_xlog_replay_paused"}
	walFuncs  = recoveryFuncs{"pg_last_wal_receive_lsn", "pg_last_wal_replay_lsn", "pg_is_wal_replay_paused"}
)

// The recovery settings that moved into the server's configuration in 12.
var recoverySettings12 = []string{
	"recovery_target", "recovery_target_lsn", "recovery_target_name", "recovery_target_time",
	"recovery_target_xid", "recovery_target_inclusive", "recovery_target_action",
	"restore_command", "recovery_end_command", "archive_cleanup_command",
	// Not parameters from 12 on: the server would reject the file.
	"standby_mode", "trigger_file",
}

// promote_trigger_file is gone from 16: a leftover one is then an unknown
// name, which the server also rejects, so it is commented out either way.
var stale12 = append([]string{"promote_trigger_file"}, recoverySettings12...)

var defaults94 = map[string]int{
	"max_connections": 100, "max_worker_processes": 8, "max_wal_senders": 0,
	"max_prepared_transactions": 0, "max_locks_per_transaction": 64,
}

var defaults10 = map[string]int{
	"max_connections": 100, "max_worker_processes": 8, "max_wal_senders": 10,
	"max_prepared_transactions": 0, "max_locks_per_transaction": 64,
}

var versionTable = pgver.Table[rules]{
	{Range: pgver.Range{From: pgver.V9_4, To: pgver.V9_6}, Rules: rules{
		recoveryConf: true, hbaAuth: "md5", defaults: defaults94, logDirectory: "pg_log", funcs: xlogFuncs,
	}},
	{Range: pgver.Range{From: pgver.V9_6, To: pgver.V10}, Rules: rules{
		recoveryConf: true, hotStandby: true, walReceiverView: true,
		hbaAuth: "md5", defaults: defaults94, slotReserveWAL: true, logDirectory: "pg_log", funcs: xlogFuncs,
	}},
	{Range: pgver.Range{From: pgver.V10, To: pgver.V12}, Rules: rules{
		recoveryConf: true, hotStandby: true, walReceiverView: true, passfileParam: true,
		pgctlWaitsForStandby: true, hbaAuth: "md5", defaults: defaults10, slotReserveWAL: true, logDirectory: "log", funcs: walFuncs,
	}},
	{Range: pgver.Range{From: pgver.V12, To: pgver.V14}, Rules: rules{
		hotStandby: true, walReceiverView: true, passfileParam: true, tcpUserTimeout: true, pgctlWaitsForStandby: true,
		stale: stale12, hbaAuth: "md5", defaults: defaults10, slotReserveWAL: true, logDirectory: "log", funcs: walFuncs,
	}},
	{Range: pgver.Since(pgver.V14), Rules: rules{
		hotStandby: true, walReceiverView: true, passfileParam: true, tcpUserTimeout: true, pgctlWaitsForStandby: true,
		stale: stale12, hbaAuth: "scram-sha-256", defaults: defaults10, slotReserveWAL: true, logDirectory: "log", funcs: walFuncs,
	}},
}

func rulesFor(m Major) (*rules, error) {
	if !m.Supported() {
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedVersion, m)
	}
	// The table covers every supported major (a test checks it).
	r, _ := versionTable.For(m)
	return &r, nil
}
