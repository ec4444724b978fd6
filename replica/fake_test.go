package replica_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/replica"
)

// fakePgCtl stands in for pg_ctl of a major no binary here runs (9.x). Its
// "postmaster" is a shell that writes postmaster.pid, records the
// environment it got, logs what a 9.x standby logs, and runs a child titled
// as 9.x titles its walreceiver.
const fakePgCtl = `#!/bin/bash
cmd=$1; shift
while [ $# -gt 0 ]; do case $1 in -D) D=$2; shift;; -l) L=$2; shift;; esac; shift; done
case $cmd in
start)
  setsid bash -c '
    echo "PGPASSFILE=$PGPASSFILE PGPASSWORD=$PGPASSWORD" > "$1/fake.env"
    echo $$ > "$1/postmaster.pid"
    echo "LOG:  database system was shut down in recovery at 2016-01-01 00:00:00 UTC" >> "$2"
    echo "LOG:  entering standby mode" >> "$2"
    (exec -a "postgres: wal receiver process   streaming 0/3000000" sleep 300) &
    sleep 0.3
    echo "LOG:  started streaming WAL from primary at 0/3000000 on timeline 1" >> "$2"
    wait
  ' fakepm "$D" "$L" >/dev/null 2>&1 </dev/null &
  ;;
stop)
  pid=$(head -1 "$D/postmaster.pid")
  kill -- -"$pid"
  rm -f "$D/postmaster.pid"
  ;;
esac
`

// The run path of the majors without binaries here: Start without pg_ctl -w
// (9.x), PGPASSFILE in the server's environment, WaitStreaming by the log
// and the walreceiver process, Stop. A simulation: real 9.x servers are not
// available on this machine.
func TestRunPathWithout10Binaries(t *testing.T) {
	for _, gm := range goldenMajors[:3] { // 9.4, 9.5, 9.6
		t.Run(gm.pgVersion, func(t *testing.T) {
			root, data := goldenDataDir(t, gm.pgVersion, gm.control)
			bin := fakeBinDir(t, gm.binVersion)
			require.NoError(t, os.WriteFile(filepath.Join(bin, "pg_ctl"), []byte(fakePgCtl), 0o755))
			t.Setenv("PGPASSWORD", "not for the server")
			s, err := replica.New(replica.Config{DataDir: data, BinDir: bin, SocketDir: root, Port: pgtest.FreePort(t),
				Source: replica.Source{Host: "10.0.0.5", User: "repl", Password: goldenPassword}})
			require.NoError(t, err)
			res, err := s.Setup(context.Background())
			require.NoError(t, err)
			assert.Equal(t, "recovery.conf", res.Method)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			require.NoError(t, s.Start(ctx))
			t.Cleanup(func() { _ = s.Stop(context.Background()) })

			st, err := s.WaitStreaming(ctx)
			require.NoError(t, err)
			// 9.4 and 9.5 are warm standbys; 9.6 would be asked over SQL, and
			// with no socket to ask falls back on the log.
			assert.Equal(t, "log", st.Method)
			status, err := s.Status(ctx)
			require.NoError(t, err)
			assert.True(t, status.Running)
			assert.True(t, status.WalReceiver)

			env, err := os.ReadFile(filepath.Join(data, "fake.env"))
			require.NoError(t, err)
			assert.Equal(t, "PGPASSFILE="+res.PassFile+" PGPASSWORD=", strings.TrimSpace(string(env)))
			assert.Equal(t, pgtest.OSUser(t).UID, fileUID(t, filepath.Join(data, "fake.env")), "the server runs as the OS user")

			require.NoError(t, s.Stop(ctx))
			status, err = s.Status(ctx)
			require.NoError(t, err)
			assert.False(t, status.Running)
		})
	}
}
