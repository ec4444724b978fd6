package backupsel_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/stretchr/testify/require"
)

// fixture describes a synthetic pg_basebackup -F t backup built in tests.
type fixture struct {
	Major       string // PG_VERSION text, default "15"
	SysID       uint64 // default 7300000000000000001
	Compression string // "", "gz", "lz4", "zst"
	WAL         string // "archive" (pg_wal.tar, default), "base" (inside base.tar), "none"
	Manifest    bool
	Group       bool              // files 0640 in the tar
	Files       map[string]string // extra data files (path -> content)
	Tablespace  string            // source location of one tablespace (OID 16400), "" for none
	TSMap       bool              // write tablespace_map (as pg_basebackup -F t does)
	// WALHeader starts the WAL segment with a real long page header (the
	// major's page magic and WALSysID, default SysID), which lets Select
	// defer reading base.tar in a zip; without it the segment is filler.
	WALHeader bool
	WALSysID  uint64
	WALMajor  string // default Major
	// Skew makes backup_manifest list this file one byte longer.
	Skew string
	// NoPGControl leaves global/pg_control out of base.tar.
	NoPGControl bool
}

// fxWALMagic is XLOG_PAGE_MAGIC by major, stated here independently of the
// package's table.
var fxWALMagic = map[string]uint16{"10": 0xD097, "13": 0xD106, "15": 0xD110, "18": 0xD118}

// walSegment returns the fixture's WAL segment.
func (fx fixture) walSegment() []byte {
	seg := bytes.Repeat([]byte{0xd1}, 1<<16)
	if fx.WALHeader {
		copy(seg, make([]byte, 40))
		major := fx.WALMajor
		if major == "" {
			major = fx.Major
		}
		binary.LittleEndian.PutUint16(seg[0:], fxWALMagic[major])
		binary.LittleEndian.PutUint16(seg[2:], 0x0002|0x0004) // XLP_LONG_HEADER|XLP_BKP_REMOVABLE
		binary.LittleEndian.PutUint32(seg[4:], 1)
		binary.LittleEndian.PutUint64(seg[8:], 0x2000000)
		sysid := fx.WALSysID
		if sysid == 0 {
			sysid = fx.SysID
		}
		binary.LittleEndian.PutUint64(seg[24:], sysid)
		binary.LittleEndian.PutUint32(seg[32:], 16<<20)
		binary.LittleEndian.PutUint32(seg[36:], 8192)
	}
	return seg
}

const (
	fxStartSeg = "000000010000000000000002"
	fxOID      = 16400
)

type tarFile struct {
	name, link string
	typ        byte
	body       []byte
}

func (fx fixture) defaults() fixture {
	if fx.Major == "" {
		fx.Major = "15"
	}
	if fx.SysID == 0 {
		fx.SysID = 7300000000000000001
	}
	if fx.WAL == "" {
		fx.WAL = "archive"
	}
	return fx
}

func pgControl(sysid uint64) []byte {
	b := make([]byte, 8192)
	binary.LittleEndian.PutUint64(b, sysid)
	return b
}

func backupLabel() string {
	return "START WAL LOCATION: 0/2000028 (file " + fxStartSeg + ")\n" +
		"CHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n" +
		"START TIME: 2026-11-24 16:00:00 UTC\nLABEL: fixture\nSTART TIMELINE: 1\n"
}

