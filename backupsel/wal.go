package backupsel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

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
