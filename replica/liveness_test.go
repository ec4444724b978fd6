package replica_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/pgconf"
	"github.com/pgstage/pgstage/replica"
)

// The liveness settings land in primary_conninfo and the server's
// configuration as configured: defaults, custom values, and negative values
// that leave a setting to the server or libpq; tcp_user_timeout only where
// the major's libpq knows it (12+).
func TestLivenessSettings(t *testing.T) {
	base := "host='10.0.0.5' port='5432' user='repl' "
	tests := []struct {
		name      string
		major     string
		liveness  replica.Liveness
		conninfo  string // after passfile= and application_name=
		timeout   string // wal_receiver_timeout, "" when not set
		interval  string // wal_receiver_status_interval
		noPassArg bool   // 9.x: no passfile=
	}{
		{name: "defaults 15", major: "15", conninfo: "connect_timeout='5' keepalives='1' keepalives_count='3' keepalives_idle='5' keepalives_interval='1' tcp_user_timeout='8000'",
			timeout: "8s", interval: "2s"},
		{name: "defaults 11", major: "11", conninfo: "connect_timeout='5' keepalives='1' keepalives_count='3' keepalives_idle='5' keepalives_interval='1'",
			timeout: "8s", interval: "2s"},
		{name: "defaults 9.6", major: "9.6", noPassArg: true, conninfo: "connect_timeout='5' keepalives='1' keepalives_count='3' keepalives_idle='5' keepalives_interval='1'",
			timeout: "8s", interval: "2s"},
		{name: "custom 18", major: "18", liveness: replica.Liveness{
			ReceiverTimeout: 2500 * time.Millisecond, StatusInterval: 1500 * time.Millisecond, ConnectTimeout: 3 * time.Second,
			KeepalivesIdle: 2 * time.Second, KeepalivesInterval: 2 * time.Second, KeepalivesCount: 5, TCPUserTimeout: 4 * time.Second},
			conninfo: "connect_timeout='3' keepalives='1' keepalives_count='5' keepalives_idle='2' keepalives_interval='2' tcp_user_timeout='4000'",
			timeout:  "2500ms", interval: "2s"},
		{name: "all left to the server 13", major: "13", liveness: replica.Liveness{
			ReceiverTimeout: -1, StatusInterval: -1, ConnectTimeout: -1, KeepalivesIdle: -1, KeepalivesInterval: -1, KeepalivesCount: -1, TCPUserTimeout: -1}},
	}
	controls := map[string]string{
		"9.6": "testdata/pg_control.9.6", "11": "../internal/pgcontrol/testdata/pg_control.11",
		"13": "../internal/pgcontrol/testdata/pg_control.13", "15": "../internal/pgcontrol/testdata/pg_control.15",
		"18": "../internal/pgcontrol/testdata/pg_control.18",
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, data := goldenDataDir(t, tc.major, controls[tc.major])
			s, err := replica.New(replica.Config{
				DataDir: data, BinDir: fakeBinDir(t, tc.major+".1"), Name: "s", SocketDir: "/tmp",
				Source: replica.Source{Host: "10.0.0.5", User: "repl", Password: "pw"}, Liveness: tc.liveness,
			})
			require.NoError(t, err)
			res, err := s.Setup(context.Background())
			require.NoError(t, err)
			want := base
			if !tc.noPassArg {
				want += "passfile='" + res.PassFile + "' "
			}
			want += "application_name='s'"
			if tc.conninfo != "" {
				want += " " + tc.conninfo
			}
			assert.Equal(t, want, res.PrimaryConnInfo)

			conf, err := pgconf.Load(data)
			require.NoError(t, err)
			for name, v := range map[string]string{"wal_receiver_timeout": tc.timeout, "wal_receiver_status_interval": tc.interval} {
				got, ok := conf.Get(name)
				assert.Equal(t, v != "", ok, name)
				assert.Equal(t, v, got.Value, name)
			}
		})
	}
}
