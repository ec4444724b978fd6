package backupsel

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Options configure Select. The zero value selects without verifying
// checksums, waits DefaultSettle for files that changed recently, and needs
// the WAL to be in the backup.
type Options struct {
	// WALPath is a folder of WAL segment files to add to the restored pg_wal,
	// for backups taken without WAL. Ignored when StreamWhenNoWAL is set.
	WALPath string
	// StreamWhenNoWAL accepts a backup without WAL: the standby will stream
	// it from the source. It takes precedence over WALPath, as in the
	// original procedure; the result's Notes say WALPath was ignored.
	StreamWhenNoWAL bool
	// Verify reads every file of the candidate and compares its checksum
	// with backup_manifest (PostgreSQL 13+). Without it Select compares
	// names and sizes only, which reads tar headers but not contents for
	// uncompressed archives.
	Verify bool
	// Settle is how long a backup file must stay unchanged to count as
	// finished: files modified within Settle are watched for that long and
	// a candidate whose files change is skipped as still being written.
	// 0 means DefaultSettle; negative disables the check.
	Settle time.Duration
	// BufferSize is the read buffer per archive; 0 means 1 MiB.
	BufferSize int
	// Logger receives one debug line per candidate; nil discards.
	Logger *slog.Logger
	// PassOver lists candidates already found not whole, by Location, with
	// the Reason to report: typically a deferred zip whose Restore failed
	// with a NotWholeError, so that selecting again takes the next one.
	PassOver []Candidate
}

// DefaultSettle is the settle window used when Options.Settle is 0.
const DefaultSettle = 2 * time.Second

const defaultBufferSize = 1 << 20

// WALSource says where the WAL that makes the backup consistent comes from.
type WALSource int

// WAL sources.
const (
	WALInArchive WALSource = iota + 1 // pg_wal.tar (pg_basebackup -X stream)
	WALInBase                         // pg_wal/ inside base.tar (-X fetch, -x, server-side backups)
	WALFromPath                       // Options.WALPath
	WALStream                         // none given: the standby streams it from the source
)

func (w WALSource) String() string {
	switch w {
	case WALInArchive:
		return "pg_wal.tar"
	case WALInBase:
		return "pg_wal inside base.tar"
	case WALFromPath:
		return "WAL path"
	case WALStream:
		return "streamed from the source"
	}
	return "unknown"
}

// Role of an archive in a backup.
type Role int

// Roles.
const (
	RoleBase       Role = iota + 1 // base.tar: the data directory
	RoleWAL                        // pg_wal.tar
	RoleTablespace                 // <oid>.tar
)

// Archive is one tar file of a backup.
type Archive struct {
	Name         string // file name, e.g. base.tar.gz
	Role         Role
	OID          uint32 // for RoleTablespace
	Compression  Compression
	Size         int64 // bytes stored (compressed size; inside a zip, the entry's compressed size)
	Entries      int   // tar entries; 0 for an archive a deferred Select did not read
	ContentBytes int64 // bytes of file content inside; 0 for an archive a deferred Select did not read
	path         string
	usize        int64 // inside a zip: the entry's uncompressed size
}

// Candidate is a backup Select considered; for the ones passed over, Reason
// says why.
type Candidate struct {
	Name     string // folder or zip name; "files in <path>" for the direct layout
	Location string // folder, backup path, or zip file
	Layout   Layout
	Time     time.Time // from the name; zero for the direct layout
	Reason   string
	Err      error // the underlying error, if any (e.g. a *PermissionError)
}

