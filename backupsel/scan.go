package backupsel

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// newScanState returns an empty scanState.
func newScanState() *scanState {
	return &scanState{sizes: map[string]int64{}, wal: map[string]Role{}, links: map[uint32]string{}}
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
			return unsafeEntry(b.archiveName(a), h.Name, err.Error())
		}
		a.Entries++
		if h.Typeflag == tar.TypeReg && !skippedEntry(a.Role, name) {
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
		case tar.TypeReg:
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
			return nil // no checksums in this mode (see inspectDeferred)
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
		var ae *ArchiveError
		if errors.As(err, &ae) || ctx.Err() != nil {
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
