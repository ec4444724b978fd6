package backupsel

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/pgstage/pgstage/internal/pathx"
)

// prepareTablespaces chooses and prepares each tablespace's directory. The
// locations come from the backup, which is not trusted to name directories
// to write into (or to clear).
func (j *restoreJob) prepareTablespaces(context.Context) error {
	root := j.res.DataDir
	tsDir := j.opts.TablespaceDir
	if tsDir == "" {
		tsDir = root + ".tablespaces"
	}
	tsDir, err := filepath.Abs(tsDir)
	if err != nil {
		return fmt.Errorf("backupsel: %w", err)
	}
	j.x.tsDest = map[uint32]string{}
	for _, ts := range j.b.Tablespaces {
		oid := strconv.FormatUint(uint64(ts.OID), 10)
		dest, mapped := j.opts.TablespaceMapping[ts.Location]
		if !mapped {
			dest = filepath.Join(tsDir, oid)
		}
		if !filepath.IsAbs(dest) {
			return fmt.Errorf("backupsel: tablespace %s: mapped location %q is not absolute", oid, dest)
		}
		dest = filepath.Clean(dest)
		// Compared as written and as the kernel will walk them: a
		// symbolic link on either path can put one inside the other.
		rd, rr := resolved(dest), resolved(root)
		if pathx.Within(dest, root) || pathx.Within(root, dest) || pathx.Within(rd, rr) || pathx.Within(rr, rd) {
			return fmt.Errorf("backupsel: tablespace %s (source location %s): destination %s is inside or above the data directory %s; set RestoreOptions.TablespaceMapping or TablespaceDir elsewhere",
				oid, ts.Location, dest, root)
		}
		j.moved = j.moved || dest != ts.Location
		// Overwrite clears only directories under the tablespace directory
		// the caller chose (or the default beside the data directory);
		// a mapped destination elsewhere must be empty.
		clear := j.opts.Overwrite && pathx.Within(dest, tsDir)
		if err := j.x.tree.prepareDir(dest, clear, "tablespace "+oid+" directory"); err != nil {
			return err
		}
		j.x.tsDest[ts.OID] = dest
		j.res.Tablespaces = append(j.res.Tablespaces, Tablespace{OID: ts.OID, Location: dest})
	}
	return nil
}

// linkTablespaces makes the pg_tblspc/<oid> links base.tar did not hold
// (a backup with tablespace_map has none).
func (j *restoreJob) linkTablespaces(context.Context) error {
	for _, ts := range j.res.Tablespaces {
		link := filepath.Join(j.res.DataDir, "pg_tblspc", strconv.FormatUint(uint64(ts.OID), 10))
		if j.x.tree.links[link] {
			continue
		}
		if err := j.x.tree.mkdirAll(filepath.Dir(link)); err != nil {
			return err
		}
		if err := j.x.tree.symlink(ts.Location, link); err != nil {
			return fmt.Errorf("backupsel: %w", err)
		}
	}
	return nil
}

// rewriteTablespaceMap points tablespace_map at the restored locations:
// PostgreSQL recreates the pg_tblspc links from it at its first start.
func (j *restoreJob) rewriteTablespaceMap(context.Context) error {
	if !j.b.tablespaceMap || !j.moved {
		return nil
	}
	data, err := formatTablespaceMap(j.res.Tablespaces, j.b.Major)
	if err != nil {
		return fmt.Errorf("backupsel: %w", err)
	}
	if err := j.x.fm.writeBytes(filepath.Join(j.res.DataDir, "tablespace_map"), data); err != nil {
		return fmt.Errorf("backupsel: %w", err)
	}
	j.res.Rewritten = append(j.res.Rewritten, "tablespace_map")
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