// Backup is the backup Select chose, with what it learnt while checking it.
type Backup struct {
	Path     string // the backup path searched
	Name     string // folder or zip name, or "files in <path>"
	Location string // folder, backup path, or zip file
	Layout   Layout
	Time     time.Time // from the name; zero for the direct layout
	Archives []Archive
	Manifest *Manifest // nil when the backup has no backup_manifest (before 13)

	PGVersion        string // PG_VERSION text: "15", "9.6"
	Major            int    // 10..18; 9 for every 9.x
	SystemIdentifier uint64 // from global/pg_control
	Label            BackupLabel
	GroupAccess      bool // files readable by the group (PostgreSQL 11+ initdb -g)
	Tablespaces      []Tablespace

	WAL     WALSource
	WALPath string // the WAL folder Restore copies from; empty when unused

	Passed []Candidate // every candidate passed over, with the reason
	Notes  []string    // things the caller may want to show (ignored options, unverified checksums)

	// TotalBytes is the file content Restore writes, for progress. When
	// Deferred it is exact for a backup with a backup_manifest and an
	// estimate (the archives' size) without one.
	TotalBytes int64

	// Deferred is true when Select did not read base.tar (nor the
	// tablespace archives) through, because a zip proved them whole; see
	// [Select]. Restore then makes the checks that need their contents.
	Deferred bool

	bufSize       int
	tablespaceMap bool
	manifestRaw   []byte
	// headMap is the tablespace_map a deferred Select read at the head of
	// base.tar, for Restore to compare with the one it writes.
	headMap      []byte
	walPathFiles []string
}

// Select finds the backup to restore in backupPath, by the precedence of the
// original procedure: folders PostgreSQL_T<YYYYMMDDhhmmss> (latest first),
// then backup files directly in backupPath, then PostgreSQL_T<YYYYMMDD>.zip
// (latest first). The first candidate that is whole is chosen; every other
// candidate is listed in Backup.Passed with the reason.
//
// backupPath is exactly one directory. A string holding os.PathListSeparator
// that is not itself an existing path is taken as a list and refused with
// ErrMultiplePaths.
func Select(ctx context.Context, backupPath string, opts Options) (*Backup, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if backupPath == "" {
		return nil, errors.New("backupsel: empty backup path")
	}
	if strings.ContainsRune(backupPath, os.PathListSeparator) {
		if _, err := os.Stat(backupPath); err != nil {
			return nil, fmt.Errorf("%w: %q", ErrMultiplePaths, backupPath)
		}
	}
	root, err := filepath.Abs(backupPath)
	if err != nil {
		return nil, fmt.Errorf("backupsel: %w", err)
	}
	st, err := os.Stat(root)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, &PermissionError{Path: root, Need: "execute (search) on every parent directory and read+execute", Err: err}
		}
		return nil, fmt.Errorf("backupsel: backup path: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("backupsel: backup path %s is not a directory", root)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, &PermissionError{Path: root, Need: "read+execute", Err: err}
		}
		return nil, fmt.Errorf("backupsel: list backup path: %w", err)
	}

	var folders, zips []Candidate
	var passed []Candidate
	direct := false
	for _, e := range entries {
		name := e.Name()
		layout, t, ok, why := ParseName(name)
		full := filepath.Join(root, name)
		isDir := e.IsDir()
		if e.Type()&fs.ModeSymlink != 0 {
			if st, err := os.Stat(full); err == nil {
				isDir = st.IsDir()
			}
		}
		switch {
		case ok && layout == LayoutFolder && isDir:
			folders = append(folders, Candidate{Name: name, Location: full, Layout: LayoutFolder, Time: t})
		case ok && layout == LayoutZip && !isDir:
			zips = append(zips, Candidate{Name: name, Location: full, Layout: LayoutZip, Time: t})
		case ok:
			kind := "a folder"
			if layout == LayoutZip {
				kind = "a file"
			}
			passed = append(passed, Candidate{Name: name, Location: full, Reason: "malformed: the name is valid but it is not " + kind})
		case why != "":
			passed = append(passed, Candidate{Name: name, Location: full, Reason: "malformed name: " + why})
		case !isDir && (archiveRe.MatchString(name) || name == "backup_manifest"):
			direct = true
		}
	}
	sort.Slice(folders, func(i, j int) bool { return folders[i].Time.After(folders[j].Time) })
	sort.Slice(zips, func(i, j int) bool { return zips[i].Time.After(zips[j].Time) })
	ordered := folders
	if direct {
		ordered = append(ordered, Candidate{Name: "files in " + root, Location: root, Layout: LayoutDirect})
	}
	ordered = append(ordered, zips...)

	settle := opts.Settle
	if settle == 0 {
		settle = DefaultSettle
	}
	bufSize := opts.BufferSize
	if bufSize <= 0 {
		bufSize = defaultBufferSize
	}
	var tried []Candidate
