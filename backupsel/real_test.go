package backupsel_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgstage/pgstage/backupsel"
	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/internal/pgver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// layoutOf maps the harness's layouts to ours.
var layoutOf = map[pgtest.Layout]backupsel.Layout{
	pgtest.LayoutFolder: backupsel.LayoutFolder,
	pgtest.LayoutDirect: backupsel.LayoutDirect,
	pgtest.LayoutZip:    backupsel.LayoutZip,
}

// baseCompression is the compression of base.tar in each harness form.
var baseCompression = map[pgtest.Form]backupsel.Compression{
	pgtest.FormStream: backupsel.CompressionNone, pgtest.FormFetch: backupsel.CompressionNone,
	pgtest.FormGzip: backupsel.CompressionGzip, pgtest.FormLZ4: backupsel.CompressionLZ4,
	pgtest.FormZstd: backupsel.CompressionZstd, pgtest.FormServer: backupsel.CompressionNone,
	pgtest.FormServerGzip: backupsel.CompressionGzip,
}

// layOut copies the raw backup files in dir into the other two layouts, as
// the harness would (zip made with the zip command, files at its root), so
// one pg_basebackup serves all three layouts.
func layOut(t *testing.T, raw string, files []string, when time.Time) map[pgtest.Layout]string {
	t.Helper()
	paths := map[pgtest.Layout]string{}
	for _, l := range pgtest.Layouts {
		paths[l] = pgtest.TempDir(t)
	}
	folder := filepath.Join(paths[pgtest.LayoutFolder], "PostgreSQL_T"+when.Format("20060102150405"))
	for _, cmd := range [][]string{
		// Hard links: the folder and direct layouts hold the same bytes.
		{"cp", "-al", raw, folder},
		append(append([]string{"cp", "-l"}, prefixed(raw, files)...), paths[pgtest.LayoutDirect]),
	} {
		out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	zip := exec.Command("zip", append([]string{"-q", filepath.Join(paths[pgtest.LayoutZip], "PostgreSQL_T"+when.Format("20060102")+".zip")}, files...)...)
	zip.Dir = raw
	out, err := zip.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return paths
}

func prefixed(dir string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = filepath.Join(dir, n)
	}
	return out
}

