package backupsel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Manifest is a parsed backup_manifest (PostgreSQL 13+; version 2 from 17
// adds the system identifier).
type Manifest struct {
	Version          int
	SystemIdentifier uint64 // 0 in version 1 manifests
	Files            []ManifestFile
	WALRanges        []WALRange
}

// ManifestFile is one file the backup holds, by its path in the data
// directory (tablespace files under pg_tblspc/<oid>/).
type ManifestFile struct {
	Path      string
	Size      int64
	Algorithm string // NONE, CRC32C, SHA224, SHA256, SHA384, SHA512
	Checksum  string // lower-case hex, empty for NONE
}

// WALRange is the WAL a backup needs to become consistent.
type WALRange struct {
	Timeline uint32
	StartLSN string
	EndLSN   string
}

type manifestJSON struct {
	Version          int    `json:"PostgreSQL-Backup-Manifest-Version"`
	SystemIdentifier uint64 `json:"System-Identifier"`
	Files            []struct {
		Path        string `json:"Path"`
		EncodedPath string `json:"Encoded-Path"`
		Size        int64  `json:"Size"`
		Algorithm   string `json:"Checksum-Algorithm"`
		Checksum    string `json:"Checksum"`
	} `json:"Files"`
	WALRanges []struct {
		Timeline uint32 `json:"Timeline"`
		StartLSN string `json:"Start-LSN"`
		EndLSN   string `json:"End-LSN"`
	} `json:"WAL-Ranges"`
	ManifestChecksum string `json:"Manifest-Checksum"`
}

// ParseManifest parses a backup_manifest and checks its own SHA-256 checksum,
// which covers every byte up to the line holding "Manifest-Checksum".
func ParseManifest(data []byte) (*Manifest, error) {
	var mj manifestJSON
	if err := json.Unmarshal(data, &mj); err != nil {
		return nil, fmt.Errorf("backup_manifest: %w", err)
	}
	if mj.Version < 1 || mj.Version > 2 {
		return nil, fmt.Errorf("backup_manifest: unsupported version %d", mj.Version)
	}
	// As PostgreSQL's parse_manifest.c: the checksum line is the last line;
	// everything before it is covered.
	trimmed := bytes.TrimRight(data, "\n")
	i := bytes.LastIndexByte(trimmed, '\n')
	if i < 0 || mj.ManifestChecksum == "" {
		return nil, errors.New("backup_manifest: no Manifest-Checksum line")
	}
	sum := sha256.Sum256(data[:i+1])
	if hex.EncodeToString(sum[:]) != strings.ToLower(mj.ManifestChecksum) {
		return nil, errors.New("backup_manifest: its own checksum does not match (damaged or cut short)")
	}
	m := &Manifest{Version: mj.Version, SystemIdentifier: mj.SystemIdentifier}
	for _, f := range mj.Files {
		p := f.Path
		if f.EncodedPath != "" {
			raw, err := hex.DecodeString(f.EncodedPath)
			if err != nil {
				return nil, fmt.Errorf("backup_manifest: bad Encoded-Path %q: %w", f.EncodedPath, err)
			}
			p = string(raw)
		}
		alg := strings.ToUpper(f.Algorithm)
		if alg == "" {
			alg = "NONE"
		}
		if _, err := newChecksum(alg); err != nil {
			return nil, fmt.Errorf("backup_manifest: %s: %w", p, err)
		}
		m.Files = append(m.Files, ManifestFile{Path: p, Size: f.Size, Algorithm: alg, Checksum: strings.ToLower(f.Checksum)})
	}
	for _, w := range mj.WALRanges {
		m.WALRanges = append(m.WALRanges, WALRange(w))
	}
	return m, nil
}

// crc32cLE is PostgreSQL's CRC-32C as the manifest prints it: the uint32 in
// the byte order of the machine that wrote it (little-endian on x86 and ARM).
type crc32cLE struct{ hash.Hash32 }

func (c crc32cLE) Sum(b []byte) []byte { return binary.LittleEndian.AppendUint32(b, c.Sum32()) }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func newChecksum(alg string) (hash.Hash, error) {
	switch alg {
	case "NONE":
		return nil, nil
	case "CRC32C":
		return crc32cLE{crc32.New(castagnoli)}, nil
	case "SHA224":
		return sha256.New224(), nil
	case "SHA256":
		return sha256.New(), nil
	case "SHA384":
		return sha512.New384(), nil
	case "SHA512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unknown checksum algorithm %q", alg)
}

// manifestIgnored are paths pg_verifybackup ignores in a data directory:
// they are written or changed after the backup by design.
func manifestIgnored(p string) bool {
	switch p {
	case "backup_manifest", "postgresql.auto.conf", "recovery.signal", "standby.signal", "pg_wal", "pg_xlog":
		return true
	}
	return strings.HasPrefix(p, "pg_wal/") || strings.HasPrefix(p, "pg_xlog/")
}

// ManifestMismatch is one difference between a manifest and the files.
type ManifestMismatch struct {
	Path   string
	Reason string
}

// ManifestError lists the differences found between a manifest and a backup
// or a restored directory.
type ManifestError struct {
	Where      string
	Mismatches []ManifestMismatch
}

func (e *ManifestError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "backupsel: %s disagrees with backup_manifest in %d place(s)", e.Where, len(e.Mismatches))
	for i, m := range e.Mismatches {
		if i == 10 {
			fmt.Fprintf(&b, "; and %d more", len(e.Mismatches)-10)
			break
		}
		fmt.Fprintf(&b, "; %s: %s", m.Path, m.Reason)
	}
	return b.String()
}

