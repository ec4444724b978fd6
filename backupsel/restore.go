package backupsel

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	// Sync fsyncs every file and directory before Restore returns. It is off
	// by default because PostgreSQL fsyncs the whole data directory itself at
	// its first start after a restore: a backup's pg_control never says the
	// server shut down cleanly, so StartupXLOG calls SyncDataDirectory (fd.c)
	// before recovery, and a sync here would write everything to disk twice.
	// Turn it on when something other than PostgreSQL relies on the files
	// being durable (a storage snapshot taken right after Restore), or when
	// the restored configuration sets fsync = off, which skips that sync.
	Sync bool
	// BufferSize is the copy buffer; 0 means the Select buffer (1 MiB).
	BufferSize int
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
// Select left to it: PG_VERSION and global/pg_control present and agreeing
// with the major version and system identifier Select read from the WAL,
// and every file's name and size agreeing with backup_manifest. A failure
// is a [*NotWholeError], and the data directory is left as it was.
func (b *Backup) Restore(ctx context.Context, dataDir string, opts RestoreOptions) (res *RestoreResult, err error) {
	if dataDir == "" {
		return nil, errors.New("backupsel: empty data directory path")
	}
	root, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("backupsel: %w", err)
	}
	bufSize := opts.BufferSize
	if bufSize <= 0 {
		bufSize = b.bufSize
	}
	if bufSize <= 0 {
		bufSize = defaultBufferSize
	}
	x := newExtractor(ctx, b.GroupAccess, opts, bufSize)
	x.total = b.TotalBytes
	if b.Deferred {
		x.sizes = map[string]int64{}
	}
	if opts.Logger != nil {
		x.log = opts.Logger
	}
	res = &RestoreResult{DataDir: root, WALDir: filepath.Join(root, forMajor(b.Major).walDir)}
	x.startWriters()
	defer func() {
		if werr := x.finishWriters(); err == nil && werr != nil {
			err = fmt.Errorf("backupsel: %w", werr)
		}
		if err != nil {
			x.cleanup()
			res = nil
		}
	}()
	if err := x.prepareDir(root, opts.Overwrite, "data directory"); err != nil {
		return nil, err
	}
	// Tablespace destinations. The locations come from the backup, which
	// is not trusted to name directories to write into (or to clear).
	x.tsDest = map[uint32]string{}
	moved := false
	tsDir := opts.TablespaceDir
	if tsDir == "" {
		tsDir = root + ".tablespaces"
	}
	if tsDir, err = filepath.Abs(tsDir); err != nil {
		return nil, fmt.Errorf("backupsel: %w", err)
	}
	for _, ts := range b.Tablespaces {
		oid := strconv.FormatUint(uint64(ts.OID), 10)
		dest, mapped := opts.TablespaceMapping[ts.Location]
		if !mapped {
			dest = filepath.Join(tsDir, oid)
		}
		if !filepath.IsAbs(dest) {
			return nil, fmt.Errorf("backupsel: tablespace %s: mapped location %q is not absolute", oid, dest)
		}
		dest = filepath.Clean(dest)
		// Compared as written and as the kernel will walk them: a
		// symbolic link on either path can put one inside the other.
		rd, rr := resolved(dest), resolved(root)
		if within(dest, root) || within(root, dest) || within(rd, rr) || within(rr, rd) {
			return nil, fmt.Errorf("backupsel: tablespace %s (source location %s): destination %s is inside or above the data directory %s; set RestoreOptions.TablespaceMapping or TablespaceDir elsewhere",
				oid, ts.Location, dest, root)
		}
		moved = moved || dest != ts.Location
		// Overwrite clears only directories under the tablespace directory
		// the caller chose (or the default beside the data directory);
		// a mapped destination elsewhere must be empty.
		clear := opts.Overwrite && within(dest, tsDir)
		if err := x.prepareDir(dest, clear, "tablespace "+oid+" directory"); err != nil {
			return nil, err
		}
		x.tsDest[ts.OID] = dest
		res.Tablespaces = append(res.Tablespaces, Tablespace{OID: ts.OID, Location: dest})
	}

	for i := range b.Archives {
		a := &b.Archives[i]
		target := root
		switch a.Role {
		case RoleWAL:
			target = res.WALDir
		case RoleTablespace:
			target = x.tsDest[a.OID]
		}
		if err := x.mkdirAll(target); err != nil {
			return nil, err
		}
		if err := x.restoreArchive(b, a, target); err != nil {
			if b.Deferred && a.Role != RoleWAL && ctx.Err() == nil && contentError(err) {
				err = &NotWholeError{Backup: b.Name, Err: err}
			}
			return nil, err
		}
	}
	if err := x.finishWriters(); err != nil {
		return nil, fmt.Errorf("backupsel: %w", err)
	}
	if x.pgControl == nil {
		err := error(&ArchiveError{Archive: b.archiveName(&b.Archives[0]), Err: errors.New("no global/pg_control")})
		if b.Deferred {
			err = &NotWholeError{Backup: b.Name, Err: err}
		}
		return nil, err
	}
	if b.Deferred {
		if err := b.checkDeferred(x); err != nil {
			return nil, &NotWholeError{Backup: b.Name, Err: err}
		}
	}
	for _, ts := range res.Tablespaces {
		link := filepath.Join(root, "pg_tblspc", strconv.FormatUint(uint64(ts.OID), 10))
		if x.links[link] {
			continue
		}
		if err := x.mkdirAll(filepath.Dir(link)); err != nil {
			return nil, err
		}
		if err := x.symlink(ts.Location, link); err != nil {
			return nil, err
		}
	}
	if b.tablespaceMap && moved {
		data, err := formatTablespaceMap(res.Tablespaces, b.Major)
		if err != nil {
			return nil, fmt.Errorf("backupsel: %w", err)
		}
		if err := x.writeBytes(filepath.Join(root, "tablespace_map"), data, true); err != nil {
			return nil, err
		}
		res.Rewritten = append(res.Rewritten, "tablespace_map")
	}
	if b.WALPath != "" {
		if err := x.mkdirAll(res.WALDir); err != nil {
			return nil, err
		}
		for _, p := range b.walPathFiles {
			copied, err := x.copyWALFile(p, filepath.Join(res.WALDir, filepath.Base(p)))
			if err != nil {
				return nil, err
			}
			if copied {
				res.WALFiles++
			}
		}
	}
	if b.manifestRaw != nil {
		if err := x.writeBytes(filepath.Join(root, "backup_manifest"), b.manifestRaw, false); err != nil {
			return nil, err
		}
	}
	// Last: with pg_control absent, PostgreSQL refuses to start on a
	// half-restored directory.
	if err := x.mkdirAll(filepath.Join(root, "global")); err != nil {
		return nil, err
	}
	if err := x.writeBytes(filepath.Join(root, "global", "pg_control"), x.pgControl, false); err != nil {
		return nil, err
	}
	if opts.Sync {
		if err := x.syncDirs(); err != nil {
			return nil, err
		}
	}
	x.report(true)
	res.Files, res.Bytes, res.Skipped = x.files, x.done, x.skipped
	return res, nil
}

