package backupsel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

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
		layout, t, ok, why := parseName(name)
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
	return nil, &noBackupError{path: root, candidates: append(tried, passed...)}
}

var archiveRe = regexp.MustCompile(`^(base|pg_wal|[0-9]+)\.tar(\.gz|\.lz4|\.zst)?$`)
