package pgconf_test

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"sort"
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

// TestServer runs everything that needs a server of each major against
// one primary per major: the pg_file_settings corpus, edits, and checks.
func TestServer(t *testing.T) {
	cases, err := os.ReadDir(filepath.Join("testdata", "server"))
	require.NoError(t, err)
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		p := pgtest.StartPrimary(t, major, pgtest.Options{})
		base := readFile(t, filepath.Join(p.DataDir, "postgresql.conf"))
		baseAuto := readFile(t, filepath.Join(p.DataDir, "postgresql.auto.conf"))
		restore := func() {
			require.NoError(t, os.WriteFile(filepath.Join(p.DataDir, "postgresql.conf"), []byte(base), 0o600))
			require.NoError(t, os.WriteFile(filepath.Join(p.DataDir, "postgresql.auto.conf"), []byte(baseAuto), 0o600))
		}
		t.Cleanup(restore)

		// The corpus: pgconf reads each case as the server does.
		for _, tc := range cases {
			t.Run("file_settings/"+tc.Name(), func(t *testing.T) {
				copyCase(t, tc.Name(), p.DataDir, base, baseAuto)
				defer removeCase(t, tc.Name(), p.DataDir)
				want := queryFileSettings(t, p)
				got := pgconfRows(t, p.DataDir)
				assert.Equal(t, rowStrings(want), rowStrings(got))
				assert.Equal(t, serverErrors(t, p), pgconfErrors(t, p.DataDir))
			})
		}

		t.Run("absolute", func(t *testing.T) {
			defer restore()
			testServerAbsolute(t, p, base)
		})
		t.Run("random", func(t *testing.T) {
			defer restore()
			testServerRandom(t, p, base)
		})
		t.Run("edits", func(t *testing.T) {
			defer restore()
			testServerEdits(t, p, base)
		})
		t.Run("check", func(t *testing.T) {
			testCheck(t, p)
		})
	})
}

// testServerAbsolute: absolute include paths are taken as written.
func testServerAbsolute(t *testing.T, p *pgtest.Primary, base string) {
	dir := filepath.Join(p.DataDir, "abs")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "d"), 0o700))
	defer os.RemoveAll(dir)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x.conf"), []byte("work_mem = 2MB\ninclude 'y.conf'\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "y.conf"), []byte("lock_timeout = 2\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "d", "z.conf"), []byte("statement_timeout = 3\n"), 0o600))
	main := base + "include '" + p.DataDir + "//abs/./x.conf'\ninclude_dir '" + dir + "/d/'\ninclude_if_exists '" + dir + "/none.conf'\n" +
		"include '" + dir + "/../abs/y.conf'\n"
	require.NoError(t, os.WriteFile(filepath.Join(p.DataDir, "postgresql.conf"), []byte(main), 0o600))
	pgtest.Chown(t, p.DataDir)
	assert.Equal(t, rowStrings(queryFileSettings(t, p)), rowStrings(pgconfRows(t, p.DataDir)))
	assert.Equal(t, serverErrors(t, p), pgconfErrors(t, p.DataDir))
}

// randomValue strings together fragments that stress the lexer: quotes,
// escapes, signs, dots, exponents, hex, units, comments.
func randomValue(r *rand.Rand) string {
	frags := []string{"'", "''", `\`, `\'`, `\n`, `\0`, `\101`, `\x`, "0", "7", "12", ".", "e", "E", "-", "+",
		"x", "0x", "1F", "kB", "min", "a", "Z_", ":", "/", "#", " ", "\t", "=", "é", "\r", "$", ","}
	var b strings.Builder
	quoted := r.Intn(2) == 0 // a string, mostly well formed, to test unquoting
	if quoted {
		b.WriteString("'")
	}
	for n := 1 + r.Intn(6); n > 0; n-- {
		b.WriteString(frags[r.Intn(len(frags))])
	}
	if quoted {
		b.WriteString("'")
	}
	return b.String()
}

