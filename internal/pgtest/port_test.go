package pgtest

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFreePortReservedAcrossProcesses checks that a port handed out here is
// refused to another process that has a different temporary directory, the
// case a lock file under os.TempDir() missed, and that it is free again once
// the test holding it ends.
func TestFreePortReservedAcrossProcesses(t *testing.T) {
	if os.Getenv("PGSTAGE_PORT_PROBE") != "" {
		port, _ := strconv.Atoi(os.Getenv("PGSTAGE_PORT_PROBE"))
		l, err := net.Listen("unix", "@pgstage-port-"+strconv.Itoa(port))
		if err == nil {
			l.Close()
			t.Fatalf("port %d is not reserved", port)
		}
		return
	}
	var port int
	t.Run("hold", func(t *testing.T) {
		port = FreePort(t)
		lo, hi := portRange()
		require.True(t, port >= lo && port < hi, "port %d outside [%d,%d)", port, lo, hi)
		cmd := exec.Command(os.Args[0], "-test.run=^TestFreePortReservedAcrossProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(), "PGSTAGE_PORT_PROBE="+strconv.Itoa(port), "TMPDIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "another process could reserve port %d:\n%s", port, out)
	})
	l, err := net.Listen("unix", "@pgstage-port-"+strconv.Itoa(port))
	require.NoError(t, err, "port %d still reserved after its test ended", port)
	l.Close()
}

// TestFreePortSkipsIPv6Holders: a port held on ::1 alone is in use to the
// staging's own check (it binds the wildcard, IPv6 taking IPv4), so FreePort
// must not hand it out. A CI run once failed on that disagreement.
func TestFreePortSkipsIPv6Holders(t *testing.T) {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	require.False(t, bindable(port), "port %d is held on ::1", port)
	other := FreePort(t)
	require.True(t, bindable(other))
}
