package backupsel

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// RestoreOptions configure Restore. The zero value restores into an empty or
// absent data directory, tablespaces into <dataDir>.tablespaces/<oid>, files
// owned by the current user, without fsync.
type RestoreOptions struct {
	// Overwrite allows a non-empty data directory and non-empty tablespace
	// directories under TablespaceDir: their contents are removed first.
	// A TablespaceMapping destination is never cleared: it must be empty.
	Overwrite bool
	// TablespaceMapping moves tablespaces, like pg_basebackup
	// --tablespace-mapping: source location -> new location (absolute).
	TablespaceMapping map[string]string
	// TablespaceDir holds unmapped tablespaces as TablespaceDir/<oid>;
	// empty means <dataDir>.tablespaces. Tablespaces never go to the
	// location the backup names (tablespace_map or the pg_tblspc link):
	// that is where the source keeps its own, possibly on this host, and a
	// backup could name any directory. Destinations inside or above the
	// data directory are refused.
	TablespaceDir string
	// UID and GID own every restored file when either is non-zero (the
	// process must be root); PostgreSQL refuses a data directory it does not
	// own.
	UID, GID int
	// Progress, if set, is called as content is written with the bytes done
	// and the total (Backup.TotalBytes), and once at the end with done == total.
	Progress func(done, total int64)
	// Sync makes every restored file and directory durable before Restore
	// returns: each file over 1 MiB starts its write-out as soon as it is
	// written (sync_file_range), one syncfs per target filesystem writes
	// the small files out together and waits for all of it, then
	// pg_control is written and fsynced last. It is off by default
	// because PostgreSQL fsyncs the whole data directory itself at its first
	// start after a restore: a backup's pg_control never says the server
	// shut down cleanly, so StartupXLOG calls SyncDataDirectory (fd.c)
	// before recovery, and a sync here would write everything to disk twice.
	// Turn it on when something other than PostgreSQL relies on the files
	// being durable (a storage snapshot taken right after Restore), or when
	// the restored configuration sets fsync = off, which skips that sync.
	// syncfs also flushes what other programs wrote to the same filesystem.
	Sync bool
	// BufferSize is the read and read-ahead buffer size (four read-ahead
	// buffers per compressed archive); 0 means the Select buffer (256 KiB).
	BufferSize int
	// Writers is how many goroutines create and fill files while one reads
	// the archive (and, for a compressed one, another decodes it); 0 or
	// less means 4, more than 64 means 64. Memory does not grow with it:
	// contents travel in one fixed pool of buffers. Each file costs an open, writes and a close that mostly wait in
	// the kernel (journal, directory lock, page-cache copies), so more
	// writers than cores still help; a very slow filesystem (many files
	// being freed on ext4) can favour fewer.
	Writers int
	// Logger receives progress at debug level; nil discards.
	Logger *slog.Logger
}

// RestoreResult says what Restore wrote.
type RestoreResult struct {
	DataDir     string
	WALDir      string // pg_wal, or pg_xlog for 9.x
	Files       int    // regular files written
	Bytes       int64  // file content written
	WALFiles    int    // segments copied from the WAL path
	Tablespaces []Tablespace
	Skipped     []string // entries deliberately not restored (postmaster.pid, postmaster.opts)
	// Rewritten lists files whose restored content differs from the backup
	// on purpose: tablespace_map when tablespaces moved. Pass it to
	// Manifest.VerifyDir (or pg_verifybackup -i).
	Rewritten []string
}

// Restore writes the backup into dataDir: base.tar into dataDir, pg_wal.tar
// into its pg_wal (pg_xlog before 10), tablespace archives to
// <dataDir>.tablespaces/<oid> (see RestoreOptions.TablespaceDir and
// TablespaceMapping) with the pg_tblspc links
// and tablespace_map pointing there, WAL from the WAL path into pg_wal, and
// backup_manifest beside base.tar's files. Archives are streamed: compressed
// ones are decoded on the fly and zip entries read in place.
//
// Entries that would leave the target (absolute paths, "..", hard links to
// files not restored from the archive), symbolic links other than
// pg_tblspc/<oid> in base.tar, and device or FIFO entries are refused with
// an [*UnsafeEntryError].
// global/pg_control is written last, so a restore cut short cannot start;
// on any error the data directory (and new tablespace directories) are left
// empty. postmaster.pid and postmaster.opts are skipped.
//
// Directories are created 0700 and files 0600, or 0750 and 0640 when the
// backup uses group access (Backup.GroupAccess).
//
// For a deferred backup (Backup.Deferred), Restore also makes the checks
// Select left to it: base.tar and the tablespace archives whole (read to
// their end, cut short or damaged nowhere), PG_VERSION and
// global/pg_control present and agreeing
// with the major version and system identifier Select read from the WAL,
// and every file's name and size agreeing with backup_manifest. A failure
// is a [*NotWholeError], and what Restore wrote is removed as on any
// other error.
func (b *Backup) Restore(ctx context.Context, dataDir string, opts RestoreOptions) (*RestoreResult, error) {
	if dataDir == "" {
		return nil, errors.New("backupsel: empty data directory path")
	}
	root, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("backupsel: %w", err)
	}
	bufSize := cmp.Or(max(opts.BufferSize, 0), b.bufSize, defaultBufferSize)
	j := &restoreJob{b: b, opts: opts, x: newExtractor(b, opts, bufSize),
		res: &RestoreResult{DataDir: root, WALDir: filepath.Join(root, rulesFor(b.Major).walDir)}}
	j.x.startWriters(ctx, opts.Writers)
	for _, step := range []func(context.Context) error{
		j.prepareDataDir,
		j.prepareTablespaces,
		j.extractArchives,
		j.checkContents,
		j.linkTablespaces,
		j.rewriteTablespaceMap,
		j.copyWALPath,
		j.writeManifest,
		j.sync,
		j.writeControlFile, // last: see writeControlFile
	} {
		err := ctx.Err()
		if err == nil {
			err = step(ctx)
		}
		if err != nil {
			if werr := j.x.finishWriters(); werr != nil && ctx.Err() == nil && !errors.Is(err, werr) {
				err = errors.Join(err, fmt.Errorf("backupsel: %w", werr))
			}
			j.x.tree.undo()
			return nil, err
		}
	}
	j.x.prog.final()
	j.res.Files, j.res.Bytes, j.res.Skipped = j.x.files, j.x.prog.done, j.x.skipped
	return j.res, nil
}

