package basebackup

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgver"
)

func TestBaseBackupCommand(t *testing.T) {
	for _, tc := range []struct {
		major pgver.Major
		fast  bool
		rate  int64
		want  string
	}{
		{pgver.V9_4, true, 0, "BASE_BACKUP LABEL 'it''s' PROGRESS FAST NOWAIT"},
		{pgver.V9_6, false, 1024, "BASE_BACKUP LABEL 'it''s' PROGRESS NOWAIT MAX_RATE 1024 TABLESPACE_MAP"},
		{pgver.V12, true, 0, "BASE_BACKUP LABEL 'it''s' PROGRESS FAST NOWAIT TABLESPACE_MAP"},
		{pgver.V14, true, 64, "BASE_BACKUP LABEL 'it''s' PROGRESS FAST NOWAIT MAX_RATE 64 TABLESPACE_MAP MANIFEST 'yes'"},
		{pgver.V15, true, 0, "BASE_BACKUP (LABEL 'it''s', PROGRESS, CHECKPOINT 'fast', WAIT false, TABLESPACE_MAP, MANIFEST 'yes')"},
		{pgver.V18, false, 32, "BASE_BACKUP (LABEL 'it''s', PROGRESS, WAIT false, MAX_RATE 32, TABLESPACE_MAP, MANIFEST 'yes')"},
	} {
		t.Run(tc.major.String(), func(t *testing.T) {
			r, ok := versionRules.For(tc.major)
			require.True(t, ok)
			assert.Equal(t, tc.want, r.baseBackupCommand("it's", true, tc.fast, tc.rate))
		})
	}
	r, _ := versionRules.For(pgver.V14)
	assert.Equal(t, `CREATE_REPLICATION_SLOT "a""b" TEMPORARY PHYSICAL RESERVE_WAL`, r.slotCommand(`a"b`))
	r, _ = versionRules.For(pgver.V16)
	assert.Equal(t, `CREATE_REPLICATION_SLOT "s" TEMPORARY PHYSICAL (RESERVE_WAL)`, r.slotCommand("s"))
	for m := pgver.Oldest; m <= pgver.Newest; m++ {
		if m.Supported() && (m < 1000 && m%100 <= 6 || m%100 == 0) {
			_, ok := versionRules.For(m)
			assert.True(t, ok, "no rules for %v", m)
		}
	}
}

func TestLSNAndSegments(t *testing.T) {
	l, err := parseLSN("16/B374D848")
	require.NoError(t, err)
	assert.Equal(t, LSN(0x16B374D848), l)
	assert.Equal(t, "16/B374D848", l.String())
	for _, bad := range []string{"", "16", "x/1", "1/100000000"} {
		_, err := parseLSN(bad)
		assert.Error(t, err, bad)
	}
	assert.Equal(t, "000000010000000000000002", segmentName(1, 0x2000028, 16<<20))
	assert.Equal(t, "0000000300000016000000B3", segmentName(3, 0x16B374D848, 16<<20))
	assert.Equal(t, "000000010000000100000000", segmentName(1, 0x100000000, 1<<30))
	for s, want := range map[string]int64{"16MB": 16 << 20, "1GB": 1 << 30, "512kB": 512 << 10, "8192": 8192} {
		got, err := parseSize(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
	}
}

// TestWALTar writes a pg_wal.tar as the stream does and reads it back with
// archive/tar: a history file, a complete segment (marked archived) and a
// partial one (padded with zeros, not marked).
func TestWALTar(t *testing.T) {
	var buf bytes.Buffer
	w := &walTar{w: &buf, segSize: 2048, now: func() time.Time { return time.Unix(1700000000, 0) }}
	require.NoError(t, w.writeFile("00000002.history", []byte("1\t0/3000000\tno recovery target specified\n")))
	require.NoError(t, w.writeFile("archive_status/00000002.history.done", nil))
	require.NoError(t, w.startSegment("000000020000000000000001"))
	require.NoError(t, w.write(bytes.Repeat([]byte{1}, 2048)))
	require.Error(t, w.write([]byte{1}), "past the segment's end")
	require.NoError(t, w.endSegment())
	require.NoError(t, w.startSegment("000000020000000000000002"))
	require.NoError(t, w.write([]byte{2, 2, 2}))
	require.NoError(t, w.close())
	assert.Zero(t, buf.Len()%512)

	tr := tar.NewReader(&buf)
	type entry struct {
		name string
		size int64
		data []byte
	}
	var got []entry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		assert.Equal(t, int64(0o600), h.Mode)
		assert.Equal(t, "postgres", h.Uname)
		assert.Equal(t, int64(1700000000), h.ModTime.Unix())
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		got = append(got, entry{h.Name, h.Size, data})
	}
	require.Len(t, got, 5)
	assert.Equal(t, "00000002.history", got[0].name)
	assert.Equal(t, "archive_status/00000002.history.done", got[1].name)
	assert.Equal(t, "000000020000000000000001", got[2].name)
	assert.Equal(t, "archive_status/000000020000000000000001.done", got[3].name)
	assert.Equal(t, "000000020000000000000002", got[4].name)
	assert.Equal(t, int64(2048), got[4].size)
	assert.Equal(t, append([]byte{2, 2, 2}, make([]byte, 2045)...), got[4].data)
}

// TestOutFileRoundTrip writes through each compression in pieces of odd
// sizes (the compressor runs in its own goroutine, in chunks) and reads the
// file back.
func TestOutFileRoundTrip(t *testing.T) {
	data := make([]byte, 3*chunkSize+12345)
	for i := range data {
		data[i] = byte(i * 7 / 13)
	}
	for c, rule := range compressionRules {
		t.Run(c.String(), func(t *testing.T) {
			dir := t.TempDir()
			o, err := createOut(dir, "base.tar"+rule.suffix, c, 0)
			require.NoError(t, err)
			for off, step := 0, 1; off < len(data); off, step = off+step, step*3%40000+1 {
				_, err := o.Write(data[off:min(off+step, len(data))])
				require.NoError(t, err)
			}
			require.NoError(t, o.finish(false))
			o.abort() // after finish: harmless
			assert.Equal(t, int64(len(data)), o.n)
			got := readAll(t, filepath.Join(dir, "base.tar"+rule.suffix), c)
			assert.True(t, bytes.Equal(data, got), "round trip through %v", c)
		})
	}
}

func readAll(t *testing.T, path string, c Compression) []byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var r io.Reader = f
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(f)
		require.NoError(t, err)
		r = zr
	case LZ4:
		r = lz4.NewReader(f)
	case Zstd:
		zr, err := zstd.NewReader(f)
		require.NoError(t, err)
		defer zr.Close()
		r = zr
	}
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return b
}