candidates:
	for i, c := range ordered {
		for _, p := range opts.PassOver {
			if p.Location == c.Location {
				c.Reason, c.Err = p.Reason, p.Err
				tried = append(tried, c)
				continue candidates
			}
		}
		b, err := inspect(ctx, c, opts, settle, bufSize)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			c.Reason, c.Err = strings.TrimPrefix(err.Error(), "backupsel: "), err
			log.Debug("backupsel: candidate passed over", "candidate", c.Name, "reason", c.Reason)
			tried = append(tried, c)
			continue
		}
		log.Debug("backupsel: candidate chosen", "candidate", c.Name, "major", b.Major)
		for _, o := range ordered[i+1:] {
			if o.Layout == c.Layout {
				o.Reason = "older than the chosen " + c.Name
			} else {
				o.Reason = "lower precedence (" + o.Layout.String() + ") than the chosen " + c.Name
			}
			tried = append(tried, o)
		}
		b.Path = root
		b.Passed = append(tried, passed...)
		return b, nil
	}
	return nil, &NoBackupError{Path: root, Candidates: append(tried, passed...)}
}

var archiveRe = regexp.MustCompile(`^(base|pg_wal|[0-9]+)\.tar(\.gz|\.lz4|\.zst)?$`)

// candidateFile is a backup file in a folder, the backup path, or a zip.
type candidateFile struct {
	name    string // base name
	path    string // file path, or entry name inside the zip
	size    int64
	usize   int64 // inside a zip: the entry's uncompressed size
	modTime time.Time
}