// contentError reports whether a restore error is about what the archive
// holds (an unsafe entry, a damaged or cut stream) rather than about writing
// the target (an error of the filesystem, which names a path).
func contentError(err error) bool {
	var ue *UnsafeEntryError
	if errors.As(err, &ue) {
		return true
	}
	var pe *fs.PathError
	var le *os.LinkError
	var errno syscall.Errno
	return !errors.As(err, &pe) && !errors.As(err, &le) && !errors.As(err, &errno)
}

// checkDeferred makes the checks a deferred Select left to Restore (see
// Backup.Deferred), on what the archives held.
func (b *Backup) checkDeferred(x *extractor) error {
	switch {
	case x.tsMap != nil && b.headMap == nil:
		return errors.New("base.tar holds a tablespace_map after its first entries, where pg_basebackup never puts it")
	case !bytes.Equal(x.tsMap, b.headMap):
		return errors.New("base.tar's tablespace_map differs from the one at its head")
	}
	if x.pgVersion == nil {
		return errors.New("base.tar has no PG_VERSION: not a backup of a data directory")
	}
	major, text, err := parsePGVersion(x.pgVersion)
	if err != nil {
		return err
	}
	if major != b.Major {
		return fmt.Errorf("PG_VERSION says %s, but the backup's WAL was written by PostgreSQL %s", text, b.PGVersion)
	}
	id, err := systemIdentifier(x.pgControl)
	if err != nil {
		return err
	}
	if id != b.SystemIdentifier {
		return fmt.Errorf("global/pg_control has system identifier %d, but the backup's WAL belongs to system %d", id, b.SystemIdentifier)
	}
	if b.Manifest != nil {
		return b.Manifest.compare(b.Name, x.sizes, nil)
	}
	return nil
}

