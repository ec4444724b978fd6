// Package snapclone takes snapshots of a staging's data directory that
// hold the data, and makes writable clones of them that start in seconds
// with almost no extra disk, where the filesystem allows.
//
// # Methods
//
// [Detect] reads the data directory's filesystem (statfs) and probes, with
// one tiny file, whether FICLONE works from it into the destination.
// [Config.Method] overrides the choice; a method the filesystem cannot do
// fails with [ErrMethod], naming the filesystem type and what to do.
//
//   - btrfs: the data directory is a btrfs subvolume ([CreateDataDir] makes
//     it one when its parent is on btrfs: a plain directory cannot become
//     one in place). A snapshot is a read-only subvolume snapshot, every
//     file at one instant, which PostgreSQL starts from as after a crash;
//     no SQL runs, so it works for every major, 9.4 included. A clone is a
//     writable snapshot of the snapshot. Subvolumes are made, snapshotted
//     and deleted with the btrfs command of btrfs-progs (see btrfs.go for
//     why not the ioctls).
//   - reflink: every file cloned with FICLONE (XFS made with reflink=1,
//     btrfs, ZFS 2.2+, bcachefs), blocks shared until written.
//   - copy: every file copied (copy_file_range); works on any filesystem,
//     and takes as long and as much disk as the data.
//
// # Consistency of reflink and copy snapshots
//
// A file-by-file copy of a running server is consistent only under the
// non-exclusive base backup API, which runs on a standby from 9.6: on one
// session held open, a physical replication slot reserving WAL (temporary
// from 10) so that the standby's restartpoints cannot recycle the segments
// the snapshot needs, then pg_start_backup(label, true, false) (9.6-14) or
// pg_backup_start(label, true) (15+), the copy (global/pg_control last,
// as pg_basebackup does: a backup from a standby ends at the
// minRecoveryPoint it records), pg_stop_backup(false[, false]) or
// pg_backup_stop(false) (never waiting for archiving), then the WAL from
// the start (redo) point on, copied after the stop and checked segment by
// segment ([ErrWALMissing] if one is gone), and the returned backup_label
// and tablespace_map written into the snapshot. The snapshot then starts
// exactly as a base backup does. The version differences live in one
// table (versions.go).
//
// # What a base backup snapshot costs
//
// Its start is a restartpoint on the staging (pg_backup_start's fast
// checkpoint, which a standby turns into a restartpoint when it has
// replayed a checkpoint record since its last one, else skips): it writes
// the buffers replay dirtied since the last restartpoint, at most
// checkpoint_timeout's worth (5 minutes by default) and bounded by
// shared_buffers, and fsyncs the files written since (none with fsync =
// off). stage runs a CHECKPOINT before each snapshot, so the backup's own
// finds little; measured right after a 1.2 GB restore, 0.01 s.
//
// The larger cost is data still dirty in the page cache. A reflink must
// write a file's dirty pages back before it can share its extents (XFS
// does it in FICLONE), and a copy competes with that writeback. With
// fsync = on, PostgreSQL syncs the whole data directory at its first
// start after a restore (and backupsel can sync the restore), so a
// snapshot finds little dirty; with fsync = off nothing does until the
// kernel writes back (dirty_expire_centisecs, 30 s by default), and a
// snapshot taken at once pays for the restore. FICLONE alone did it file
// by file in 5-8 s on XFS for 1.2 GB; a reflink snapshot therefore runs
// one syncfs of the staging's filesystem before the backup starts, which
// writes it back in one pass (about 1 s there) and costs nothing when
// nothing is dirty (figures in bench/RESULTS.md). Later snapshots share
// blocks already on disk and take tenths of a second; the stop waits for
// nothing (no archiving).
//
// 9.4 and 9.5 have only exclusive backups, which a standby refuses. For
// them a reflink or copy snapshot of a running staging is refused with
// [ErrNoBackupAPI]: this package does not own the staging's lifecycle, so
// it does not stop it behind the caller's back. The caller can stop the
// staging, snapshot the stopped data directory (consistent as it is) and
// start it again; or put the staging on btrfs.
//
// # Tablespaces
//
// Each tablespace is copied (reflink where possible) into tblspc/<oid> of
// the snapshot, and the pg_tblspc links and tablespace_map point there; a
// clone re-points them into its own directory. A btrfs staging with
// tablespaces (or an external pg_wal) is snapshotted under the backup API
// too, since a subvolume snapshot does not hold them at the same instant.
//
// # Clones
//
// [Staging.Clone] copies a snapshot (btrfs snapshot of the snapshot,
// reflink copy, plain copy: never across filesystems for the first two,
// [ErrCrossFilesystem] naming both), removes the staging server's lock,
// standby and recovery files and slots, edits the configuration with pgconf
// (its own port and socket directory, archive_mode off, no synchronous
// standby, the caller's settings; the standby settings commented out), and
// opens it at the snapshot's consistent point by crash recovery, with no
// recovery.signal or recovery.conf: from a backup_label the server
// replays from its checkpoint and will not open before the backup's end
// ("WAL ends before end of online backup"), as any standalone base backup
// does; from a btrfs or stopped snapshot, from pg_control's checkpoint to
// the end of pg_wal. Archive recovery is not used because it ends on a
// new timeline whose first WAL segment is a 16 MiB copy of the last one:
// on a reflink clone, 16 MiB of new blocks (1.4% of a 1.2 GB staging).
// A btrfs or reflink clone gets wal_init_zero = off (12+), so that a new
// WAL segment is not 16 MiB of zeros written out; before 12 new segments
// are always zero-filled, which a clone pays (16 MiB) once its WAL reaches
// the end of the snapshot's last segment, or at its first checkpoint when
// that segment is three quarters full. The server is
// started with pg_ctl as the unprivileged OS user, with PATH and LANG as
// its whole environment, and Clone returns once it accepts writes. A
// failure stops and removes what the clone made; the snapshot and the
// staging are never written. A full disk is [ErrNoSpace], the partial copy
// removed.
//
// # Size
//
// Snapshot.ExtraBytes and Clone.ExtraBytes are the disk each added when it
// was made (SizeMeasure says how). On btrfs it is what `btrfs filesystem
// du` reports as exclusive (extents no other file shares: what deleting it
// would free). A copy counts the blocks allocated to its files. A reflink
// copy elsewhere (XFS) counts the fall in the filesystem's free space
// (statfs) while it was made, which includes other writes to that
// filesystem meanwhile (the staging's own WAL among them).
//
// ZFS and LVM thin snapshots are not implemented: they cannot be tested
// here (no kernel modules).
package snapclone