// reasonf makes the plain reason a candidate is not whole.
func reasonf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func inspect(ctx context.Context, c Candidate, opts Options, settle time.Duration, bufSize int) (*Backup, error) {
	b := &Backup{Name: c.Name, Location: c.Location, Layout: c.Layout, Time: c.Time, bufSize: bufSize}
	files, err := listCandidate(c)
	if err != nil {
		return nil, err
	}
	var manifestFile *candidateFile
	for i := range files {
		f := &files[i]
		if f.name == "backup_manifest" {
			manifestFile = f
			continue
		}
		m := archiveRe.FindStringSubmatch(f.name)
		if m == nil {
			continue
		}
		a := Archive{Name: f.name, Size: f.size, path: f.path, usize: f.usize}
		switch m[1] {
		case "base":
			a.Role = RoleBase
		case "pg_wal":
			a.Role = RoleWAL
		default:
			oid, err := strconv.ParseUint(m[1], 10, 32)
			if err != nil {
				continue
			}
			a.Role, a.OID = RoleTablespace, uint32(oid)
		}
		for _, o := range b.Archives {
			if o.Role == a.Role && o.OID == a.OID {
				return nil, reasonf("ambiguous: both %s and %s", o.Name, a.Name)
			}
		}
		b.Archives = append(b.Archives, a)
	}
	// base first, then tablespaces, then WAL: the order Restore writes them.
	sort.SliceStable(b.Archives, func(i, j int) bool { return roleOrder(b.Archives[i]) < roleOrder(b.Archives[j]) })
	if len(b.Archives) == 0 || b.Archives[0].Role != RoleBase {
		return nil, reasonf("no base.tar (nor base.tar.gz, .lz4, .zst)")
	}
	if settle > 0 {
		if err := checkSettled(ctx, c, files, settle); err != nil {
			return nil, err
		}
	}
	if manifestFile != nil {
		raw, err := readWhole(b, manifestFile.path, 64<<20)
		if err != nil {
			return nil, err
		}
		m, err := ParseManifest(raw)
		if err != nil {
			return nil, err
		}
		b.Manifest, b.manifestRaw = m, raw
	}
	st := newScanState()
	if c.Layout == LayoutZip && !opts.Verify {
		if b.Deferred, err = b.inspectZip(ctx, st); err != nil {
			return nil, err
		}
		if !b.Deferred { // read everything, as for a folder
			st = newScanState()
			for i := range b.Archives {
				b.Archives[i].Entries, b.Archives[i].ContentBytes = 0, 0
			}
		}
	}
	if !b.Deferred {
		if opts.Verify && b.Manifest != nil {
			st.algs = b.Manifest.algorithms()
			st.sums = map[string]string{}
		}
		for i := range b.Archives {
			if err := scanArchive(ctx, b, &b.Archives[i], st); err != nil {
				return nil, err
			}
			b.TotalBytes += b.Archives[i].ContentBytes
		}
		if err := b.learn(st); err != nil {
			return nil, err
		}
		if b.Manifest != nil {
			if err := b.Manifest.compare(b.Name, st.sizes, st.sums); err != nil {
				return nil, err
			}
		}
	}
	if b.Manifest != nil {
		if b.Manifest.SystemIdentifier != 0 && b.Manifest.SystemIdentifier != b.SystemIdentifier {
			return nil, reasonf("backup_manifest system identifier %d differs from the backup's %d (global/pg_control, or the WAL when deferred)",
				b.Manifest.SystemIdentifier, b.SystemIdentifier)
		}
	} else if opts.Verify {
		b.Notes = append(b.Notes, "no backup_manifest (PostgreSQL before 13, or taken with --no-manifest): file checksums not verified")
	}
	if err := b.chooseWAL(st, opts); err != nil {
		return nil, err
	}
	return b, nil
}

func roleOrder(a Archive) int {
	switch a.Role {
	case RoleBase:
		return 0
	case RoleTablespace:
		return 1
	}
	return 2
}

func listCandidate(c Candidate) ([]candidateFile, error) {
	if c.Layout == LayoutZip {
		return listZip(c.Location)
	}
	entries, err := os.ReadDir(c.Location)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, &PermissionError{Path: c.Location, Need: "read+execute", Err: err}
		}
		return nil, reasonf("unreadable: %w", err)
	}
	var out []candidateFile
	for _, e := range entries {
		if !archiveRe.MatchString(e.Name()) && e.Name() != "backup_manifest" {
			continue
		}
		p := filepath.Join(c.Location, e.Name())
		info, err := os.Stat(p)
		if err != nil {
			return nil, reasonf("unreadable: %w", err)
		}
		if !info.Mode().IsRegular() {
			continue
		}
		out = append(out, candidateFile{name: e.Name(), path: p, size: info.Size(), modTime: info.ModTime()})
	}
	return out, nil
}

// settleSleep waits d; tests replace it to change files deterministically.
var settleSleep = func(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// checkSettled skips a candidate whose files are still being written: when a
// file changed within the settle window, wait the window and compare again.
func checkSettled(ctx context.Context, c Candidate, files []candidateFile, settle time.Duration) error {
	paths := make([]string, 0, len(files))
	if c.Layout == LayoutZip {
		paths = append(paths, c.Location)
	} else {
		for _, f := range files {
			paths = append(paths, f.path)
		}
	}
	type stamp struct {
		size int64
		mod  time.Time
	}
	before := make([]stamp, len(paths))
	recent := false
	now := time.Now()
	for i, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return reasonf("unreadable: %w", err)
		}
		before[i] = stamp{info.Size(), info.ModTime()}
		if now.Sub(info.ModTime()) < settle {
			recent = true
		}
	}
	if !recent {
		return nil
	}
	if err := settleSleep(ctx, settle); err != nil {
		return err
	}
	for i, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return reasonf("still being written: %s: %w", filepath.Base(p), err)
		}
		if info.Size() != before[i].size || !info.ModTime().Equal(before[i].mod) {
			return reasonf("still being written: %s changed within %s", filepath.Base(p), settle)
		}
	}
	return nil
}