// resolved returns the clean absolute path p with the symbolic links in its
// existing leading part resolved; the part that does not exist yet is kept
// as written.
func resolved(p string) string {
	cur, rest := p, ""
	for {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// within reports whether p is dir or below it (both clean and absolute).
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// extractor writes archive entries under a target, keeping track of what it
// created so it can refuse escapes and undo itself.
type extractor struct {
	ctx                context.Context
	log                *slog.Logger
	dirMode, fileMode  os.FileMode
	fixMode            bool // umask strips bits we need: chmod explicitly
	chown              bool
	uid, gid           int
	sync               bool
	buf                []byte
	progress           func(done, total int64)
	total, done, shown int64
	files              int
	dirs               map[string]bool // directories known to exist (created or checked)
	links              map[string]bool // symbolic links created
	tsDest             map[uint32]string
	pgControl          []byte
	// For a deferred backup: file sizes by data-directory path (as in
	// backup_manifest), the prefix of the archive being read, and PG_VERSION.
	sizes      map[string]int64
	sizePrefix string
	pgVersion  []byte
	tsMap      []byte // tablespace_map as base.tar holds it
	skipped    []string
	w          *writers // small-file writers; nil writes everything in line
	// rangeSrc is a second handle on an uncompressed archive file, for
	// copying large files inside the kernel (copy_file_range).
	rangeSrc *os.File
	// undo: directories whose contents to remove on failure, and ones to remove.
	emptyOnFail, removeOnFail []string
}

func newExtractor(ctx context.Context, group bool, opts RestoreOptions, bufSize int) *extractor {
	x := &extractor{
		ctx: ctx, log: slog.New(slog.DiscardHandler),
		dirMode: 0o700, fileMode: 0o600,
		chown: opts.UID != 0 || opts.GID != 0, uid: opts.UID, gid: opts.GID,
		sync: opts.Sync, buf: make([]byte, bufSize), progress: opts.Progress,
		dirs: map[string]bool{}, links: map[string]bool{},
	}
	if group {
		x.dirMode, x.fileMode = 0o750, 0o640
	}
	mask := processUmask()
	x.fixMode = x.dirMode&^mask != x.dirMode || x.fileMode&^mask != x.fileMode
	return x
}

var (
	umaskOnce  sync.Once
	umaskValue os.FileMode = 0o777
)

// processUmask reads the umask from /proc (changing it to read it would race
// with other goroutines); unknown means "assume the worst".
func processUmask() os.FileMode {
	umaskOnce.Do(func() {
		data, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					umaskValue = os.FileMode(m)
				}
			}
		}
	})
	return umaskValue
}

