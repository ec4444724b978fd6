// Package basebackup takes a base backup of a PostgreSQL server (9.4 to 18)
// over the replication protocol and writes exactly the files
// `pg_basebackup -F t -X stream` writes, so that
// [github.com/pgstage/pgstage/backupsel] selects and restores it like any
// other backup. It needs no PostgreSQL client tools, which matters where the
// installed pg_basebackup is older than the source (pg_basebackup refuses
// newer servers), and it is usable on its own: [Take] is the whole API.
//
// # What it writes
//
// In the backup path, a folder PostgreSQL_T<YYYYMMDDhhmmss> ([Config.Time],
// in UTC, default the start of the backup) holding:
//
//   - base.tar: the data directory, with backup_label and tablespace_map
//     (9.5+) inside, as the source sends it; before 15 the source leaves out
//     the two zero blocks that end a tar, and they are added, as
//     pg_basebackup does;
//   - <oid>.tar: one per tablespace;
//   - pg_wal.tar: the WAL from the start of the segment holding the backup's
//     start to its end position, one member per segment of the full segment
//     size (the last one padded with zeros), an empty
//     archive_status/<segment>.done after each complete segment, and, on a
//     timeline after the first, the timeline's history file (and its .done)
//     first: the layout of pg_basebackup's tar WAL method;
//   - backup_manifest (13+), as the source sends it.
//
// With [Config.Compression] the archives are compressed client-side as
// pg_basebackup -Z client-<method> names them: .tar.gz, .tar.lz4, .tar.zst.
// Like pg_basebackup 15, only gzip compresses pg_wal.tar; with lz4 and zstd
// it stays plain. backup_manifest is never compressed.
//
// The folder is written under a dot-prefixed name
// (.PostgreSQL_T<...>.partial-<pid>), which backupsel's selection ignores,
// and renamed to its final name only when every file is whole and, unless
// [Config.NoSync], synced; the rename never replaces anything
// (renameat2 RENAME_NOREPLACE). On any error, cancellation of the context
// included, the partial folder is removed: a later selection can never find
// half a backup.
//
// # How
//
// As pg_basebackup -X stream: BASE_BACKUP on one replication connection, and
// the WAL on a second one (START_REPLICATION from the start of the segment
// holding the backup's start position, on the timeline the source reports
// with it, until the end position BASE_BACKUP reports at its end). On 10+
// the WAL stream first creates a temporary physical replication slot, so
// that the source keeps the WAL until it is streamed; the slot goes away with
// the connection. A source therefore needs two free WAL senders
// (max_wal_senders) and, on 10+, a free replication slot.
//
// The command differs by version: from 15 the option list syntax
// (BASE_BACKUP (LABEL '...', CHECKPOINT 'fast', WAIT false, MANIFEST 'yes',
// ...)) and one COPY stream whose messages announce each archive and the
// manifest; before 15 bare keywords (BASE_BACKUP LABEL '...' FAST NOWAIT
// ...) and one COPY stream per archive, then one for the manifest (13-14).
// The per-version rules are one table keyed by
// [github.com/pgstage/pgstage/internal/pgver].
//
// The checkpoint at the start is spread by default (it can take up to the
// source's checkpoint_timeout before data flows); [Config.FastCheckpoint]
// asks for an immediate one. [Config.MaxRate] is the server's MAX_RATE:
// the source throttles the data files; the WAL stream is not throttled.
// [Config.Progress] receives the bytes received and the source's estimate
// of the total, as [github.com/pgstage/pgstage/backupsel.RestoreOptions]
// Progress does for a restore.
//
// Memory stays bounded whatever the backup's size: each message is written
// out as it arrives (a few hundred KiB of buffers, plus the compressor's
// window).
//
// # A standby as the source
//
// Allowed, as pg_basebackup allows it. Then the backup_label says BACKUP
// FROM: standby; the backup starts at the standby's last restartpoint (a fast
// checkpoint cannot make the primary checkpoint sooner), and ends at the
// point the standby had replayed when the copy finished. The WAL comes from
// the standby, which can send only what it has received: a standby that
// lags, or whose primary is gone, still gives a whole backup, of its own
// replayed state. The backup fails if the standby is promoted while it runs
// (the WAL stream ends its timeline before the end position); take a new
// one then. The primary must have full_page_writes on.
//
// # Errors
//
// Errors name the source (host:port), the role or the path, and say what to
// do. Callers branch on four sentinels: [ErrInvalidConfig] (nothing was
// done), [ErrRefused] (wrong password, no replication line in pg_hba.conf, a
// role without REPLICATION, wal_level minimal: fix the configuration),
// [ErrBusy] (no WAL sender, connection or replication slot free: retry
// later) and [ErrBackupPath] (missing, not writable, full, or changed by
// another writer). Other failures (the source going away, a broken stream)
// wrap the driver's error.
//
// # Passwords
//
// [Config.Password] goes into the connection's parsed settings only, never
// into a connection string, a process argument, a file or a log line, and
// every error is passed through a redactor that masks it should a driver or
// server message quote it.
package basebackup
