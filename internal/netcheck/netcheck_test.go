package netcheck_test

import (
	"net"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/netcheck"
	"github.com/pgstage/pgstage/internal/pgtest"
)

// listenTCP holds addr:port until the test ends.
func listenTCP(t *testing.T, addr string, port int) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
}

func TestPortFreeTCP(t *testing.T) {
	for _, tc := range []struct {
		name     string
		held     string // address a listener holds, "" for none
		addrs    []string
		wantAddr string // "-" when the port is free
	}{
		{"nothing listens", "", []string{"localhost", "*"}, "-"},
		{"loopback held, localhost asked", "127.0.0.1", []string{"localhost"}, "127.0.0.1"},
		{"loopback held, every address asked", "127.0.0.1", []string{"*"}, ""},
		{"loopback held, IPv4 wildcard asked", "127.0.0.1", []string{"0.0.0.0"}, "0.0.0.0"},
		{"spaces and empty entries", "127.0.0.1", []string{"", " 127.0.0.1 "}, "127.0.0.1"},
		// 192.0.2.1 (TEST-NET-1) is on no host: it cannot be bound, which is
		// not "in use".
		{"address not on this host", "", []string{"192.0.2.1", "localhost"}, "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := pgtest.FreePort(t)
			if tc.held != "" {
				listenTCP(t, tc.held, port)
			}
			err := netcheck.PortFree(port, tc.addrs, nil)
			if tc.wantAddr == "-" {
				require.NoError(t, err)
				return
			}
			var e *netcheck.InUseError
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tc.wantAddr, e.Addr)
			assert.Equal(t, port, e.Port)
			assert.Empty(t, e.Socket)
			require.ErrorIs(t, err, syscall.EADDRINUSE)
		})
	}
}

func TestPortFreeSocket(t *testing.T) {
	port := pgtest.FreePort(t)
	empty, live, stale := t.TempDir(), t.TempDir(), t.TempDir()
	sock := filepath.Join(live, ".s.PGSQL."+strconv.Itoa(port))
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer l.Close()
	// A socket file left by a crashed server: nobody answers.
	sl, err := net.Listen("unix", filepath.Join(stale, ".s.PGSQL."+strconv.Itoa(port)))
	require.NoError(t, err)
	sl.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, sl.Close())

	require.NoError(t, netcheck.PortFree(port, nil, []string{empty, "", stale}))
	err = netcheck.PortFree(port, nil, []string{empty, " " + live})
	var e *netcheck.InUseError
	require.ErrorAs(t, err, &e)
	assert.Equal(t, sock, e.Socket)
	assert.Equal(t, "a server answers on "+sock, err.Error())
}