// prepareDir makes dir an empty directory of ours: created if absent,
// refused if not empty (cleared when overwrite).
func (x *extractor) prepareDir(dir string, overwrite bool, what string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return fmt.Errorf("backupsel: %s: %w", what, err)
		}
		if err := os.Mkdir(dir, x.dirMode); err != nil {
			return fmt.Errorf("backupsel: %s: %w", what, err)
		}
		x.removeOnFail = append(x.removeOnFail, dir)
	case err != nil:
		if errors.Is(err, fs.ErrPermission) {
			return &PermissionError{Path: dir, Need: "read+write+execute", Err: err}
		}
		return fmt.Errorf("backupsel: %s: %w", what, err)
	default:
		if len(entries) > 0 && !overwrite {
			return fmt.Errorf("%w: %s %s holds %d entries (first %s); empty it or set Overwrite",
				ErrNotEmpty, what, dir, len(entries), entries[0].Name())
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("backupsel: clearing %s: %w", what, err)
			}
		}
		x.emptyOnFail = append(x.emptyOnFail, dir)
	}
	if err := os.Chmod(dir, x.dirMode); err != nil {
		return fmt.Errorf("backupsel: %s: %w", what, err)
	}
	if x.chown {
		if err := os.Chown(dir, x.uid, x.gid); err != nil {
			return fmt.Errorf("backupsel: %s: %w", what, err)
		}
	}
	x.dirs[dir] = true
	return nil
}

func (x *extractor) cleanup() {
	for _, d := range x.removeOnFail {
		os.RemoveAll(d)
	}
	for _, d := range x.emptyOnFail {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			os.RemoveAll(filepath.Join(d, e.Name()))
		}
	}
}

func (x *extractor) restoreArchive(b *Backup, a *Archive, target string) error {
	name := b.archiveName(a)
	raw, err := b.openRaw(a)
	if err != nil {
		return err
	}
	defer raw.Close()
	r, comp, closer, err := tarStream(raw, len(x.buf), b.Layout != LayoutZip)
	if err != nil {
		return &ArchiveError{Archive: name, Err: err}
	}
	defer closer.Close()
	if f, ok := r.(*os.File); ok {
		// An uncompressed archive file: the tar reader seeks over large
		// files, which copyRange copies from a second handle.
		src, err := os.Open(f.Name())
		if err != nil {
			return &ArchiveError{Archive: name, Err: err}
		}
		defer src.Close()
		x.rangeSrc = src
		defer func() { x.rangeSrc = nil }()
	}
	// Decode (or inflate the zip entry) in a goroutine of its own.
	compressed := comp != CompressionNone
	if compressed || b.Layout == LayoutZip {
		ra := newReadAhead(r, len(x.buf))
		defer ra.Close()
		r = ra
	}
	switch a.Role {
	case RoleTablespace:
		x.sizePrefix = "pg_tblspc/" + strconv.FormatUint(uint64(a.OID), 10) + "/"
	case RoleWAL:
		x.sizePrefix = "pg_wal/"
	default:
		x.sizePrefix = ""
	}
	x.log.Debug("backupsel: restoring", "archive", name, "into", target)
	err = x.extract(r, name, target, a.Role)
	if err == nil && (compressed || b.Layout == LayoutZip) {
		err = drain(r, x.buf)
	}
	if err != nil {
		var ue *UnsafeEntryError
		var ae *ArchiveError
		if errors.As(err, &ue) || errors.As(err, &ae) || x.ctx.Err() != nil {
			return err
		}
		return &ArchiveError{Archive: name, Err: err}
	}
	return nil
}

