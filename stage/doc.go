// Package stage composes pgstage's packages into the whole job: a
// [Linker] turns a pg_basebackup -F t backup into a staging standby that
// streams from the source, watches it for replication faults, and takes
// snapshots of consistent points, refusing them while replication is
// faulted: a snapshot is only taken of a staging that follows the source.
//
// # Use
//
//	l, err := stage.New(stage.Config{
//		BackupPath: "/backups/sales",
//		Source:     stage.Source{Host: "db1", User: "replicator", Password: stage.Password(pw)},
//		Staging:    stage.Staging{DataDir: "/mnt/staging/sales", Port: 5433, BinDir: "/usr/lib/postgresql/15/bin"},
//		Restore:    stage.RestoreConfig{Verify: true}, // passed to backupsel
//		Watch:      stage.WatchConfig{PollOnly: true}, // passed to walwatch (logs on NFS)
//	})
//	if err != nil { ... }
//	defer l.Close()
//	if err := l.Link(ctx); err != nil { ... } // preflight, restore, configure, start, stream, watch, first sync
//	snap, err := l.Snapshot(ctx)              // errors.Is(err, stage.ErrFaulted) while faulted
//
// # Jobs
//
//   - [Linker.Link]: preflight; select the backup ([backupsel.Select]); restore it
//     into Staging.DataDir; make it a standby of the source ([replica]); apply the
//     config settings ([pgconf]: set, or comment out); start it; wait until it
//     streams; start the log watcher ([walwatch]); then the first sync. Each
//     step goes to Config.Progress and Config.Logger. A failed step returns a
//     *[StepError] naming it, with the server log tail, and leaves the staging
//     stopped and its data directory empty, so Link can run again. A process
//     killed in the middle of Link leaves its step in the state file; Link in
//     the next process stops the server the dead one started and empties
//     what it restored, then links. A backup that
//     Restore finds not whole ([backupsel.NotWholeError]: Select does not
//     decode the base.tar of a zip or a compressed one, see
//     [backupsel.Backup.Deferred]) is passed
//     over as Select would have passed it over, and the next backup by
//     precedence is checked and restored.
//   - [Linker.Sync] (pre-sync hooks, a snapshot, post-sync hooks) and
//     [Linker.Snapshot]: record a consistent point (time, timeline, receive and
//     replay positions, the backup) and call Config.Snapshotter with it. While
//     replication is faulted they fail with an error wrapping the open *[Fault]
//     (errors.Is(err, ErrFaulted); [NeedsResync] tells the faults only
//     Resync mends).
//   - [Linker.Resync]: stop, empty the data directory, select again (a newer
//     PostgreSQL_T folder wins), restore and link; same port and settings,
//     snapshot and fault history kept.
//   - [Linker.Enable] and [Linker.Disable]: start or stop the staging server
//     and the watcher. A disabled staging raises no faults.
//   - [Linker.Status], [Linker.Faults], [Linker.Snapshots] and
//     [Linker.Events] may be called at any time.
//
// # Preflight
//
// Before anything is touched, [Linker.Preflight] (run by Link and Resync)
// checks, and reports every problem at once in a *[PreflightError], each
// saying what is wrong and what to do: the staging binaries are present and
// of the backup's major version; the staging port is free; the socket
// directory is writable by the OS user; the data directory is absent or
// empty; the backup path is one readable directory holding a whole backup;
// the source answers a replication connection as the replication role
// (IDENTIFY_SYSTEM), its system identifier is the backup's, its wal_level is
// at least replica, and a WAL sender is free (the connection itself took
// one); the config settings are valid for that version (checked by the
// staging postgres binary itself, through pgconf.Checker), and none would
// hide from the watcher what it reads (log_min_messages above error,
// wal_receiver_timeout 0); the source password can be written to a passfile
// (no line break). The data directory's parent must exist: New refuses one
// that does not, naming it.
//
// # Faults
//
// The watcher follows the staging server's log and raises one [Fault] per
// outage, with a reason; [Advice] says what to do about each. Faults whose
// reason cannot heal by itself (WAL removed on the source, timeline
// divergence, a different source, a promoted staging) have NeedsResync set:
// only Resync mends them.
//
// Beside the log, a replay monitor asks the staging server every few
// seconds (see [ReplayConfig]) and raises what no log line says: WAL
// received but not applied ([ReasonReplayStalled]) and no walreceiver
// streaming ([ReasonReceiverDown]), one fault per outage with the log's. A
// silent network partition is noticed through the timeouts [Liveness] sets
// (about 10 s by default). The warm standbys of 9.4 and 9.5 take no
// queries: there the log watcher alone raises faults.
//
// # Take mode and auto-heal
//
// With [Config.BackupMode] [BackupTake], Link and Resync take a fresh
// backup of the source into BackupPath ([StepTakeBackup], with
// [github.com/pgstage/pgstage/backupsel/basebackup], as Source's role) right
// after preflight, which then wants a writable backup path rather than a
// backup, and go on as with an external backup: the same selection and
// checks. A backup that cannot be taken leaves the staging as it was.
//
// With [HealConfig.Auto], a running staging whose fault needs a resync
// (WAL removed, a diverged timeline, promoted; not a wrong primary) is
// resynced by the Linker itself: in take mode from a backup it takes, else
// from a newer backup as soon as one appears in BackupPath. Attempts are
// bounded and spaced by a doubling back-off; each step is an event on
// Events (KindHeal*); a heal runs as a job, one at a time, never on a
// disabled staging; Disable interrupts it and Close stops it. A staging
// that cannot be healed stays faulted, with the last error in
// [Status].Heal.
//
// # Files
//
// Beside the data directory, in Staging.StateDir (default DataDir +
// ".pgstage"), the Linker keeps: "lock", locked for the Linker's life so a
// second Linker on the same staging gets ErrLocked (the kernel drops the lock
// if the process dies); "state.json", mode 0600, which lets [Open] carry on in
// another process and never holds the password; "pgpass", the standby's 0600
// password file (replica); and log/, the server's logs: staging-*.log, which
// the logging collector writes and rotates by size (Watch.Logs) and the
// watcher follows, at most Watch.Logs.Keep of them plus the current one once
// read (older ones are pruned), and staging.log, pg_ctl's -l file, which gets
// only what the server writes before the collector starts (emptied past
// 1 MiB). Tablespaces are restored into DataDir + ".tablespaces".
// A second lock, "." + the data directory's name + ".pgstage-lock" beside it,
// keeps two state directories from sharing one data directory, and records
// which state directory owns it.
//
// The password is kept in memory and in the passfile only: never in the
// state file, a log line, an error, or a process argument.
//
// # Versions
//
// Snapshots and Status ask the staging server with the SQL of its version
// (one table of version ranges: pg_last_wal_* from 10, pg_last_xlog_* on
// 9.6); the warm standbys of 9.4 and 9.5 take no queries, so their position
// comes from pg_control. The whole job is tested against real servers of
// 10 to 18 in every backup layout (the root integration_test.go); the 9.x
// paths are not, since no 9.x binaries run on the machines pgstage is
// tested on.
//
// # Snapshots and clones
//
// [Linker.Snapshot] (and Sync, and the schedule) takes a snapshot that
// holds the data, after the one fault check that refuses it while
// replication is faulted, into Snapshots.Dir/<id> (default DataDir +
// ".snapshots"; on the data directory's filesystem for btrfs and reflink,
// which preflight checks). [SnapshotConfig].Method picks how: btrfs (the
// data directory is a subvolume, which Link makes when its parent is on
// btrfs: a read-only subvolume snapshot, every file at one instant, no
// SQL), reflink (FICLONE on XFS, btrfs, ZFS 2.2+, bcachefs, made
// consistent with the non-exclusive base backup API on the standby) or
// copy (the same protocol with plain copies: slow, as much disk as the
// data); empty picks from the filesystem, "none" records positions only.
// Tablespaces are included. Link's and Resync's first sync records
// positions only. On 9.4 and 9.5, which take no base backup on a standby,
// a reflink or copy snapshot is refused with [ErrNoBackupAPI]: use btrfs,
// or Method "none".
//
// [Linker.Clone] makes a writable clone of a snapshot (a btrfs snapshot of
// it, or a reflink or plain copy), on its own port and socket, without the
// standby settings, opened read-write at the snapshot's consistent point
// and started as Staging.OSUser, in Snapshots.CloneDir/<id>; [Clone] says
// how to connect. Clones are recorded in the state file until
// [Linker.DestroyClone]; a snapshot a clone uses is never deleted
// ([ErrInUse]). A failed clone leaves nothing; clones never touch the
// staging or the snapshot.
//
// The running Linker applies the policies of [SnapshotConfig]: a schedule
// (Every, or a 5-field Cron) while linked and enabled, and retention
// (KeepLast, KeepWithin) after each snapshot. A scheduled snapshot that is
// not taken is a [KindSnapshotSkipped] event on Events, and logged.
//
// # Hooks
//
// Hooks run at pre/post link (also for resync), pre/post sync and pre/post
// snapshot: shell commands (/bin/sh -c, with PGSTAGE_* and PGHOST/PGPORT in
// their environment) or Go functions given a [HookEnv]. A failing pre-hook
// stops its job, and the error carries the hook's output.
package stage
