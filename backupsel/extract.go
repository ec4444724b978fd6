package backupsel

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strconv"
)

// extractor writes archive entries under their targets.
type extractor struct {
	log     *slog.Logger
	fm      fileMaker
	tree    *tree
	prog    progress
	kept    kept
	tsDest  map[uint32]string // tablespace OID -> its restored directory
	skipped []string
	files   int // regular files written in line (see writers for the rest)
	w       *writers
	buf     []byte
}

// kept is what a restore holds back, or notes, while it writes.
type kept struct {
	pgControl []byte // written last (see Restore)
	// For a deferred backup only: PG_VERSION and tablespace_map as
	// base.tar holds them, and every file's size by its data-directory path
	// (as backup_manifest lists it); sizes is nil otherwise.
	pgVersion, tsMap []byte
	sizes            map[string]int64
}

// archiveRun is one archive being restored.
type archiveRun struct {
	name       string // for messages: the file, or zip:entry
	target     string
	role       Role
	sizePrefix string   // the archive's place in the data directory, for kept.sizes
	rangeSrc   *os.File // a second handle on an uncompressed archive file: see writers.copyRange
	rangeFD    int      // its descriptor
}

func newExtractor(b *Backup, opts RestoreOptions, bufSize int) *extractor {
	x := &extractor{
		log:  slog.New(slog.DiscardHandler),
		fm:   newFileMaker(b.GroupAccess, opts),
		prog: progress{fn: opts.Progress, total: b.TotalBytes},
		buf:  make([]byte, bufSize),
	}
	x.tree = newTree(&x.fm)
	if opts.Logger != nil {
		x.log = opts.Logger
	}
	if b.Deferred {
		x.kept.sizes = map[string]int64{}
	}
	return x
}

// restoreArchive streams archive a of b into target.
func (x *extractor) restoreArchive(ctx context.Context, b *Backup, a *Archive, target string) error {
	run := &archiveRun{name: b.archiveName(a), target: target, role: a.Role}
	switch a.Role {
	case RoleTablespace:
		run.sizePrefix = "pg_tblspc/" + strconv.FormatUint(uint64(a.OID), 10) + "/"
	case RoleWAL:
		run.sizePrefix = "pg_wal/"
	}
	raw, err := b.openRaw(a)
	if err != nil {
		return err
	}
	defer raw.Close()
	r, comp, closer, err := tarStream(raw, len(x.buf), b.Layout != LayoutZip)
	if err != nil {
		return &ArchiveError{Archive: run.name, Err: err}
	}
	defer closer.Close()
	if f, ok := r.(*os.File); ok {
		// An uncompressed archive file: the tar reader seeks over file
		// contents, which writers copy from a second handle.
		if run.rangeSrc, err = os.Open(f.Name()); err != nil {
			return &ArchiveError{Archive: run.name, Err: err}
		}
		run.rangeFD = int(run.rangeSrc.Fd())
		defer func() {
			x.w.pending.Wait() // writers copy from it until then
			run.rangeSrc.Close()
		}()
	}
	// Decode (or inflate the zip entry) in a goroutine of its own.
	streamed := comp != CompressionNone || b.Layout == LayoutZip
	if streamed {
		ra := newReadAhead(r, len(x.buf))
		defer ra.Close()
		r = ra
	}
	x.log.Debug("backupsel: restoring", "archive", run.name, "into", target)
	err = x.extract(ctx, r, run)
	if err == nil && streamed {
		err = drain(r, x.buf)
	}
	var ae *ArchiveError
	if err == nil || errors.As(err, &ae) || ctx.Err() != nil {
		return err
	}
	return &ArchiveError{Archive: run.name, Err: err}
}

// extract restores the entries of the tar stream r.
func (x *extractor) extract(ctx context.Context, r io.Reader, run *archiveRun) error {
	return walkTar(ctx, r, func(h *tar.Header, tr *tar.Reader, off int64) error {
		return x.entry(ctx, run, h, tr, off)
	})
}

// entry restores one tar entry.
func (x *extractor) entry(ctx context.Context, run *archiveRun, h *tar.Header, tr *tar.Reader, off int64) error {
	name, err := entryPath(h.Name)
	if err != nil {
		return unsafeEntry(run.name, h.Name, err.Error())
	}
	if name == "." {
		if h.Typeflag != tar.TypeDir {
			return unsafeEntry(run.name, h.Name, "the archive root is not a directory")
		}
		return nil
	}
	if skippedEntry(run.role, name) {
		x.skipped = append(x.skipped, name)
		return nil
	}
	dst := run.target + "/" + name
	switch h.Typeflag {
	case tar.TypeDir:
		err = x.tree.mkdirAll(dst)
	case tar.TypeReg:
		err = x.file(ctx, run, name, dst, h, tr, off)
	case tar.TypeSymlink:
		err = x.symlink(run, name, dst, h)
	case tar.TypeLink:
		err = x.hardLink(run, dst, h)
	case tar.TypeChar, tar.TypeBlock:
		return unsafeEntry(run.name, h.Name, "device file")
	case tar.TypeFifo:
		return unsafeEntry(run.name, h.Name, "FIFO")
	default:
		return unsafeEntry(run.name, h.Name, fmt.Sprintf("unsupported entry type %q", h.Typeflag))
	}
	switch {
	case errors.Is(err, errNotDir):
		return unsafeEntry(run.name, h.Name, err.Error())
	case errors.Is(err, errInTheWay):
		return &ArchiveError{Archive: run.name, Entry: h.Name, Err: err}
	}
	return err
}