// newScanState returns an empty scanState.
func newScanState() *scanState {
	return &scanState{sizes: map[string]int64{}, wal: map[string]Role{}, links: map[uint32]string{}}
}

// inspectZip is Select's way through a zip when checksums are not asked
// for. The central directory, which zip writes last, proves the copy
// complete, and every entry's CRC-32 is checked as Restore reads it, so
// base.tar and the tablespace archives need not be inflated here just to
// prove them whole: a second pass over a large deflated base.tar is most of
// a restore's cost. What Select must know before a restore comes from the
// small parts instead:
//   - backup_label and tablespace_map, the first entries of base.tar
//     (pg_basebackup sends them before the data directory);
//   - the major version and system identifier, from the long page header of
//     the segment the backup starts in, in pg_wal.tar (read whole, as it
//     holds the WAL the backup needs).
//
// It reports false, having decided nothing, when that is not possible (WAL
// inside base.tar, tablespaces without tablespace_map, a WAL page magic of
// a version it does not know): Select then reads the whole zip. The checks
// that need base.tar's contents (PG_VERSION, global/pg_control and its
// system identifier, names and sizes against backup_manifest) are made by
// Restore while it writes; see [Backup.Restore].
func (b *Backup) inspectZip(ctx context.Context, st *scanState) (bool, error) {
	var walArchive *Archive
	for i := range b.Archives {
		if b.Archives[i].Role == RoleWAL {
			walArchive = &b.Archives[i]
		}
	}
	if walArchive == nil {
		return false, nil
	}
	if err := scanHead(ctx, b, &b.Archives[0], st); err != nil {
		return false, err
	}
	if st.backupLabel == nil {
		return false, nil // let the full scan name what is wrong
	}
	label, err := parseBackupLabel(st.backupLabel)
	if err != nil {
		return false, err
	}
	for _, a := range b.Archives {
		if a.Role == RoleTablespace && !st.haveTablespaceMap {
			return false, nil // the locations are links somewhere in base.tar
		}
	}
	st.startSeg = label.StartWALFile
	if err := scanArchive(ctx, b, walArchive, st); err != nil {
		return false, err
	}
	major, sysid, ok := walIdentity(st.walHead)
	if !ok {
		return false, nil
	}
	b.Major, b.PGVersion, b.SystemIdentifier, b.Label = major, strconv.Itoa(major), sysid, label
	// backup_label is written with the data directory's file mode
	// (pg_file_create_mode), so it says whether the group may read.
	b.GroupAccess = st.groupAccess
	if st.haveTablespaceMap {
		b.tablespaceMap, b.headMap = true, st.tablespaceMap
		if b.Tablespaces, err = parseTablespaceMap(st.tablespaceMap, b.Major); err != nil {
			return false, err
		}
	}
	if err := b.checkTablespaceArchives(); err != nil {
		return false, err
	}
	b.TotalBytes = walArchive.ContentBytes
	if b.Manifest != nil {
		for _, f := range b.Manifest.Files {
			b.TotalBytes += f.Size
		}
	} else {
		for _, a := range b.Archives {
			if a.Role != RoleWAL {
				b.TotalBytes += a.usize
			}
		}
	}
	b.Notes = append(b.Notes, "base.tar was not read through: the zip's central directory and CRC-32s prove it whole; "+
		"Restore checks PG_VERSION, global/pg_control and the backup_manifest sizes as it writes")
	return true, nil
}

// errStopWalk ends a tar walk early.
var errStopWalk = errors.New("stop")

