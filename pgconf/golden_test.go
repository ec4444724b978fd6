package pgconf_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/pgconf"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// golden compares got with testdata/golden/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err, "run go test -update to create it")
	assert.Equal(t, string(want), got)
}

// describe lists what pgconf reads in a file: settings and syntax errors.
func describe(f *pgconf.File, err error) string {
	var b strings.Builder
	for _, s := range f.Settings() {
		fmt.Fprintf(&b, "%d: %s = %q\n", s.Line, s.Name, s.Value)
	}
	if err != nil {
		fmt.Fprintf(&b, "errors:\n%s\n", err)
	}
	return b.String()
}

// TestGoldenParse parses each testdata/golden/*.conf and compares what it
// reads with the .parsed file beside it.
func TestGoldenParse(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "golden", "*.conf"))
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".conf")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			require.NoError(t, err)
			f, err := pgconf.Parse(filepath.Base(in), data)
			assert.Equal(t, string(data), string(f.Bytes()))
			golden(t, name+".parsed", describe(f, err))
		})
	}
}

type editOp struct {
	op, name, value string
}

// TestGoldenEdit applies edits to a file and compares the result with
// testdata/golden/edit-<name>.out.
func TestGoldenEdit(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ops  []editOp
	}{
		{"sample-like", "# comment\n#port = 5432\t\t\t\t# (change requires restart)\n#ssl = off\nmax_connections = 100\t\t\t# (change requires restart)\n" +
			"shared_preload_libraries = 'pg_stat_statements'\t# (change requires restart)\n#archive_command = ''\t\t# command to use\n",
			[]editOp{{"set", "port", "5433"}, {"set", "ssl", "on"}, {"set", "max_connections", "200"},
				{"comment", "shared_preload_libraries", ""}, {"set", "archive_command", "cp %p '/mnt/a b/%f'"},
				{"set", "primary_conninfo", "host=x password='a\\'b' user=r"}, {"set", "hot_standby", "on"}}},
		{"comment-uncomment", "a = 1 # one\nb = 2\n  a=3\n", []editOp{{"comment", "A", ""}, {"set", "b", "20"}, {"uncomment", "a", ""}}},
		{"no final newline", "port = 1", []editOp{{"set", "work_mem", "64MB"}, {"set", "application_name", "x y"}}},
		{"crlf", "port = 1\r\n# x\r\n", []editOp{{"set", "port", "2"}, {"comment", "port", ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"postgresql.conf": tt.in})
			c, err := pgconf.Load(dir)
			require.NoError(t, err)
			var log strings.Builder
			for _, op := range tt.ops {
				var changed bool
				switch op.op {
				case "set":
					changed, err = c.Set(op.name, op.value)
				case "comment":
					changed, err = c.Comment(op.name)
				case "uncomment":
					changed, err = c.Uncomment(op.name)
				}
				require.NoError(t, err)
				fmt.Fprintf(&log, "# %s %s %q: changed=%v\n", op.op, op.name, op.value, changed)
				if op.op == "set" {
					s, ok := c.Get(op.name)
					require.True(t, ok)
					assert.Equal(t, op.value, s.Value)
				}
			}
			require.NoError(t, c.Save())
			out := readFile(t, filepath.Join(dir, "postgresql.conf"))
			golden(t, "edit-"+strings.ReplaceAll(tt.name, " ", "-")+".out", log.String()+"# ----\n"+out)
			c2, err := pgconf.Load(dir)
			require.NoError(t, err)
			assert.Equal(t, c.Entries(), c2.Entries())
		})
	}
}

// TestSampleFiles round-trips the postgresql.conf.sample of every major:
// it parses without error, gives back the same bytes, and each of its
// commented template lines can be set in place.
func TestSampleFiles(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		data, err := os.ReadFile(filepath.Join(pgtest.ShareDir(t, major), "postgresql.conf.sample"))
		require.NoError(t, err)
		f, err := pgconf.Parse("postgresql.conf.sample", data)
		require.NoError(t, err)
		require.Equal(t, string(data), string(f.Bytes()))
		assert.Empty(t, f.Settings(), "the sample sets nothing")

		dir := writeTree(t, map[string]string{"postgresql.conf": string(data)})
		c, err := pgconf.Load(dir)
		require.NoError(t, err)
		for _, name := range []string{"port", "listen_addresses", "shared_buffers", "archive_command", "hot_standby", "include_dir"} {
			if name == "include_dir" {
				_, err := c.Set(name, "x")
				assert.ErrorIs(t, err, pgconf.ErrInvalidName)
				continue
			}
			changed, err := c.Set(name, "1")
			require.NoError(t, err)
			assert.True(t, changed)
		}
		// Every template was replaced in place: no block was appended.
		assert.NotContains(t, string(c.MainFile().Bytes()), pgconf.BlockBegin)
		assert.Equal(t, strings.Count(string(data), "\n"), strings.Count(string(c.MainFile().Bytes()), "\n"))
	})
}
