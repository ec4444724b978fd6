package backupsel

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// inspectDeferred is Select's way through a zip, or a folder whose base.tar
// is compressed, when checksums are not asked for. Either proves itself
// whole as Restore reads it, so base.tar and the tablespace archives need
// not be decoded here first: a second pass over a large compressed base.tar
// is most of a restore's cost.
//   - A zip: its central directory, which zip writes last, proves the copy
//     complete, and every entry's CRC-32 is checked as it is read.
//   - A compressed archive: the decoder checks the stream's own end (gzip's
//     CRC-32 and length, the frame end and checksums of lz4 and zstd) and
//     the tar's end-of-archive blocks as Restore reads it to the end. A full
//     decode in Select would catch exactly the same damage, no more.
//
// What Select must know before a restore comes from the small parts instead:
//   - backup_label and tablespace_map, the first entries of base.tar
//     (pg_basebackup sends them before the data directory);
//   - the major version and system identifier, from the long page header of
//     the segment the backup starts in, in pg_wal.tar (read whole, as it
//     holds the WAL the backup needs);
//   - that each tablespace archive opens: its magic and first tar header
//     (scanHead stops at the first entry it does not want).
//
// It reports false, having decided nothing, when that is not possible (WAL
// inside base.tar, tablespaces without tablespace_map, a WAL page magic of
// a version it does not know), or when a folder's base.tar is not
// compressed (its headers are read with a seek per file, which is cheap):
// Select then reads every archive through. The checks that need base.tar's
// contents (PG_VERSION, global/pg_control and its system identifier, names
// and sizes against backup_manifest) are made by Restore while it writes,
// and a stream found damaged then is a [*NotWholeError]; see
// [Backup.Restore].
//
// manifest waits for backup_manifest (see loadManifest) before its sizes
// are counted.
func (b *Backup) inspectDeferred(ctx context.Context, st *scanState, manifest func() error) (bool, error) {
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
	if b.Layout != LayoutZip && b.Archives[0].Compression == CompressionNone {
		return false, nil
	}
	if st.backupLabel == nil {
		return false, nil // let the full scan name what is wrong
	}
	label, err := parseBackupLabel(st.backupLabel)
	if err != nil {
		return false, err
	}
	for i, a := range b.Archives {
		if a.Role != RoleTablespace {
			continue
		}
		if !st.haveTablespaceMap {
			return false, nil // the locations are links somewhere in base.tar
		}
		// What is cheap to check: that it opens, its magic and its first
		// tar header (a damaged stream further on is Restore's to find).
		if err := scanHead(ctx, b, &b.Archives[i], newScanState()); err != nil {
			return false, err
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
	if err := manifest(); err != nil {
		return false, err
	}
	if b.Manifest != nil {
		for _, f := range b.Manifest.Files {
			b.TotalBytes += f.Size
		}
	} else {
		for i := range b.Archives {
			if b.Archives[i].Role != RoleWAL {
				b.TotalBytes += b.contentEstimate(&b.Archives[i])
			}
		}
	}
	proof := "its decoder checks the stream whole (trailer, checksums, tar end blocks) as Restore reads it"
	if b.Layout == LayoutZip {
		proof = "the zip's central directory and CRC-32s prove it whole"
	}
	b.Notes = append(b.Notes, b.Archives[0].Name+" was not read through: "+proof+"; "+
		"Restore checks PG_VERSION, global/pg_control and the backup_manifest sizes as it writes")
	return true, nil
}

// contentEstimate is what a deferred Select takes for the content of an
// archive it did not read, without a backup_manifest to say it exactly
// (before PostgreSQL 13): a zip entry's uncompressed size; for a gzip file
// its trailer's length, which is modulo 4 GiB (taken as the first value
// above half the stored size, as deflate never doubles its input); else the
// stored size.
func (b *Backup) contentEstimate(a *Archive) int64 {
	if b.Layout == LayoutZip {
		return a.usize
	}
	if a.Compression != CompressionGzip || a.Size < 18 {
		return a.Size
	}
	f, err := os.Open(a.path)
	if err != nil {
		return a.Size
	}
	defer f.Close()
	var isize [4]byte
	if _, err := f.ReadAt(isize[:], a.Size-4); err != nil {
		return a.Size
	}
	n := int64(binary.LittleEndian.Uint32(isize[:]))
	for n < a.Size/2 {
		n += 1 << 32
	}
	return n
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
		if h.Typeflag != tar.TypeReg || h.Size > 1<<20 {
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