// extract writes the entries of tar stream r under target.
func (x *extractor) extract(r io.Reader, archive, target string, role Role) error {
	return walkTar(x.ctx, r, func(h *tar.Header, tr *tar.Reader, off int64) error {
		name, err := entryPath(h.Name)
		if err != nil {
			return &UnsafeEntryError{Archive: archive, Entry: h.Name, Reason: err.Error()}
		}
		unsafe := func(reason string) error {
			return &UnsafeEntryError{Archive: archive, Entry: h.Name, Reason: reason}
		}
		if name == "." {
			if h.Typeflag != tar.TypeDir {
				return unsafe("the archive root is not a directory")
			}
			return nil
		}
		if skippedEntry(role, name) {
			x.skipped = append(x.skipped, name)
			return nil
		}
		dst := target + "/" + name
		switch h.Typeflag {
		case tar.TypeDir:
			return x.mkdirAll(dst)
		case tar.TypeReg, tar.TypeRegA:
			if x.sizes != nil {
				x.sizes[x.sizePrefix+name] = h.Size
			}
			// Kept in memory: pg_control is written last (see Restore),
			// PG_VERSION checked after a deferred Select.
			var keep *[]byte
			switch {
			case role == RoleBase && name == "global/pg_control":
				keep = &x.pgControl
			case role == RoleBase && name == "PG_VERSION" && x.sizes != nil:
				keep = &x.pgVersion
			case role == RoleBase && name == "tablespace_map" && x.sizes != nil:
				keep = &x.tsMap
			}
			if keep != nil {
				if h.Size > 1<<20 {
					return unsafe(name + " larger than 1 MiB")
				}
				data, err := io.ReadAll(tr)
				if err != nil {
					return err
				}
				*keep = data
				x.done += int64(len(data))
				if keep == &x.pgControl {
					return x.mkdirAll(path.Dir(dst))
				}
				if err := x.writeData(dst, openFlags, data); err != nil {
					return err
				}
				x.files++
				return nil
			}
			if err := x.mkdirAll(path.Dir(dst)); err != nil {
				return err
			}
			if queued, err := x.queueFile(dst, tr, h.Size); queued || err != nil {
				return err
			}
			if x.rangeSrc != nil {
				return x.copyRange(dst, off, h.Size)
			}
			return x.writeFile(dst, tr, h.Size)
		case tar.TypeSymlink:
			if err := x.mkdirAll(path.Dir(dst)); err != nil {
				return err
			}
			// pg_basebackup's tar output holds symbolic links only at
			// pg_tblspc/<oid> in base.tar (pg_wal is sent as a directory);
			// their targets are replaced by the tablespace's destination.
			// Any other link could redirect a later write (a link made
			// earlier in the archive turns a harmless-looking relative
			// target into one outside the data directory), so none is
			// restored.
			if oid, ok := tablespaceLink(name); ok && role == RoleBase {
				dest, known := x.tsDest[oid]
				if !known {
					return unsafe("link to a tablespace the backup does not describe")
				}
				return x.symlink(dest, dst)
			}
			return unsafe("symbolic link to " + h.Linkname + ": pg_basebackup writes symbolic links only at pg_tblspc/<oid> in base.tar")
		case tar.TypeLink:
			lp, err := entryPath(h.Linkname)
			if err != nil || lp == "." {
				return unsafe("hard link to " + h.Linkname + " outside the target")
			}
			src := target + "/" + lp
			if err := x.flushWriters(); err != nil {
				return err
			}
			info, err := os.Lstat(src)
			if err != nil || !info.Mode().IsRegular() || !x.dirs[path.Dir(src)] {
				return unsafe("hard link to " + h.Linkname + ", which is not a file restored from this archive")
			}
			if err := x.mkdirAll(path.Dir(dst)); err != nil {
				return err
			}
			if err := os.Link(src, dst); err != nil {
				return err
			}
			x.files++
			return nil
		case tar.TypeChar, tar.TypeBlock:
			return unsafe("device file")
		case tar.TypeFifo:
			return unsafe("FIFO")
		}
		return unsafe(fmt.Sprintf("unsupported entry type %q", h.Typeflag))
	})
}

// mkdirAll creates dir and its missing parents inside a known directory,
// refusing to go through anything that is not a real directory (such as a
// symbolic link restored earlier).
func (x *extractor) mkdirAll(dir string) error {
	if x.dirs[dir] {
		return nil
	}
	parent := path.Dir(dir)
	if parent == dir {
		return fmt.Errorf("backupsel: %s is outside the restore target", dir)
	}
	if err := x.mkdirAll(parent); err != nil {
		return err
	}
	err := os.Mkdir(dir, x.dirMode)
	switch {
	case err == nil:
		if x.fixMode {
			if err := os.Chmod(dir, x.dirMode); err != nil {
				return err
			}
		}
		if x.chown {
			if err := os.Chown(dir, x.uid, x.gid); err != nil {
				return err
			}
		}
	case errors.Is(err, fs.ErrExist):
		info, lerr := os.Lstat(dir)
		if lerr != nil || !info.IsDir() {
			return &UnsafeEntryError{Archive: "(restore)", Entry: dir, Reason: "exists and is not a directory (a link or file restored earlier)"}
		}
	default:
		return err
	}
	x.dirs[dir] = true
	return nil
}