// build returns the archives (file name -> bytes) of the fixture.
func (fx fixture) build(t testing.TB) map[string][]byte {
	t.Helper()
	fx = fx.defaults()
	mode := int64(0o600)
	if fx.Group {
		mode = 0o640
	}
	base := []tarFile{
		{name: "backup_label", body: []byte(backupLabel())},
		{name: "PG_VERSION", body: []byte(fx.Major + "\n")},
		{name: "global/", typ: tar.TypeDir},
		{name: "base/", typ: tar.TypeDir},
		{name: "base/1/", typ: tar.TypeDir},
		{name: "base/1/1259", body: bytes.Repeat([]byte("r"), 8192*3)},
		{name: "postgresql.conf", body: []byte("port = 5432\n")},
		{name: "postmaster.opts", body: []byte("/usr/bin/postgres\n")},
		{name: "pg_wal/", typ: tar.TypeDir},
		{name: "pg_wal/archive_status/", typ: tar.TypeDir},
		{name: "pg_tblspc/", typ: tar.TypeDir},
	}
	var names []string
	for n := range fx.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		base = append(base, tarFile{name: n, body: []byte(fx.Files[n])})
	}
	var ts []tarFile
	if fx.Tablespace != "" {
		base = append(base, tarFile{name: fmt.Sprintf("pg_tblspc/%d", fxOID), typ: tar.TypeSymlink, link: fx.Tablespace})
		if fx.TSMap { // second, after backup_label, as pg_basebackup sends it
			tsMap := tarFile{name: "tablespace_map", body: []byte(fmt.Sprintf("%d %s\n", fxOID, fx.Tablespace))}
			base = append(base[:1], append([]tarFile{tsMap}, base[1:]...)...)
		}
		ts = []tarFile{
			{name: "PG_15_202209061/", typ: tar.TypeDir},
			{name: "PG_15_202209061/5/", typ: tar.TypeDir},
			{name: "PG_15_202209061/5/16401", body: bytes.Repeat([]byte("t"), 8192)},
		}
	}
	seg := fx.walSegment()
	if fx.WAL == "base" {
		base = append(base, tarFile{name: "pg_wal/" + fxStartSeg, body: seg})
	}
	if !fx.NoPGControl {
		base = append(base, tarFile{name: "global/pg_control", body: pgControl(fx.SysID)})
	}
	out := map[string][]byte{}
	ext := map[string]string{"": "", "gz": ".gz", "lz4": ".lz4", "zst": ".zst"}[fx.Compression]
	out["base.tar"+ext] = compress(t, fx.Compression, makeTar(t, base, mode))
	if fx.WAL == "archive" {
		out["pg_wal.tar"+ext] = compress(t, fx.Compression, makeTar(t, []tarFile{{name: fxStartSeg, body: seg}}, mode))
	}
	if ts != nil {
		out[fmt.Sprintf("%d.tar%s", fxOID, ext)] = compress(t, fx.Compression, makeTar(t, ts, mode))
	}
	if fx.Manifest {
		var mf []tarFile
		for _, f := range base {
			// pg_basebackup never sends postmaster.opts; the fixture does, to
			// check Restore skips it, but keeps it out of the manifest.
			if f.typ == 0 && !strings.HasPrefix(f.name, "pg_wal/") && f.name != "postmaster.opts" {
				mf = append(mf, f)
			}
		}
		for _, f := range ts {
			if f.typ == 0 {
				f.name = fmt.Sprintf("pg_tblspc/%d/%s", fxOID, f.name)
				mf = append(mf, f)
			}
		}
		for i := range mf {
			if mf[i].name == fx.Skew {
				mf[i].body = append(append([]byte(nil), mf[i].body...), 'x')
			}
		}
		out["backup_manifest"] = manifestFor(mf)
	}
	return out
}

func makeTar(t testing.TB, files []tarFile, mode int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		typ := f.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: f.name, Linkname: f.link, Typeflag: typ, Mode: mode, Size: int64(len(f.body)),
			ModTime: time.Unix(1700000000, 0), Format: tar.FormatUSTAR}
		if typ != tar.TypeReg {
			h.Size = 0
			h.Mode = mode | 0o100
		}
		require.NoError(t, tw.WriteHeader(h))
		if typ == tar.TypeReg {
			_, err := tw.Write(f.body)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

func compress(t testing.TB, kind string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch kind {
	case "":
		return data
	case "gz":
		w = gzip.NewWriter(&buf)
	case "lz4":
		w = lz4.NewWriter(&buf)
	case "zst":
		zw, err := zstd.NewWriter(&buf)
		require.NoError(t, err)
		w = zw
	}
	_, err := w.Write(data)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// manifestFor writes a backup_manifest as PostgreSQL does (CRC32C checksums,
// the SHA-256 of everything before the last line).
func manifestFor(files []tarFile) []byte {
	var b bytes.Buffer
	b.WriteString("{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n")
	for i, f := range files {
		sum := crc32.Checksum(f.body, crc32.MakeTable(crc32.Castagnoli))
		var le [4]byte
		binary.LittleEndian.PutUint32(le[:], sum)
		sep := ","
		if i == len(files)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "{ \"Path\": %q, \"Size\": %d, \"Last-Modified\": \"2026-11-24 16:00:00 GMT\", \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"%s\" }%s\n",
			f.name, len(f.body), hex.EncodeToString(le[:]), sep)
	}
	b.WriteString("],\n\"WAL-Ranges\": [\n{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }\n],\n")
	sum := sha256.Sum256(b.Bytes())
	fmt.Fprintf(&b, "\"Manifest-Checksum\": \"%s\"}\n", hex.EncodeToString(sum[:]))
	return b.Bytes()
}

// writeFiles writes archives into dir, with an old modification time so the
// settle window does not apply.
func writeFiles(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	old := time.Now().Add(-time.Hour)
	for name, data := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o644))
		require.NoError(t, os.Chtimes(p, old, old))
	}
}

// writeZip writes files at the root of a zip (deflated, as `zip` does).
func writeZip(t testing.TB, zipPath string, files map[string][]byte, prefix string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: prefix + n, Method: zip.Deflate})
		require.NoError(t, err)
		_, err = w.Write(files[n])
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	writeFiles(t, filepath.Dir(zipPath), map[string][]byte{filepath.Base(zipPath): buf.Bytes()})
}

// exampleTB lets examples use the fixture helpers; any failure is fatal.
type exampleTB struct{ testing.TB }

func (exampleTB) Helper()                   {}
func (exampleTB) Errorf(f string, a ...any) { log.Fatalf(f, a...) }
func (exampleTB) FailNow()                  { log.Fatal("fixture failed") }
