package replica_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/replica"
)

// A backup can bring configuration that lives outside the data directory:
// an include with an absolute path of the source's host, or a
// postgresql.conf that is a symbolic link out of it. Setup (often run as
// root) must not write there: it overrides what it must change in
// postgresql.auto.conf, which the server reads last, and says so.
func TestSetupLeavesOutsideFilesAlone(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel() // postgres -C only: cheap enough for every major
		for _, link := range []bool{false, true} {
			name := map[bool]string{false: "absolute include", true: "symlinked postgresql.conf"}[link]
			t.Run(name, func(t *testing.T) {
				pgVersion := strconv.Itoa(major)
				root, data := goldenDataDir(t, pgVersion, fmt.Sprintf("../internal/pgcontrol/testdata/pg_control.%d", major))
				outside := filepath.Join(pgtest.TempDir(t), "outside.conf") // the server reads it: the OS user's
				text := "port = 5999\narchive_mode = always\narchive_command = 'cp %p /source/archive/%f'\nmax_connections = 10\n"
				if major >= 12 {
					text += "recovery_target_time = '2021-01-01 00:00:00'\n"
				}
				main := filepath.Join(data, "postgresql.conf")
				if link {
					require.NoError(t, os.Remove(main))
					require.NoError(t, os.Symlink(outside, main))
				} else {
					f, err := os.OpenFile(main, os.O_APPEND|os.O_WRONLY, 0)
					require.NoError(t, err)
					_, err = f.WriteString("include '" + outside + "'\n")
					require.NoError(t, err)
					require.NoError(t, f.Close())
				}
				require.NoError(t, os.WriteFile(outside, []byte(text), 0o644))
				pgtest.Chown(t, filepath.Dir(outside))

				bin := pgtest.BinDir(t, major)
				port := pgtest.FreePort(t)
				s, err := replica.New(replica.Config{
					DataDir: data, BinDir: bin, Port: port, SocketDir: root,
					Source: replica.Source{Host: "10.0.0.5", User: "repl", Password: goldenPassword},
				})
				require.NoError(t, err)
				res, err := s.Setup(context.Background())
				require.NoError(t, err)
				assert.Equal(t, text, readString(t, outside), "the outside file was edited")
				if link {
					st, err := os.Lstat(main)
					require.NoError(t, err)
					assert.NotZero(t, st.Mode()&os.ModeSymlink, "postgresql.conf is still the link")
				}

				where := outside // as the server names it
				if link {
					where = main
				}
				overridden := map[string]replica.Overridden{}
				for _, o := range res.Overridden {
					assert.Equal(t, where, o.File, o.Name)
					overridden[o.Name] = o
				}
				wantOver := map[string]string{"port": strconv.Itoa(port), "archive_mode": "off", "archive_command": "", "max_connections": "37"}
				if major >= 12 {
					wantOver["recovery_target_time"] = ""
				}
				for n, v := range wantOver {
					if assert.Contains(t, overridden, n) {
						assert.Equal(t, v, overridden[n].To, n)
					}
				}
				assert.Contains(t, res.Written, filepath.Join(data, "postgresql.auto.conf"))
				assert.NotContains(t, res.Written, outside)

				for n, v := range wantOver {
					assert.Equal(t, v, postgresC(t, bin, data, n), n)
				}

				// A second run finds nothing left to do and still writes
				// nothing outside.
				res2, err := s.Setup(context.Background())
				require.NoError(t, err)
				assert.Empty(t, res2.Set, "set again")
				assert.Empty(t, res2.Neutralised, "neutralised again")
				assert.Empty(t, res2.Raised, "raised again")
				assert.Equal(t, text, readString(t, outside))
			})
		}
	})
}

// An outside file that sets what no later file can override (the data
// directory: the server reads it before postgresql.auto.conf) is an error
// that names the file, and nothing is written there.
func TestSetupRefusesOutsideDataDirectory(t *testing.T) {
	root, data := goldenDataDir(t, "15", "../internal/pgcontrol/testdata/pg_control.15")
	outside := filepath.Join(t.TempDir(), "outside.conf")
	text := "data_directory = '/var/lib/postgresql/15/main'\n"
	require.NoError(t, os.WriteFile(outside, []byte(text), 0o644))
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("include '" + outside + "'\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	s, err := replica.New(replica.Config{
		DataDir: data, BinDir: fakeBinDir(t, "15.18"), Port: 6543, SocketDir: root,
		Source: replica.Source{Host: "10.0.0.5", User: "repl", Password: goldenPassword},
	})
	require.NoError(t, err)
	_, err = s.Setup(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), outside)
	assert.Contains(t, err.Error(), "data_directory")
	assert.Equal(t, text, readString(t, outside))
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}
