package replica

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Major is a PostgreSQL major version as server_version_num / 100 counts
// it: 904 for 9.4, 906 for 9.6, 1000 for 10, 1800 for 18.
type Major int

// ParseMajor reads a major as PG_VERSION and "postgres --version" spell it:
// "9.6", "15", "15.4", "9.6.24".
func ParseMajor(s string) (Major, error) {
	s = strings.TrimSpace(s)
	parts := strings.Split(s, ".")
	first, err := strconv.Atoi(parts[0])
	if err != nil || first <= 0 {
		return 0, fmt.Errorf("replica: %q is not a PostgreSQL version", s)
	}
	if first >= 10 {
		return Major(first * 100), nil
	}
	if len(parts) < 2 {
		return 0, fmt.Errorf("replica: %q is not a PostgreSQL version (9.x needs its minor part)", s)
	}
	second, err := strconv.Atoi(parts[1])
	if err != nil || second < 0 || second > 99 {
		return 0, fmt.Errorf("replica: %q is not a PostgreSQL version", s)
	}
	return Major(first*100 + second), nil
}

// String spells the major as PG_VERSION does: "9.6", "15".
func (m Major) String() string {
	if m >= 1000 {
		return strconv.Itoa(int(m) / 100)
	}
	return fmt.Sprintf("%d.%d", int(m)/100, int(m)%100)
}

// rules is what differs between majors for a standby, one row per half-open
// range [from, to) of majors. Code asks rulesFor(major) and never compares
// version numbers itself.
type rules struct {
	from, to Major

	// recoveryConf: standby settings go into recovery.conf (before 12);
	// else standby.signal plus settings in the server's configuration.
	recoveryConf bool
	// hotStandby: the standby accepts read-only connections. 9.4 and 9.5
	// run as warm standbys (hot_standby = off), as the original product did.
	hotStandby bool
	// passfileParam: libpq of this major knows passfile= (10+); before, the
	// server's environment carries PGPASSFILE.
	passfileParam bool
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
}

// The recovery settings that moved into the server's configuration in 12.
var recoverySettings12 = []string{
	"recovery_target", "recovery_target_lsn", "recovery_target_name", "recovery_target_time",
	"recovery_target_xid", "recovery_target_inclusive", "recovery_target_action",
	"restore_command", "recovery_end_command", "archive_cleanup_command",
	// Not parameters from 12 on: the server would reject the file.
	"standby_mode", "trigger_file",
}

var defaults94 = map[string]int{
	"max_connections": 100, "max_worker_processes": 8, "max_wal_senders": 0,
	"max_prepared_transactions": 0, "max_locks_per_transaction": 64,
}

var defaults10 = map[string]int{
	"max_connections": 100, "max_worker_processes": 8, "max_wal_senders": 10,
	"max_prepared_transactions": 0, "max_locks_per_transaction": 64,
}

var versionTable = []rules{
	{from: 904, to: 906, recoveryConf: true, hbaAuth: "md5", defaults: defaults94, logDirectory: "pg_log"},
	{from: 906, to: 1000, recoveryConf: true, hotStandby: true, walReceiverView: true,
		hbaAuth: "md5", defaults: defaults94, slotReserveWAL: true, logDirectory: "pg_log"},
	{from: 1000, to: 1200, recoveryConf: true, hotStandby: true, walReceiverView: true, passfileParam: true,
		pgctlWaitsForStandby: true, hbaAuth: "md5", defaults: defaults10, slotReserveWAL: true, logDirectory: "log"},
	{from: 1200, to: 1400, hotStandby: true, walReceiverView: true, passfileParam: true, pgctlWaitsForStandby: true,
		stale: append([]string{"promote_trigger_file"}, recoverySettings12...), hbaAuth: "md5", defaults: defaults10, slotReserveWAL: true, logDirectory: "log"},
	// promote_trigger_file is gone from 16: a leftover one is then an
	// unknown name, which the server also rejects, so it goes either way.
	{from: 1400, to: 1900, hotStandby: true, walReceiverView: true, passfileParam: true, pgctlWaitsForStandby: true,
		stale: append([]string{"promote_trigger_file"}, recoverySettings12...), hbaAuth: "scram-sha-256", defaults: defaults10, slotReserveWAL: true, logDirectory: "log"},
}

// ErrUnsupportedVersion: a major outside 9.4 to 18.
var ErrUnsupportedVersion = errors.New("replica: unsupported PostgreSQL version (supported: 9.4 to 18)")

func rulesFor(m Major) (*rules, error) {
	for i := range versionTable {
		if r := &versionTable[i]; m >= r.from && m < r.to {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupportedVersion, m)
}

// MarshalText spells the major as String does, for JSON and logs.
func (m Major) MarshalText() ([]byte, error) { return []byte(m.String()), nil }
