package snapclone

import "github.com/pgstage/pgstage/internal/pgver"

// rules are what differs between majors, for snapshots and clones.
type rules struct {
	// backupAPI: the non-exclusive base backup runs on a standby (9.6+).
	// 9.4 and 9.5 have only the exclusive one, which a standby refuses.
	backupAPI bool
	startSQL  string // $1 label, $2 fast checkpoint; returns the start LSN
	stopSQL   string // returns lsn, labelfile, spcmapfile; never waits for archiving
	// slotSQL creates a physical slot ($1) that reserves WAL at once: held
	// for the copy, it keeps the standby's restartpoints from recycling
	// the segments the snapshot needs. tempSlot: it is temporary (10+) and
	// goes with the session; else it is dropped explicitly.
	slotSQL  string
	tempSlot bool
	walDir   string // pg_xlog before 10

	// cowSettings are for a clone whose files share extents with its
	// snapshot (btrfs, reflink): wal_init_zero off (12+) makes a new WAL
	// segment by writing its last byte, not 16 MiB of zeros that would be
	// new blocks. Before 12 a new segment is always zero-filled; a clone
	// makes one only when its WAL nears the end of the current segment.
	cowSettings [][2]string
	// standbySettings are the recovery and standby settings of the
	// configuration (12+) that a clone must not keep: a clone follows no
	// one and is its own primary.
	standbySettings []string
}

var cowSettings12 = [][2]string{{"wal_init_zero", "off"}}

// standbySettings12 are the recovery settings that live in the
// configuration from 12; before, they are in recovery.conf, which a clone
// does not keep.
var standbySettings12 = []string{
	"primary_conninfo", "primary_slot_name", "promote_trigger_file",
	"restore_command", "archive_cleanup_command", "recovery_end_command",
	"recovery_target", "recovery_target_lsn", "recovery_target_name",
	"recovery_target_time", "recovery_target_xid", "recovery_target_inclusive",
	"recovery_target_timeline", "recovery_target_action", "recovery_min_apply_delay",
}

const (
	startSQL96 = "SELECT pg_start_backup($1, $2, false)::text"
	startSQL15 = "SELECT pg_backup_start($1, $2)::text"
	stopSQL96  = "SELECT lsn::text, labelfile, coalesce(spcmapfile, '') FROM pg_stop_backup(false)"
	stopSQL10  = "SELECT lsn::text, labelfile, coalesce(spcmapfile, '') FROM pg_stop_backup(false, false)"
	stopSQL15  = "SELECT lsn::text, labelfile, coalesce(spcmapfile, '') FROM pg_backup_stop(false)"
	slotSQL96  = "SELECT pg_create_physical_replication_slot($1, true)"
	slotSQL10  = "SELECT pg_create_physical_replication_slot($1, true, true)"
)

var versionRules = pgver.Table[rules]{
	{Range: pgver.Range{From: pgver.V9_4, To: pgver.V9_6}, Rules: rules{walDir: "pg_xlog"}},
	{Range: pgver.Range{From: pgver.V9_6, To: pgver.V10}, Rules: rules{backupAPI: true, startSQL: startSQL96, stopSQL: stopSQL96,
		slotSQL: slotSQL96, walDir: "pg_xlog"}},
	{Range: pgver.Range{From: pgver.V10, To: pgver.V12}, Rules: rules{backupAPI: true, startSQL: startSQL96, stopSQL: stopSQL10,
		slotSQL: slotSQL10, tempSlot: true, walDir: "pg_wal"}},
	{Range: pgver.Range{From: pgver.V12, To: pgver.V15}, Rules: rules{backupAPI: true, startSQL: startSQL96, stopSQL: stopSQL10,
		slotSQL: slotSQL10, tempSlot: true, walDir: "pg_wal", cowSettings: cowSettings12, standbySettings: standbySettings12}},
	{Range: pgver.Since(pgver.V15), Rules: rules{backupAPI: true, startSQL: startSQL15, stopSQL: stopSQL15,
		slotSQL: slotSQL10, tempSlot: true, walDir: "pg_wal", cowSettings: cowSettings12, standbySettings: standbySettings12}},
}

// rulesFor returns the rules of a supported major.
func rulesFor(m pgver.Major) (rules, error) {
	r, ok := versionRules.For(m)
	if !ok || !m.Supported() {
		return rules{}, &versionError{major: m}
	}
	return r, nil
}

type versionError struct{ major pgver.Major }

func (e *versionError) Error() string {
	return "snapclone: PostgreSQL " + e.major.String() + " is not supported (supported: 9.4 to 18)"
}

func (e *versionError) Unwrap() error { return ErrInvalidConfig }
