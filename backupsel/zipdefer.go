package backupsel

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

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
	b.Major, b.PGVersion, b.SystemIdentifier, b.Label = major, major.String(), sysid, label
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

// contentError reports whether a restore error is about what the archive
// holds (an unsafe entry, a damaged or cut stream) rather than about writing
// the target (an error of the filesystem, which names a path).
func contentError(err error) bool {
	if errors.Is(err, ErrUnsafeEntry) {
		return true
	}
	var pe *fs.PathError
	var le *os.LinkError
	var errno syscall.Errno
	return !errors.As(err, &pe) && !errors.As(err, &le) && !errors.As(err, &errno)
}

// checkDeferred makes the checks a deferred Select left to Restore (see
// Backup.Deferred), on what the archives held.
func (b *Backup) checkDeferred(k *kept) error {
	switch {
	case k.tsMap != nil && b.headMap == nil:
		return errors.New("base.tar holds a tablespace_map after its first entries, where pg_basebackup never puts it")
	case !bytes.Equal(k.tsMap, b.headMap):
		return errors.New("base.tar's tablespace_map differs from the one at its head")
	}
	if k.pgVersion == nil {
		return errors.New("base.tar has no PG_VERSION: not a backup of a data directory")
	}
	major, err := parsePGVersion(k.pgVersion)
	if err != nil {
		return err
	}
	if major != b.Major {
		return fmt.Errorf("PG_VERSION says %s, but the backup's WAL was written by PostgreSQL %s", major, b.PGVersion)
	}
	id, err := systemIdentifier(k.pgControl)
	if err != nil {
		return err
	}
	if id != b.SystemIdentifier {
		return fmt.Errorf("global/pg_control has system identifier %d, but the backup's WAL belongs to system %d", id, b.SystemIdentifier)
	}
	if b.Manifest != nil {
		return b.Manifest.compare(b.Name, k.sizes, nil)
	}
	return nil
}
