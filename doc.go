// Package pgstage turns a base backup of a production PostgreSQL into a
// staging standby that streams from it, and watches the streaming so that a
// fault is raised the moment it stops.
//
// This root package holds no code: it tells the whole flow and points to the
// packages that do the work. Each of them is useful on its own.
//
// # The flow
//
// A DBA takes a base backup of the source with
//
//	pg_basebackup -D <dir> -F t -X stream    # 10 and later (-x on 9.4-9.6)
//
// and drops it into a backup path, in one of three layouts, highest
// precedence first:
//
//  1. folders PostgreSQL_T<YYYYMMDDhhmmss> inside the backup path: the latest
//     timestamp wins;
//  2. the backup files directly in the backup path;
//  3. a zip PostgreSQL_T<YYYYMMDD>.zip in the backup path, the backup files at
//     its root.
//
// Then:
//
//   - [github.com/pgstage/pgstage/backupsel] picks the backup by that
//     precedence, proves it is whole (tar and zip structure, backup_manifest),
//     and restores it into the staging data directory, streaming and
//     decompressing on the fly, refusing any entry that would land outside it.
//   - [github.com/pgstage/pgstage/pgconf] edits postgresql.conf without losing
//     a byte the DBA wrote: the user's "config settings" are set, or commented
//     out so the server falls back to its default.
//   - [github.com/pgstage/pgstage/replica] makes the restored directory a
//     standby of the source for its major version (recovery.conf before 12,
//     standby.signal from 12; a warm standby on 9.4 and 9.5), keeps the
//     replication password in a 0600 passfile, starts it and proves it streams.
//   - [github.com/pgstage/pgstage/walwatch] follows the staging server's logs
//     and turns them into events: one Fault per outage, with a reason, and
//     Recovered when streaming resumes.
//   - [github.com/pgstage/pgstage/stage] composes them: stage.Linker links,
//     syncs, resyncs from the newest backup, snapshots (refused while
//     replication is faulted), enables, disables and reports status.
//
// # What a staging is for
//
// A snapshot holds the staging's data: a btrfs subvolume snapshot, or a
// reflink (or plain) copy made consistent with the base backup API on the
// standby. Linker.Clone makes a writable server from a snapshot, on its own
// port, in well under a second on btrfs or XFS; schedules and retention keep
// snapshots coming and going while the staging streams.
//
// # Taking the backup, healing, running as a service
//
// [github.com/pgstage/pgstage/backupsel/basebackup] takes the base backup
// itself over the replication protocol, as the same files pg_basebackup -F t
// -X stream writes; stage's take mode uses it for Link and Resync, and
// opt-in auto-heal resyncs a staging whose fault needs it.
// [github.com/pgstage/pgstage/stage/monitor] exports Prometheus metrics and
// a health endpoint; examples/link run keeps a staging watched until told
// to stop.
//
// # Testing
//
// Everything that touches PostgreSQL is tested against real servers of every
// major version 10-18 (see internal/pgtest); `make test` installs them.
package pgstage