// TestRealBackups takes real backups of every major in every form the
// harness offers, lays each out in the three layouts, and for each: Select
// (with checksum verification), Restore, compare the restored files with
// backup_manifest (ours, and Debian's pg_verifybackup for 13-15 manifests),
// then start the restored directory with that major's postgres and read a row
// written before the backup (and one in the tablespace).
func TestRealBackups(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		p := pgtest.StartPrimary(t, major, pgtest.Options{Tablespace: true})
		id := p.InsertRows(t, 10)
		sysid := p.SystemIdentifier(t)
		// The WAL page magic table, checked against this major's own WAL:
		// the first page of the segment last flushed has the long header.
		seg := p.QueryString(t, "SELECT pg_walfile_name(pg_current_wal_flush_lsn())")
		walDir := "pg_wal"
		if major < 10 {
			walDir = "pg_xlog"
		}
		f, err := os.Open(filepath.Join(p.DataDir, walDir, seg))
		require.NoError(t, err)
		head := make([]byte, 40)
		_, err = io.ReadFull(f, head)
		f.Close()
		require.NoError(t, err)
		walMajor, walSysID, ok := backupsel.WALIdentity(head)
		require.True(t, ok, "page magic %#04x of PostgreSQL %d not known", binary.LittleEndian.Uint16(head), major)
		assert.Equal(t, pgver.FromNum(major*10000), walMajor)
		assert.Equal(t, sysid, walSysID)
		user := pgtest.OSUser(t)
		for _, form := range pgtest.Forms(major) {
			t.Run(form.String(), func(t *testing.T) {
				var raw string
				var files []string
				keep := pgtest.TempDir(t)
				b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Layout: pgtest.LayoutFolder, Form: form, Extra: func(dir string) {
					raw = filepath.Join(keep, "raw")
					out, err := exec.Command("cp", "-a", dir, raw).CombinedOutput()
					require.NoError(t, err, "%s", out)
				}})
				files = b.Files
				paths := layOut(t, raw, files, time.Now())
				digests := map[pgtest.Layout]map[string]uint32{}
				for _, layout := range pgtest.Layouts {
					t.Run(layout.String(), func(t *testing.T) {
						ctx := context.Background()
						// Checksums read everything: verify them where the
						// bytes take a different path (folder: files; zip:
						// inflated entries), not again for the direct layout.
						sel, err := backupsel.Select(ctx, paths[layout], backupsel.Options{Verify: layout != pgtest.LayoutDirect, Settle: 50 * time.Millisecond})
						require.NoError(t, err)
						assert.Equal(t, layoutOf[layout], sel.Layout)
						assert.Equal(t, pgver.FromNum(major*10000), sel.Major)
						assert.Equal(t, sysid, sel.SystemIdentifier, "system identifier from pg_control")
						assert.Equal(t, baseCompression[form], sel.Archives[0].Compression, "base archive %s", sel.Archives[0].Name)
						require.Len(t, sel.Tablespaces, 1)
						if major >= 13 {
							require.NotNil(t, sel.Manifest, "13+ backups carry backup_manifest")
						}
						hasWALArchive := false
						for _, a := range sel.Archives {
							hasWALArchive = hasWALArchive || a.Role == backupsel.RoleWAL
						}
						compressed := baseCompression[form] != backupsel.CompressionNone
						if layout == pgtest.LayoutDirect { // selected without Verify
							assert.Equal(t, hasWALArchive && compressed, sel.Deferred, "deferred exactly when compressed, with pg_wal.tar")
						} else {
							assert.False(t, sel.Deferred, "Verify reads everything")
						}
						if layout == pgtest.LayoutZip || layout == pgtest.LayoutFolder && compressed {
							// Without Verify, a zip or a compressed folder
							// backup with pg_wal.tar is deferred: identity
							// from the WAL header, the content checks in
							// Restore (which restores it).
							quick, err := backupsel.Select(ctx, paths[layout], backupsel.Options{Settle: 50 * time.Millisecond})
							require.NoError(t, err)
							assert.Equal(t, hasWALArchive, quick.Deferred, "deferred exactly when the WAL is in pg_wal.tar")
							assert.Equal(t, sel.Major, quick.Major)
							assert.Equal(t, sel.PGVersion, quick.PGVersion)
							assert.Equal(t, sel.SystemIdentifier, quick.SystemIdentifier)
							assert.Equal(t, sel.GroupAccess, quick.GroupAccess)
							assert.Equal(t, sel.Label, quick.Label)
							assert.Equal(t, sel.Tablespaces, quick.Tablespaces)
							assert.Equal(t, sel.WAL, quick.WAL)
							if !quick.Deferred || quick.Manifest != nil {
								assert.Equal(t, sel.TotalBytes, quick.TotalBytes)
							}
							sel = quick
						}

						dir := pgtest.TempDir(t)
						data, ts := filepath.Join(dir, "data"), filepath.Join(dir, "ts")
						opts := backupsel.RestoreOptions{
							UID: user.UID, GID: user.GID,
							TablespaceMapping: map[string]string{p.TablespaceDir: ts},
						}
						if layout == pgtest.LayoutDirect {
							// Restore reads direct files exactly as folder
							// files (same code path, same bytes here), so
							// one form per major restores them, with the
							// default tablespace destination.
							if form != pgtest.Forms(major)[0] {
								return
							}
							opts.TablespaceMapping = nil
							ts = filepath.Join(data+".tablespaces", fmt.Sprint(sel.Tablespaces[0].OID))
						}
						res, err := sel.Restore(ctx, data, opts)
						require.NoError(t, err)
						assert.Equal(t, ts, res.Tablespaces[0].Location)
						if !sel.Deferred || sel.Manifest != nil {
							assert.Equal(t, sel.TotalBytes, res.Bytes)
						}
						if sel.Manifest != nil {
							require.NoError(t, sel.Manifest.VerifyDir(ctx, data, res.Rewritten...))
						}
						// Debian's tool as an independent check, once per form:
						// folder and zip restore the same bytes (checked below).
						if major >= 13 && major <= 15 && layout == pgtest.LayoutFolder {
							args := []string{data}
							if major < 15 {
								args = append(args, "-n") // pg_waldump 15 cannot read older WAL
							}
							for _, r := range res.Rewritten {
								args = append(args, "-i", r)
							}
							out, err := exec.Command(filepath.Join(pgtest.ClientBinDir(t), "pg_verifybackup"), args...).CombinedOutput()
							require.NoError(t, err, "pg_verifybackup: %s", out)
						}
						if layout == pgtest.LayoutFolder {
							assert.Equal(t, tarTree(t, sel, filepath.Join(dir, "tar"), res.Rewritten), restoredTree(t, data, ts, res),
								"Restore makes every file, mode and size tar -xf makes")
						}
						digests[layout] = treeDigest(t, map[string]string{"data": data, "ts": ts})
						if layout != pgtest.LayoutZip {
							return
						}
						// Folder and zip restore the same bytes (checked
						// below); starting one of them per form keeps the
						// matrix within its time budget.
						startAndRead(t, major, dir, data, id)
					})
				}
				assert.Equal(t, digests[pgtest.LayoutFolder], digests[pgtest.LayoutZip], "zip restores the same files as folder")
				if d, ok := digests[pgtest.LayoutDirect]; ok {
					assert.Equal(t, digests[pgtest.LayoutFolder], d, "direct restores the same files as folder")
				}
			})
		}
	})
}