// compare checks found (path -> size, and checksums when sums is not nil)
// against the manifest.
func (m *Manifest) compare(where string, sizes map[string]int64, sums map[string]string) error {
	var mm []ManifestMismatch
	listed := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		listed[f.Path] = true
		size, ok := sizes[f.Path]
		switch {
		case !ok:
			mm = append(mm, ManifestMismatch{f.Path, "listed in backup_manifest but missing"})
		case size != f.Size:
			mm = append(mm, ManifestMismatch{f.Path, fmt.Sprintf("size %d, backup_manifest says %d", size, f.Size)})
		case sums != nil && f.Algorithm != "NONE" && sums[f.Path] != f.Checksum:
			mm = append(mm, ManifestMismatch{f.Path, fmt.Sprintf("%s checksum %s, backup_manifest says %s", f.Algorithm, sums[f.Path], f.Checksum)})
		}
	}
	for p := range sizes {
		if !listed[p] && !manifestIgnored(p) {
			mm = append(mm, ManifestMismatch{p, "present but not in backup_manifest"})
		}
	}
	if len(mm) == 0 {
		return nil
	}
	sort.Slice(mm, func(i, j int) bool { return mm[i].Path < mm[j].Path })
	return &ManifestError{Where: where, Mismatches: mm}
}

func (m *Manifest) algorithms() map[string]string {
	a := make(map[string]string, len(m.Files))
	for _, f := range m.Files {
		a[f.Path] = f.Algorithm
	}
	return a
}

// VerifyDir checks a restored data directory against the manifest: every
// listed file present with its size and checksum, and no unlisted file
// (except those pg_verifybackup also ignores: pg_wal, backup_manifest,
// postgresql.auto.conf, recovery.signal, standby.signal) and the paths in
// skip (RestoreResult.Rewritten). Tablespaces are followed through their
// pg_tblspc links.
func (m *Manifest) VerifyDir(ctx context.Context, dir string, skip ...string) error {
	algs := m.algorithms()
	sizes := map[string]int64{}
	sums := map[string]string{}
	buf := make([]byte, 256<<10)
	var walk func(root, prefix string) error
	walk = func(root, prefix string) error {
		return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			rel = path.Join(prefix, filepath.ToSlash(rel))
			if rel == "." || rel == "" {
				return nil
			}
			if d.Type()&fs.ModeSymlink != 0 {
				if strings.HasPrefix(rel, "pg_tblspc/") && strings.Count(rel, "/") == 1 {
					target, err := filepath.EvalSymlinks(p)
					if err != nil {
						return err
					}
					return walk(target, rel)
				}
				sizes[rel] = -1
				return nil
			}
			if d.IsDir() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			sizes[rel] = info.Size()
			if h, _ := newChecksum(algs[rel]); h != nil {
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				_, err = io.CopyBuffer(h, f, buf)
				f.Close()
				if err != nil {
					return err
				}
				sums[rel] = hex.EncodeToString(h.Sum(nil))
			}
			return nil
		})
	}
	if err := walk(dir, ""); err != nil {
		return fmt.Errorf("backupsel: verify %s: %w", dir, err)
	}
	err := m.compare(dir, sizes, sums)
	var me *ManifestError
	if len(skip) == 0 || !errors.As(err, &me) {
		return err
	}
	kept := me.Mismatches[:0]
	for _, x := range me.Mismatches {
		if !slices.Contains(skip, x.Path) {
			kept = append(kept, x)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	me.Mismatches = kept
	return me
}
