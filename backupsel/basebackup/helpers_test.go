package basebackup_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/backupsel/basebackup"
	"github.com/pgstage/pgstage/internal/pgtest"
)

// configFor is a Config for the primary's replication role.
func configFor(p *pgtest.Primary, backupPath string) basebackup.Config {
	return basebackup.Config{
		Host: p.Host, Port: p.Port, User: p.ReplUser, Password: p.ReplPassword,
		SSLMode: "disable", BackupPath: backupPath, FastCheckpoint: true, NoSync: true,
	}
}

// member is a tar member's name and size.
type member struct {
	Name string
	Size int64
}

// members lists the members of a (possibly compressed) tar file.
func members(t *testing.T, path string) []member {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(path, ".gz"):
		zr, err := gzip.NewReader(f)
		require.NoError(t, err)
		r = zr
	case strings.HasSuffix(path, ".lz4"):
		r = lz4.NewReader(f)
	case strings.HasSuffix(path, ".zst"):
		zr, err := zstd.NewReader(f)
		require.NoError(t, err)
		defer zr.Close()
		r = zr
	}
	var out []member
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "%s", path)
		out = append(out, member{h.Name, h.Size})
	}
	// The rest must be zero blocks only: the archive ends properly.
	rest, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Equal(t, strings.Repeat("\x00", len(rest)), string(rest), "%s: data after the end-of-archive blocks", path)
	return out
}

// labelSizeless lists an archive's members with backup_label's size left
// out: its LSNs and times are spelled with as many digits as they need, so
// two backups of one server may differ there and nowhere else.
func labelSizeless(t *testing.T, path string) []member {
	t.Helper()
	ms := members(t, path)
	for i := range ms {
		if ms[i].Name == "backup_label" {
			ms[i].Size = 0
		}
	}
	return ms
}

var segRe = regexp.MustCompile(`^[0-9A-F]{24}$`)

// walShape checks pg_wal.tar's members as pg_basebackup -X stream lays them
// out: segments of the full segment size, each complete one followed by an
// empty archive_status/<segment>.done; the last one is marked only when the
// stream ended on its boundary (else it is partial, padded with zeros). How many segments depends on where each backup starts, so two
// backups are compared by shape, not by count.
func walShape(t *testing.T, ms []member, segSize int64) {
	t.Helper()
	require.NotEmpty(t, ms)
	for i, m := range ms {
		if strings.HasPrefix(m.Name, "archive_status/") {
			require.Positive(t, i)
			assert.Equal(t, "archive_status/"+ms[i-1].Name+".done", m.Name)
			assert.Zero(t, m.Size)
			continue
		}
		assert.Regexp(t, segRe, m.Name)
		assert.Equal(t, segSize, m.Size, m.Name)
		if i < len(ms)-1 {
			assert.Equal(t, "archive_status/"+m.Name+".done", ms[i+1].Name, "a complete segment is marked archived")
		}
	}
}

// noPartial asserts the backup path holds no dot-folder or other leftover
// beside want.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// startAndRead starts the restored data directory and reads the row
// written before the backup and the row in the tablespace.
func startAndRead(t *testing.T, major int, dir, data string, id int64) {
	t.Helper()
	conn := pgtest.StartCopy(t, major, dir, data)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var note string
	require.NoError(t, conn.QueryRow(ctx, "SELECT note FROM pgstage_rows WHERE id = $1", id).Scan(&note))
	assert.Equal(t, fmt.Sprintf("row %d", id), note)
	require.NoError(t, conn.QueryRow(ctx, "SELECT note FROM pgstage_ts_rows LIMIT 1").Scan(&note))
	assert.Equal(t, "in a tablespace", note)
}
