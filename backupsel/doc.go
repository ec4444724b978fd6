// Package backupsel picks the backup to restore from a backup path, proves it
// is whole, and restores it into a data directory, fast and safely.
//
// A backup is what `pg_basebackup -F t` writes: base.tar (or base.tar.gz,
// .tar.lz4, .tar.zst), pg_wal.tar (absent with -X fetch, where the WAL is
// inside base.tar), one <oid>.tar per tablespace, and backup_manifest (13+).
// Compression is recognised by the first bytes of each file, not its name.
//
// # Selection
//
// [Select] looks in one backup path, with the precedence of the procedure
// pgstage re-implements, highest first:
//
//  1. folders PostgreSQL_T<YYYYMMDDhhmmss> (the latest timestamp wins);
//  2. backup files directly in the backup path;
//  3. zips PostgreSQL_T<YYYYMMDD>.zip with the backup files at their root (the
//     latest date wins).
//
// A candidate that is not whole is never chosen: a tar cut short, a zip
// without its central directory, files still changing within
// [Options.Settle], no base.tar, no WAL for the backup's start (in pg_wal.tar,
// in base.tar, in [Options.WALPath], or accepted with
// [Options.StreamWhenNoWAL]), or a backup_manifest that disagrees with the
// archives (names and sizes; checksums with [Options.Verify]). The next
// candidate by precedence is taken, and [Backup.Passed] lists every candidate
// not chosen with the reason. When nothing is usable the error wraps
// [ErrNoBackup] and says what each candidate lacked.
//
// Select reads tar headers, not contents, of uncompressed archives (a seek per
// file). It learns the backup's major version (PG_VERSION), system
// identifier (global/pg_control), backup_label and tablespaces, so callers can
// check them against the staging binaries and the source.
//
// A zip, and a compressed base.tar (.gz, .lz4, .zst), are different: they
// prove themselves whole as they are read (a zip's central directory, which
// zip writes last, and each entry's CRC-32; a compressed stream's trailer
// and checksums, and the tar's end-of-archive blocks). So unless
// [Options.Verify] asks for checksums, Select does not decode base.tar (a
// second pass over it would be a large part of the restore's cost): it
// reads backup_label and tablespace_map, which pg_basebackup sends first,
// checks that each tablespace archive opens (magic and first header), and
// takes the major version and system identifier from the first page header
// of the WAL segment the backup starts in, in pg_wal.tar. The result says
// [Backup.Deferred], and [Backup.Restore] reads every archive to its end and
// checks PG_VERSION, global/pg_control and the backup_manifest names and
// sizes as it writes, failing with a [*NotWholeError] (what it wrote
// removed) when a stream is cut short or damaged or they disagree. Where the
// small parts do not tell enough (WAL inside base.tar, tablespaces without
// tablespace_map, a WAL page magic of a version not known here) Select
// reads every archive through as before.
//
// Exactly one backup path is supported: a string holding os.PathListSeparator
// that does not exist as a path is refused with [ErrMultiplePaths].
//
// # Restore
//
// [Backup.Restore] streams each archive straight into the target: no
// temporary files, compressed archives decoded on the fly in a goroutine of
// their own, zip entries inflated in place. It uses both cores: the reading
// goroutine makes the directories and hands each file to one of a few
// writer goroutines (RestoreOptions.Writers, 4 by default), which create
// and fill it; contents travel in a fixed
// pool of 1 MiB chunks (8 MiB in flight whatever the backup size), and files
// of an uncompressed archive are copied by the kernel (copy_file_range)
// without passing through the process.
// Entries that would escape the target, and device or FIFO entries, are
// refused with an [*ArchiveError] naming the archive and entry that matches
// [ErrUnsafeEntry]. A regular entry whose name an earlier entry took
// replaces that file (unlinking it first, as GNU tar does), never writes
// through a hard link. global/pg_control is written last, and on any error
// the data directory is left empty, so a failed restore can never start.
// See [RestoreOptions] for tablespace mapping, ownership, progress and fsync.
//
// # Errors
//
// Permission problems are [*PermissionError] values naming the file and the
// permission missing (read+execute on directories, read on files); broken
// archives and entries are [*ArchiveError]; manifest differences are [*ManifestError];
// a deferred backup found not whole while restoring is a [*NotWholeError].
package backupsel