// treeDigest maps every file under each root to a CRC, keyed by the root's
// name and the file's path inside it. Links and tablespace_map name a
// per-restore tablespace directory, so they count by presence only.
func treeDigest(t *testing.T, roots map[string]string) map[string]uint32 {
	t.Helper()
	out := map[string]uint32{}
	for name, root := range roots {
		require.NoError(t, filepath.Walk(root, digestInto(root, name, out)))
	}
	return out
}

func digestInto(dir, name string, out map[string]uint32) filepath.WalkFunc {
	return func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.Join(name, rel)
		switch {
		case info.Mode()&os.ModeSymlink != 0 || filepath.Base(p) == "tablespace_map":
			out[rel] = 0
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = crc32.ChecksumIEEE(data)
		}
		return nil
	}
}

// startAndRead starts the restored data directory with the major's own
// postgres (crash recovery from backup_label, Unix socket only) and reads the
// row written before the backup and the row in the tablespace.
func startAndRead(t *testing.T, major int, dir, data string, id int64) {
	t.Helper()
	pgctl := filepath.Join(pgtest.BinDir(t, major), "pg_ctl")
	logFile := filepath.Join(dir, "restored.log")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := pgtest.Command(ctx, pgctl, "-D", data, "-l", logFile, "-w", "-t", "90", "start",
		"-o", fmt.Sprintf("-p 5432 -k %s -c listen_addresses=''", dir)).CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(logFile)
		t.Fatalf("start restored PostgreSQL %d: %v\n%s\n%s", major, err, out, log)
	}
	t.Cleanup(func() {
		pgtest.Command(context.Background(), pgctl, "-D", data, "-m", "immediate", "-w", "stop").Run()
	})
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=5432 user=postgres dbname=postgres sslmode=disable", dir))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var note string
	require.NoError(t, conn.QueryRow(ctx, "SELECT note FROM pgstage_rows WHERE id = $1", id).Scan(&note))
	assert.Equal(t, fmt.Sprintf("row %d", id), note)
	require.NoError(t, conn.QueryRow(ctx, "SELECT note FROM pgstage_ts_rows LIMIT 1").Scan(&note))
	assert.Equal(t, "in a tablespace", note)
	if log, err := os.ReadFile(logFile); err == nil {
		assert.False(t, strings.Contains(string(log), "PANIC"), "restored server log:\n%s", log)
	}
}

// tarTree extracts the backup's archives with GNU tar, as the manual
// procedure does (base.tar into the data directory, pg_wal.tar into its
// pg_wal, each tablespace archive into a directory of its own), and lists
// what it made, as restoredTree does.
func tarTree(t *testing.T, b *backupsel.Backup, dir string, sizeless []string) map[string]string {
	t.Helper()
	data, ts := filepath.Join(dir, "data"), filepath.Join(dir, "ts")
	tool := map[backupsel.Compression]string{backupsel.CompressionGzip: "gzip", backupsel.CompressionLZ4: "lz4", backupsel.CompressionZstd: "zstd"}
	for _, a := range b.Archives {
		into := data
		switch a.Role {
		case backupsel.RoleWAL:
			into = filepath.Join(data, "pg_wal")
		case backupsel.RoleTablespace:
			into = ts
		}
		require.NoError(t, os.MkdirAll(into, 0o700))
		args := []string{"-xf", filepath.Join(b.Location, a.Name), "-C", into}
		if c, ok := tool[a.Compression]; ok {
			args = append([]string{"-I", c}, args...)
		}
		out, err := exec.Command("tar", args...).CombinedOutput()
		require.NoError(t, err, "tar %v: %s", args, out)
	}
	tree := listTree(t, map[string]string{"data": data, "ts": ts}, sizeless)
	for p := range tree {
		if strings.HasPrefix(p, "data/pg_tblspc/") {
			delete(tree, p) // links to the source's location
		}
	}
	return tree
}

// restoredTree lists what Restore made, leaving out what the manual
// procedure does not make: backup_manifest beside the files, and the
// pg_tblspc links (which point elsewhere than tar's). Files Restore
// rewrote on purpose count by type and mode, not size, on both sides.
func restoredTree(t *testing.T, data, ts string, res *backupsel.RestoreResult) map[string]string {
	t.Helper()
	tree := listTree(t, map[string]string{"data": data, "ts": ts}, res.Rewritten)
	delete(tree, "data/backup_manifest")
	for p := range tree {
		if strings.HasPrefix(p, "data/pg_tblspc/") {
			delete(tree, p)
		}
	}
	return tree
}

// listTree maps every entry under each root (keyed by the root's name and
// the path inside it) to its type, permission bits and, for regular files
// not in sizeless, size.
func listTree(t *testing.T, roots map[string]string, sizeless []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, root := range roots {
		require.NoError(t, filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err != nil || p == root {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			desc := fmt.Sprintf("%v", info.Mode())
			if info.Mode().IsRegular() && !slices.Contains(sizeless, rel) {
				desc += fmt.Sprintf(" %d bytes", info.Size())
			}
			out[name+"/"+rel] = desc
			return nil
		}))
	}
	return out
}