// testServerRandom: a few hundred generated lines, each in its own
// included file (so that a syntax error abandons only its own file), read
// by pgconf and by the server.
func testServerRandom(t *testing.T, p *pgtest.Primary, base string) {
	r := rand.New(rand.NewSource(int64(p.Major)))
	dir := filepath.Join(p.DataDir, "random")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	defer os.RemoveAll(dir)
	var main strings.Builder
	main.WriteString(base)
	for i := 0; i < 300; i++ {
		file := fmt.Sprintf("%03d.conf", i)
		names := []string{"application_name", "Application_NAME", "pgstage.x", "pgstage.x.y", "application_name.", "\tapplication_name"}
		name := names[r.Intn(len(names))]
		line := name + " = " + randomValue(r)
		if r.Intn(4) == 0 {
			line = name + " " + randomValue(r) // no equals sign
		}
		if r.Intn(8) == 0 {
			line += "\n" // most files end without a newline
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, file), []byte(line), 0o600))
		fmt.Fprintf(&main, "include_if_exists 'random/%s'\n", file)
	}
	require.NoError(t, os.WriteFile(filepath.Join(p.DataDir, "postgresql.conf"), []byte(main.String()), 0o600))
	pgtest.Chown(t, p.DataDir)
	assert.Equal(t, rowStrings(queryFileSettings(t, p)), rowStrings(pgconfRows(t, p.DataDir)))
	assert.Equal(t, serverErrors(t, p), pgconfErrors(t, p.DataDir))
}

// postgresC is the server's reading of one parameter: postgres -C.
func postgresC(t *testing.T, p *pgtest.Primary, name string) string {
	t.Helper()
	out, err := pgtest.Command(context.Background(), filepath.Join(p.BinDir, "postgres"), "-D", p.DataDir, "-C", name).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return strings.TrimSuffix(string(out), "\n")
}

// testServerEdits edits a configuration spread over an include and
// postgresql.auto.conf, then checks that the server reads what pgconf says.
func testServerEdits(t *testing.T, p *pgtest.Primary, base string) {
	main := base + "work_mem = 1024\t# kB\ninclude 'edit.conf'\n#cluster_name = ''\t# template\nstatement_timeout = 1\n"
	require.NoError(t, os.WriteFile(filepath.Join(p.DataDir, "postgresql.conf"), []byte(main), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(p.DataDir, "edit.conf"), []byte("lock_timeout = 5\nstatement_timeout = 7\n"), 0o600))
	defer os.Remove(filepath.Join(p.DataDir, "edit.conf"))
	require.NoError(t, os.WriteFile(filepath.Join(p.DataDir, "postgresql.auto.conf"), []byte("log_min_duration_statement = '100'\n"), 0o600))
	pgtest.Chown(t, p.DataDir)

	c, err := pgconf.Load(p.DataDir)
	require.NoError(t, err)
	sets := map[string]string{
		"work_mem":                   "8192",               // main file, in place
		"lock_timeout":               "6000",               // included file
		"log_min_duration_statement": "250",                // postgresql.auto.conf
		"cluster_name":               `it's a \ test`,      // template line
		"pgstage.note":               "new\tline 'quoted'", // appended block
	}
	for name, value := range sets {
		changed, err := c.Set(name, value)
		require.NoError(t, err, name)
		assert.True(t, changed, name)
	}
	changed, err := c.Comment("statement_timeout") // in both files
	require.NoError(t, err)
	assert.True(t, changed)
	changed, err = c.Comment("max_wal_senders")
	require.NoError(t, err)
	assert.True(t, changed)
	require.NoError(t, c.Save())

	for name, value := range sets {
		got, ok := c.Get(name)
		require.True(t, ok)
		assert.Equal(t, value, got.Value)
		assert.Equal(t, value, postgresC(t, p, name), name)
	}
	_, ok := c.Get("statement_timeout")
	assert.False(t, ok)
	assert.Equal(t, "0", postgresC(t, p, "statement_timeout"), "commented out: back to the default")
	assert.Equal(t, "10", postgresC(t, p, "max_wal_senders"), "commented out: back to the default")
	// What the files say; applied and errors also depend on the running
	// server's values (postmaster parameters cannot change without restart).
	assert.Equal(t, locations(queryFileSettings(t, p)), locations(pgconfRows(t, p.DataDir)))

	// Uncomment restores the files byte for byte.
	_, err = c.Uncomment("statement_timeout")
	require.NoError(t, err)
	require.NoError(t, c.Save())
	assert.Equal(t, "1", postgresC(t, p, "statement_timeout"))
	assert.Equal(t, "lock_timeout = 6000\nstatement_timeout = 7\n", readFile(t, filepath.Join(p.DataDir, "edit.conf")))
}

