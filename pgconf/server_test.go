package pgconf_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/pgconf"
)

// fileSetting is one row of pg_file_settings.
type fileSetting struct {
	Name, Setting, File string
	Line                int
	Applied             bool
	Error               string
}

func (r fileSetting) String() string {
	return fmt.Sprintf("%s:%d %s=%q applied=%v error=%q", r.File, r.Line, r.Name, r.Setting, r.Applied, r.Error)
}

func queryFileSettings(t *testing.T, p *pgtest.Primary) []fileSetting {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.ConnString())
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT coalesce(name, ''), coalesce(setting, ''), coalesce(sourcefile, ''),
		coalesce(sourceline, 0), applied, coalesce(error, '') FROM pg_file_settings ORDER BY seqno`)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (fileSetting, error) {
		var r fileSetting
		err := row.Scan(&r.Name, &r.Setting, &r.File, &r.Line, &r.Applied, &r.Error)
		return r, err
	})
	require.NoError(t, err)
	return out
}

func pgconfRows(t *testing.T, dataDir string) []fileSetting {
	t.Helper()
	c, _ := pgconf.Load(dataDir)
	require.NotNil(t, c)
	var out []fileSetting
	for _, e := range c.Entries() {
		out = append(out, fileSetting{Name: e.Name, Setting: e.Value, File: e.File, Line: e.Line, Applied: e.Applied, Error: e.Error})
	}
	return out
}

// copyCase copies testdata/server/<name> into the data directory: its
// postgresql.conf is appended to the base configuration, the rest copied.
func copyCase(t *testing.T, name, dataDir, base, baseAuto string) {
	t.Helper()
	src := filepath.Join("testdata", "server", name)
	require.NoError(t, os.WriteFile(filepath.Join(dataDir, "postgresql.conf"), []byte(base), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dataDir, "postgresql.auto.conf"), []byte(baseAuto), 0o600))
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := filepath.Join(dataDir, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rel == "postgresql.conf" {
			data = append([]byte(base), data...)
		}
		return os.WriteFile(dst, data, 0o600)
	})
	require.NoError(t, err)
	pgtest.Chown(t, dataDir)
}

// removeCase removes what copyCase added besides the two main files.
func removeCase(t *testing.T, name, dataDir string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join("testdata", "server", name))
	require.NoError(t, err)
	for _, e := range ents {
		if e.Name() != "postgresql.conf" && e.Name() != "postgresql.auto.conf" {
			require.NoError(t, os.RemoveAll(filepath.Join(dataDir, e.Name())))
		}
	}
}

// TestServerAgrees compares pgconf's reading of tricky files with the
// server's own (pg_file_settings), for every major.
func TestServerAgrees(t *testing.T) {
	cases, err := os.ReadDir(filepath.Join("testdata", "server"))
	require.NoError(t, err)
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		p := pgtest.StartPrimary(t, major, pgtest.Options{})
		base := readFile(t, filepath.Join(p.DataDir, "postgresql.conf"))
		baseAuto := readFile(t, filepath.Join(p.DataDir, "postgresql.auto.conf"))
		t.Cleanup(func() {
			os.WriteFile(filepath.Join(p.DataDir, "postgresql.conf"), []byte(base), 0o600)
			os.WriteFile(filepath.Join(p.DataDir, "postgresql.auto.conf"), []byte(baseAuto), 0o600)
		})
		for _, tc := range cases {
			t.Run(tc.Name(), func(t *testing.T) {
				copyCase(t, tc.Name(), p.DataDir, base, baseAuto)
				defer removeCase(t, tc.Name(), p.DataDir)
				want := queryFileSettings(t, p)
				got := pgconfRows(t, p.DataDir)
				assert.Equal(t, rowStrings(want), rowStrings(got))
			})
		}
	})
}

func rowStrings(rs []fileSetting) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

var _ = strings.Contains