// file restores a regular file entry.
func (x *extractor) file(ctx context.Context, run *archiveRun, name, dst string, h *tar.Header, r io.Reader, off int64) error {
	if x.kept.sizes != nil {
		x.kept.sizes[run.sizePrefix+name] = h.Size
	}
	if err := x.tree.mkdirAll(path.Dir(dst)); err != nil {
		return err
	}
	if err := x.claim(run, dst, h); err != nil {
		return err
	}
	// Kept in memory: pg_control is written last (see Restore), PG_VERSION
	// and tablespace_map checked after a deferred Select.
	var keep *[]byte
	switch {
	case run.role == RoleBase && name == "global/pg_control":
		keep = &x.kept.pgControl
	case run.role == RoleBase && name == "PG_VERSION" && x.kept.sizes != nil:
		keep = &x.kept.pgVersion
	case run.role == RoleBase && name == "tablespace_map" && x.kept.sizes != nil:
		keep = &x.kept.tsMap
	}
	if keep != nil {
		if h.Size > 1<<20 {
			return unsafeEntry(run.name, h.Name, name+" larger than 1 MiB")
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		*keep = data
		x.prog.add(int64(len(data)))
		if keep == &x.kept.pgControl {
			return nil
		}
		return x.written(dst, x.fm.writeBytes(dst, data))
	}
	x.tree.files[dst] = true
	if run.rangeSrc != nil {
		return x.queueRange(dst, run.rangeSrc, run.rangeFD, off, h.Size)
	}
	return x.queueFile(ctx, dst, r, h.Size)
}

// claim checks that dst may become a regular file. A directory or link of
// that name is an error of the archive's; a file written before is replaced
// (see fileMaker.create), once every queued write of it is done.
func (x *extractor) claim(run *archiveRun, dst string, h *tar.Header) error {
	if x.tree.dirs[dst] || x.tree.links[dst] {
		return &ArchiveError{Archive: run.name, Entry: h.Name, Err: errors.New("a directory or link of that name was restored earlier")}
	}
	if x.tree.files[dst] {
		return x.flushWriters()
	}
	return nil
}

// written counts a file written in line.
func (x *extractor) written(dst string, err error) error {
	if err == nil {
		x.tree.files[dst] = true
		x.files++
	}
	return err
}

// symlink restores a symbolic link entry: only pg_tblspc/<oid> in base.tar.
func (x *extractor) symlink(run *archiveRun, name, dst string, h *tar.Header) error {
	if err := x.tree.mkdirAll(path.Dir(dst)); err != nil {
		return err
	}
	// pg_basebackup's tar output holds symbolic links only at
	// pg_tblspc/<oid> in base.tar (pg_wal is sent as a directory); their
	// targets are replaced by the tablespace's destination. Any other link
	// could redirect a later write (a link made earlier in the archive turns
	// a harmless-looking relative target into one outside the data
	// directory), so none is restored.
	oid, ok := tablespaceLink(name)
	if !ok || run.role != RoleBase {
		return unsafeEntry(run.name, h.Name, "symbolic link to "+h.Linkname+": pg_basebackup writes symbolic links only at pg_tblspc/<oid> in base.tar")
	}
	dest, known := x.tsDest[oid]
	if !known {
		return unsafeEntry(run.name, h.Name, "link to a tablespace the backup does not describe")
	}
	return x.tree.symlink(dest, dst)
}

// hardLink restores a hard link entry to a file restored before it.
func (x *extractor) hardLink(run *archiveRun, dst string, h *tar.Header) error {
	lp, err := entryPath(h.Linkname)
	if err != nil || lp == "." {
		return unsafeEntry(run.name, h.Name, "hard link to "+h.Linkname+" outside the target")
	}
	src := run.target + "/" + lp
	if !x.tree.files[src] {
		return unsafeEntry(run.name, h.Name, "hard link to "+h.Linkname+", which is not a file restored from this archive")
	}
	if err := x.tree.mkdirAll(path.Dir(dst)); err != nil {
		return err
	}
	if err := x.claim(run, dst, h); err != nil {
		return err
	}
	if err := x.flushWriters(); err != nil { // src may still be queued
		return err
	}
	if x.tree.files[dst] {
		if err := os.Remove(dst); err != nil {
			return err
		}
	}
	return x.written(dst, os.Link(src, dst))
}

// progress calls the caller's progress function every 4 MiB, and at the end.
type progress struct {
	fn                 func(done, total int64)
	total, done, shown int64
}

func (p *progress) add(n int64) {
	p.done += n
	if p.fn != nil && p.done-p.shown >= 4<<20 {
		p.shown = p.done
		p.fn(p.done, max(p.total, p.done))
	}
}

func (p *progress) final() {
	if p.fn != nil {
		p.fn(p.done, p.done)
	}
}