func (x *extractor) symlink(target, link string) error {
	if err := os.Symlink(target, link); err != nil {
		return err
	}
	x.links[link] = true
	if x.chown {
		return os.Lchown(link, x.uid, x.gid)
	}
	return nil
}

const openFlags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC | syscall.O_NOFOLLOW | syscall.O_CLOEXEC

// writeFile copies size bytes from r into a new file at p.
func (x *extractor) writeFile(p string, r io.Reader, size int64) error {
	f, err := os.OpenFile(p, openFlags, x.fileMode)
	if err != nil {
		return err
	}
	err = x.copyInto(f, r, size)
	if err == nil {
		err = x.finishFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		x.files++
	}
	return err
}

// copyRange copies size bytes at off in the archive file into a new file at
// p. os.File.ReadFrom uses copy_file_range, so the bytes never pass through
// this process (it falls back to a plain copy where the kernel cannot).
func (x *extractor) copyRange(p string, off, size int64) error {
	if _, err := x.rangeSrc.Seek(off, io.SeekStart); err != nil {
		return err
	}
	f, err := os.OpenFile(p, openFlags, x.fileMode)
	if err != nil {
		return err
	}
	n, err := f.ReadFrom(&io.LimitedReader{R: x.rangeSrc, N: size})
	x.done += n
	x.report(false)
	if err == nil && n != size {
		err = errTruncated
	}
	if err == nil {
		err = x.finishFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		x.files++
	}
	return err
}

func (x *extractor) copyInto(f *os.File, r io.Reader, size int64) error {
	for size > 0 {
		n := int64(len(x.buf))
		if size < n {
			n = size
		}
		m, err := io.ReadFull(r, x.buf[:n])
		if m > 0 {
			if _, werr := f.Write(x.buf[:m]); werr != nil {
				return werr
			}
			x.done += int64(m)
			size -= int64(m)
			x.report(false)
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return errTruncated
			}
			return err
		}
		if err := x.ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) finishFile(f *os.File) error {
	if x.fixMode {
		if err := f.Chmod(x.fileMode); err != nil {
			return err
		}
	}
	if x.chown {
		if err := f.Chown(x.uid, x.gid); err != nil {
			return err
		}
	}
	if x.sync {
		return f.Sync()
	}
	return nil
}

// writeBytes writes a small file whole; replace allows an existing file (the
// restored tablespace_map being rewritten).
func (x *extractor) writeBytes(p string, data []byte, replace bool) error {
	if replace {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := x.writeData(p, openFlags|os.O_EXCL, data); err != nil {
		return fmt.Errorf("backupsel: %w", err)
	}
	return nil
}

// writeData creates p with flags and writes data into it.
func (x *extractor) writeData(p string, flags int, data []byte) error {
	f, err := os.OpenFile(p, flags, x.fileMode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = x.finishFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// copyWALFile copies one segment from the WAL path unless the backup already
// brought a file of that name.
func (x *extractor) copyWALFile(src, dst string) (bool, error) {
	in, err := os.Open(src)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return false, &PermissionError{Path: src, Need: "read", Err: err}
		}
		return false, err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return false, err
	}
	out, err := os.OpenFile(dst, openFlags|os.O_EXCL, x.fileMode)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	err = x.copyInto(out, in, info.Size())
	if err == nil {
		err = x.finishFile(out)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		x.files++
	}
	return err == nil, err
}

func (x *extractor) syncDirs() error {
	dirs := make([]string, 0, len(x.dirs))
	for d := range x.dirs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		f, err := os.Open(d)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// report calls the progress callback every 4 MiB, and at the end.
func (x *extractor) report(final bool) {
	if x.progress == nil {
		return
	}
	if final || x.done-x.shown >= 4<<20 {
		x.shown = x.done
		total := x.total
		if final || x.done > total {
			total = x.done
		}
		x.progress(x.done, total)
	}
}