// scanHead reads the entries pg_basebackup puts first in base.tar,
// backup_label and tablespace_map, and stops at the first other one.
func scanHead(ctx context.Context, b *Backup, a *Archive, st *scanState) error {
	raw, err := b.openRaw(a)
	if err != nil {
		return err
	}
	defer raw.Close()
	r, comp, closer, err := tarStream(raw, b.bufSize, false)
	if err != nil {
		return &ArchiveError{Archive: b.archiveName(a), Err: err}
	}
	defer closer.Close()
	a.Compression = comp
	err = walkTar(ctx, r, func(h *tar.Header, tr *tar.Reader, _ int64) error {
		name, err := entryPath(h.Name)
		if err != nil {
			return errStopWalk // Restore refuses the entry by name
		}
		var dst *[]byte
		switch name {
		case ".":
			return nil
		case "backup_label":
			dst = &st.backupLabel
			st.groupAccess = h.Mode&0o040 != 0
		case "tablespace_map":
			dst = &st.tablespaceMap
			st.haveTablespaceMap = true
		default:
			return errStopWalk
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA || h.Size > 1<<20 {
			return errStopWalk
		}
		data, err := io.ReadAll(tr)
		*dst = data
		return err
	})
	if err != nil && !errors.Is(err, errStopWalk) {
		return &ArchiveError{Archive: b.archiveName(a), Err: err}
	}
	return nil
}

// scanState collects what the archives of one candidate hold.
type scanState struct {
	sizes map[string]int64 // regular files by data-directory path
	algs  map[string]string
	sums  map[string]string
	wal   map[string]Role // WAL file name -> archive it is in

	pgVersion, backupLabel, pgControl, tablespaceMap []byte
	haveTablespaceMap                                bool
	groupAccess                                      bool
	links                                            map[uint32]string

	startSeg string // when set, keep the first bytes of this WAL segment
	walHead  []byte
}

func scanArchive(ctx context.Context, b *Backup, a *Archive, st *scanState) error {
	raw, err := b.openRaw(a)
	if err != nil {
		return err
	}
	defer raw.Close()
	r, comp, closer, err := tarStream(raw, b.bufSize, st.sums == nil)
	if err != nil {
		return &ArchiveError{Archive: b.archiveName(a), Err: err}
	}
	defer closer.Close()
	a.Compression = comp
	if comp != CompressionNone {
		r = newReadAhead(r, b.bufSize)
		defer r.(io.Closer).Close()
	}
	hashBuf := []byte(nil)
	err = walkTar(ctx, r, func(h *tar.Header, tr *tar.Reader, _ int64) error {
		name, err := entryPath(h.Name)
		if err != nil {
			return &UnsafeEntryError{Archive: b.archiveName(a), Entry: h.Name, Reason: err.Error()}
		}
		a.Entries++
		if (h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA) && !skippedEntry(a.Role, name) {
			a.ContentBytes += h.Size
		}
		full := name
		switch a.Role {
		case RoleTablespace:
			full = "pg_tblspc/" + strconv.FormatUint(uint64(a.OID), 10) + "/" + name
		case RoleWAL:
			full = "pg_wal/" + name
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
		case tar.TypeSymlink:
			if a.Role == RoleBase {
				if oid, ok := tablespaceLink(name); ok {
					st.links[oid] = h.Linkname
				}
			}
			return nil
		default:
			return nil
		}
		if skippedEntry(a.Role, name) {
			return nil
		}
		st.sizes[full] = h.Size
		if a.Role == RoleWAL || strings.HasPrefix(name, "pg_wal/") || strings.HasPrefix(name, "pg_xlog/") {
			if isWALFile(path.Base(name)) && !strings.Contains(strings.TrimPrefix(strings.TrimPrefix(name, "pg_wal/"), "pg_xlog/"), "/") {
				st.wal[path.Base(name)] = a.Role
			}
		}
		if a.Role == RoleWAL && st.startSeg != "" && name == st.startSeg && st.walHead == nil {
			head := make([]byte, walLongHeaderLen)
			n, err := io.ReadFull(tr, head)
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
				return err
			}
			st.walHead = head[:n]
			return nil // no checksums in this mode (see inspectZip)
		}
		var small *[]byte
		if a.Role == RoleBase {
			switch name {
			case "PG_VERSION":
				small = &st.pgVersion
				st.groupAccess = h.Mode&0o040 != 0
			case "backup_label":
				small = &st.backupLabel
			case "global/pg_control":
				small = &st.pgControl
			case "tablespace_map":
				small = &st.tablespaceMap
				st.haveTablespaceMap = true
			}
		}
		if small != nil {
			if h.Size > 1<<20 {
				return fmt.Errorf("%s is %d bytes, too large", name, h.Size)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			*small = data
			if st.sums != nil {
				return st.hash(full, data)
			}
			return nil
		}
		if st.sums != nil {
			if hashBuf == nil {
				hashBuf = make([]byte, 256<<10)
			}
			return st.hashReader(full, tr, hashBuf)
		}
		return nil
	})
	// Read to the end: a decoder checks its trailer there, and a zip
	// entry its CRC-32, which the tar's end-of-archive blocks come before.
	if err == nil && (comp != CompressionNone || b.Layout == LayoutZip) {
		err = drain(r, make([]byte, 64<<10))
	}
	if err != nil {
		var ue *UnsafeEntryError
		if errors.As(err, &ue) || ctx.Err() != nil {
			return err
		}
		return &ArchiveError{Archive: b.archiveName(a), Err: err}
	}
	return nil
}

func (st *scanState) hash(p string, data []byte) error {
	h, _ := newChecksum(st.algs[p])
	if h == nil {
		return nil
	}
	h.Write(data)
	st.sums[p] = fmt.Sprintf("%x", h.Sum(nil))
	return nil
}

func (st *scanState) hashReader(p string, r io.Reader, buf []byte) error {
	h, _ := newChecksum(st.algs[p])
	if h == nil {
		return nil
	}
	if _, err := io.CopyBuffer(h, r, buf); err != nil {
		return err
	}
	st.sums[p] = fmt.Sprintf("%x", h.Sum(nil))
	return nil
}

// skippedEntry reports the entries Restore leaves out: a server's lock file
// and command line, which pg_basebackup itself excludes.
func skippedEntry(role Role, name string) bool {
	return role == RoleBase && (name == "postmaster.pid" || name == "postmaster.opts")
}

// tablespaceLink reports whether name is pg_tblspc/<oid>.
func tablespaceLink(name string) (uint32, bool) {
	rest, ok := strings.CutPrefix(name, "pg_tblspc/")
	if !ok {
		return 0, false
	}
	oid, err := strconv.ParseUint(rest, 10, 32)
	return uint32(oid), err == nil
}

// learn fills the backup's identity from what base.tar held.
func (b *Backup) learn(st *scanState) error {
	if st.pgVersion == nil {
		return reasonf("base.tar has no PG_VERSION: not a backup of a data directory")
	}
	major, text, err := parsePGVersion(st.pgVersion)
	if err != nil {
		return err
	}
	b.Major, b.PGVersion = major, text
	if st.pgControl == nil {
		return reasonf("base.tar has no global/pg_control")
	}
	if b.SystemIdentifier, err = systemIdentifier(st.pgControl); err != nil {
		return err
	}
	if st.backupLabel == nil {
		return reasonf("base.tar has no backup_label: not taken with pg_basebackup or the backup API")
	}
	if b.Label, err = parseBackupLabel(st.backupLabel); err != nil {
		return err
	}
	b.GroupAccess = st.groupAccess
	if st.haveTablespaceMap {
		b.tablespaceMap = true
		if b.Tablespaces, err = parseTablespaceMap(st.tablespaceMap, b.Major); err != nil {
			return err
		}
	} else {
		for oid, loc := range st.links {
			b.Tablespaces = append(b.Tablespaces, Tablespace{OID: oid, Location: loc})
		}
	}
	return b.checkTablespaceArchives()
}

// checkTablespaceArchives checks that every tablespace has its archive and
// every tablespace archive its tablespace.
func (b *Backup) checkTablespaceArchives() error {
	sort.Slice(b.Tablespaces, func(i, j int) bool { return b.Tablespaces[i].OID < b.Tablespaces[j].OID })
	for _, ts := range b.Tablespaces {
		found := false
		for _, a := range b.Archives {
			found = found || (a.Role == RoleTablespace && a.OID == ts.OID)
		}
		if !found {
			return reasonf("tablespace %d (%s) has no %d.tar", ts.OID, ts.Location, ts.OID)
		}
	}
	for _, a := range b.Archives {
		if a.Role != RoleTablespace {
			continue
		}
		known := false
		for _, ts := range b.Tablespaces {
			known = known || ts.OID == a.OID
		}
		if !known {
			return reasonf("%s is not a tablespace of this backup (no pg_tblspc/%d link nor tablespace_map line)", a.Name, a.OID)
		}
	}
	return nil
}

// chooseWAL decides where the WAL the backup needs comes from.
func (b *Backup) chooseWAL(st *scanState, opts Options) error {
	seg := b.Label.StartWALFile
	hasWALArchive := false
	for _, a := range b.Archives {
		hasWALArchive = hasWALArchive || a.Role == RoleWAL
	}
	role, inBackup := st.wal[seg]
	switch {
	case inBackup && role == RoleWAL:
		b.WAL = WALInArchive
	case inBackup:
		b.WAL = WALInBase
	case opts.StreamWhenNoWAL:
		b.WAL = WALStream
	case opts.WALPath != "":
		b.WAL = WALFromPath
	case hasWALArchive:
		return reasonf("WAL missing: pg_wal.tar lacks %s, the segment the backup starts in; provide WALPath or set StreamWhenNoWAL", seg)
	default:
		return reasonf("WAL missing: segment %s (backup start) is neither in pg_wal.tar nor in base.tar; provide WALPath or set StreamWhenNoWAL", seg)
	}
	if opts.StreamWhenNoWAL {
		if opts.WALPath != "" {
			b.Notes = append(b.Notes, "WALPath "+opts.WALPath+" ignored: StreamWhenNoWAL takes precedence")
		}
		return nil
	}
	if opts.WALPath == "" {
		return nil
	}
	files, size, err := listWALPath(opts.WALPath)
	if err != nil {
		return err
	}
	if b.WAL == WALFromPath {
		found := false
		for _, f := range files {
			found = found || filepath.Base(f) == seg
		}
		if !found {
			return reasonf("WAL missing: segment %s (backup start) is not in the backup nor in WALPath %s", seg, opts.WALPath)
		}
	}
	b.WALPath, b.walPathFiles = opts.WALPath, files
	b.TotalBytes += size
	return nil
}

func listWALPath(dir string) ([]string, int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, 0, &PermissionError{Path: dir, Need: "read+execute", Err: err}
		}
		return nil, 0, fmt.Errorf("backupsel: WAL path: %w", err)
	}
	var files []string
	var size int64
	for _, e := range entries {
		if !e.Type().IsRegular() || !isWALFile(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		info, err := e.Info()
		if err != nil {
			return nil, 0, fmt.Errorf("backupsel: WAL path: %w", err)
		}
		f, err := os.Open(p)
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return nil, 0, &PermissionError{Path: p, Need: "read", Err: err}
			}
			return nil, 0, fmt.Errorf("backupsel: WAL path: %w", err)
		}
		f.Close()
		files = append(files, p)
		size += info.Size()
	}
	return files, size, nil
}

// archiveName names an archive for messages: the file, or zip:entry.
func (b *Backup) archiveName(a *Archive) string {
	if b.Layout == LayoutZip {
		return b.Location + ":" + a.path
	}
	return a.path
}