// fileErrors are the server's messages pgconf reports too.
var fileErrors = regexp.MustCompile(`^(syntax error in file|could not open configuration|configuration file recursion|input in flex scanner failed|empty configuration)`)

// serverErrors is what postgres -C says about the files, sorted.
func serverErrors(t *testing.T, p *pgtest.Primary) []string {
	t.Helper()
	out, _ := pgtest.Command(context.Background(), filepath.Join(p.BinDir, "postgres"), "-D", p.DataDir, "-C", "port").CombinedOutput()
	var msgs []string
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, "LOG:  "); i >= 0 && fileErrors.MatchString(l[i+6:]) {
			msgs = append(msgs, l[i+6:])
		}
	}
	sort.Strings(msgs)
	return msgs
}

// pgconfErrors is what pgconf says about the files, in the server's words
// (without the package prefix and the location pgconf adds), sorted.
func pgconfErrors(t *testing.T, dataDir string) []string {
	t.Helper()
	c, err := pgconf.Load(dataDir)
	require.NotNil(t, c)
	var msgs []string
	if err != nil {
		for _, l := range strings.Split(err.Error(), "\n") {
			l = strings.TrimPrefix(l, "pgconf: ")
			if i := strings.Index(l, " (included from "); i >= 0 {
				l = l[:i]
			}
			msgs = append(msgs, l)
		}
	}
	sort.Strings(msgs)
	return msgs
}

// locations lists the settings rows without applied and error.
func locations(rs []fileSetting) []string {
	var out []string
	for _, r := range rs {
		if r.Name != "" {
			out = append(out, fmt.Sprintf("%s:%d %s=%q", r.File, r.Line, r.Name, r.Setting))
		}
	}
	return out
}

func rowStrings(rs []fileSetting) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

// TestServerSyntaxMessages: every golden file, read by each major's
// postgres as its configuration, gets the same syntax errors, in the same
// words, as pgconf reports.
func TestServerSyntaxMessages(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "golden", "*.conf"))
	require.NoError(t, err)
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		dir := pgtest.TempDir(t)
		conf := filepath.Join(dir, "postgresql.conf")
		for _, in := range inputs {
			t.Run(filepath.Base(in), func(t *testing.T) {
				data, err := os.ReadFile(in)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(conf, data, 0o600))
				pgtest.Chown(t, dir)
				out, _ := pgtest.Command(context.Background(), filepath.Join(pgtest.BinDir(t, major), "postgres"), "-D", dir, "-C", "port").CombinedOutput()
				var want []string
				for _, l := range strings.Split(string(out), "\n") {
					if i := strings.Index(l, "LOG:  syntax error in file"); i >= 0 {
						want = append(want, l[i+len("LOG:  "):])
					}
				}
				var got []string
				if _, err := pgconf.Parse(conf, data); err != nil {
					for _, l := range strings.Split(err.Error(), "\n") {
						got = append(got, strings.TrimPrefix(l, "pgconf: "))
					}
				}
				assert.Equal(t, want, got)
			})
		}
	})
}
