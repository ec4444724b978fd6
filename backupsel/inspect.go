package backupsel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

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
	// A bad backup_manifest stops the walk at once (a compressed base.tar
	// read through could take minutes), and fail names it before what the
	// walk found, as when the manifest was read first; fail also waits for
	// the reading.
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	manifest := b.loadManifest(manifestFile, stop)
	fail := func(err error) (*Backup, error) {
		if merr := manifest(); merr != nil {
			return nil, merr
		}
		return nil, err
	}
	st := newScanState()
	if !opts.Verify {
		if b.Deferred, err = b.inspectDeferred(ctx, st, manifest); err != nil {
			return fail(err)
		}
		if !b.Deferred { // read everything, as for a folder
			st = newScanState()
			for i := range b.Archives {
				b.Archives[i].Entries, b.Archives[i].ContentBytes = 0, 0
			}
		}
	}
	if !b.Deferred {
		if opts.Verify {
			// The walk hashes each file with the manifest's algorithm.
			if err := manifest(); err != nil {
				return nil, err
			}
			if b.Manifest != nil {
				st.algs = b.Manifest.algorithms()
				st.sums = map[string]string{}
			}
		}
		for i := range b.Archives {
			if err := scanArchive(ctx, b, &b.Archives[i], st); err != nil {
				return fail(err)
			}
			b.TotalBytes += b.Archives[i].ContentBytes
		}
		if err := b.learn(st); err != nil {
			return fail(err)
		}
	}
	if err := manifest(); err != nil {
		return nil, err
	}
	if b.Manifest != nil {
		if !b.Deferred {
			if err := b.Manifest.compare(b.Name, st.sizes, st.sums); err != nil {
				return nil, err
			}
		}
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

// loadManifest reads and parses backup_manifest f (nil: none) on a
// goroutine of its own, so that its JSON (3 MB and 0.08 s for the 22,000
// files of bench/RESULTS.md's real backup) is decoded while the archives
// are walked; what goes wrong is also given to stop, to end the walk. The
// returned wait sets b.Manifest and reports what went wrong; it may be
// called any number of times, and every use of b.Manifest in a Select
// comes after one.
func (b *Backup) loadManifest(f *candidateFile, stop context.CancelCauseFunc) (wait func() error) {
	if f == nil {
		return func() error { return nil }
	}
	var (
		m    *Manifest
		raw  []byte
		err  error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		if raw, err = readWhole(b, f.path, 64<<20); err == nil {
			m, err = ParseManifest(raw)
		}
		if err != nil {
			stop(err)
		}
	}()
	return func() error {
		<-done
		if err == nil {
			b.Manifest, b.manifestRaw = m, raw
		}
		return err
	}
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