// restoreJob is one Restore: its steps fill res.
type restoreJob struct {
	b     *Backup
	opts  RestoreOptions
	x     *extractor
	res   *RestoreResult
	moved bool // a tablespace is restored elsewhere than its source location
}

func (j *restoreJob) prepareDataDir(context.Context) error {
	return j.x.tree.prepareDir(j.res.DataDir, j.opts.Overwrite, "data directory")
}

// extractArchives streams every archive into its target: base.tar, then the
// tablespaces, then pg_wal.tar (Select ordered them so).
func (j *restoreJob) extractArchives(ctx context.Context) error {
	for i := range j.b.Archives {
		a := &j.b.Archives[i]
		target := j.res.DataDir
		switch a.Role {
		case RoleWAL:
			target = j.res.WALDir
		case RoleTablespace:
			target = j.x.tsDest[a.OID]
		}
		if err := j.x.tree.mkdirAll(target); err != nil {
			return err
		}
		if err := j.x.restoreArchive(ctx, j.b, a, target); err != nil {
			if j.b.Deferred && a.Role != RoleWAL && ctx.Err() == nil && contentError(err) {
				err = &NotWholeError{Backup: j.b.Name, Err: err}
			}
			return err
		}
	}
	if err := j.x.finishWriters(); err != nil {
		return fmt.Errorf("backupsel: %w", err)
	}
	return nil
}

// checkContents checks what only the archives' contents show: that base.tar
// held global/pg_control, and for a deferred backup the checks Select left.
func (j *restoreJob) checkContents(context.Context) error {
	if j.x.kept.pgControl == nil {
		err := error(&ArchiveError{Archive: j.b.archiveName(&j.b.Archives[0]), Err: errors.New("no global/pg_control")})
		if j.b.Deferred {
			err = &NotWholeError{Backup: j.b.Name, Err: err}
		}
		return err
	}
	if j.b.Deferred {
		if err := j.b.checkDeferred(&j.x.kept); err != nil {
			return &NotWholeError{Backup: j.b.Name, Err: err}
		}
	}
	return nil
}

// copyWALPath copies the segments of Options.WALPath into pg_wal, except
// those the backup brought itself.
func (j *restoreJob) copyWALPath(ctx context.Context) error {
	if j.b.WALPath == "" {
		return nil
	}
	if err := j.x.tree.mkdirAll(j.res.WALDir); err != nil {
		return err
	}
	for _, src := range j.b.walPathFiles {
		dst := filepath.Join(j.res.WALDir, filepath.Base(src))
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		if err := j.x.copyFile(ctx, src, dst); err != nil {
			return err
		}
		j.res.WALFiles++
	}
	return nil
}

// copyFile copies the file src, outside the backup's archives, to dst.
func (x *extractor) copyFile(ctx context.Context, src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return &PermissionError{Path: src, Need: "read", Err: err}
		}
		return fmt.Errorf("backupsel: %w", err)
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return fmt.Errorf("backupsel: %w", err)
	}
	err = x.fm.writeFile(dst, func(f rawFile) error {
		return copyN(f, in, info.Size(), x.buf, func(n int64) error {
			x.prog.add(n)
			return ctx.Err()
		})
	})
	if err != nil {
		return fmt.Errorf("backupsel: copying %s: %w", src, err)
	}
	return x.written(dst, nil)
}

// writeManifest puts backup_manifest beside base.tar's files, where
// pg_verifybackup looks for it.
func (j *restoreJob) writeManifest(context.Context) error {
	if j.b.manifestRaw == nil {
		return nil
	}
	return j.x.writeSmall(filepath.Join(j.res.DataDir, "backup_manifest"), j.b.manifestRaw)
}

// sync makes everything written so far durable, before pg_control.
func (j *restoreJob) sync(context.Context) error {
	if !j.opts.Sync {
		return nil
	}
	if err := j.x.tree.syncAll(); err != nil {
		return fmt.Errorf("backupsel: sync: %w", err)
	}
	return nil
}

// writeControlFile writes global/pg_control, last: while it is absent,
// PostgreSQL refuses to start on a half-restored directory. With Sync it is
// made durable after everything else, so a crash never leaves a durable
// pg_control in a directory whose other files are not.
func (j *restoreJob) writeControlFile(context.Context) error {
	global := filepath.Join(j.res.DataDir, "global")
	if err := j.x.tree.mkdirAll(global); err != nil {
		return err
	}
	p := filepath.Join(global, "pg_control")
	if err := j.x.writeSmall(p, j.x.kept.pgControl); err != nil {
		return err
	}
	if j.opts.Sync {
		if err := errors.Join(syncPath(p), syncPath(global)); err != nil {
			return fmt.Errorf("backupsel: sync: %w", err)
		}
	}
	return nil
}

// writeSmall writes a file Restore makes itself (not from an archive).
func (x *extractor) writeSmall(p string, data []byte) error {
	if err := x.fm.writeBytes(p, data); err != nil {
		return fmt.Errorf("backupsel: %w", err)
	}
	return x.written(p, nil)
}
