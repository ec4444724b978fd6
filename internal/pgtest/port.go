package pgtest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// portLockDir holds one lock file per port handed out, shared by every test
// process on the machine (go test runs packages in parallel).
var portLockDir = filepath.Join(os.TempDir(), "pgstage-ports")

// FreePort returns a TCP port that no other test of any process on this
// machine holds, and that nothing listens on now. It is reserved until the
// test ends.
//
// Ports come from below the kernel's ephemeral range: a port the kernel
// picks for "listen on :0" is also what it hands out as the source port of
// outgoing connections, so it can be taken between the pick and the
// server's bind. An flock on a lock file keeps two test processes from
// choosing the same port.
func FreePort(tb testing.TB) int {
	tb.Helper()
	lo, hi := portRange()
	if err := os.MkdirAll(portLockDir, 0o777); err != nil {
		tb.Fatalf("pgtest: port locks: %v", err)
	}
	os.Chmod(portLockDir, 0o777|os.ModeSticky)
	start := lo + rand.IntN(hi-lo)
	for i := 0; i < hi-lo; i++ {
		port := lo + (start-lo+i)%(hi-lo)
		f, err := os.OpenFile(filepath.Join(portLockDir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close()
			continue
		}
		if !bindable(port) {
			f.Close()
			continue
		}
		tb.Cleanup(func() { f.Close() })
		return port
	}
	tb.Fatalf("pgtest: no free TCP port in %d-%d", lo, hi)
	return 0
}

// bindable reports whether a server could bind port on every address now.
func bindable(port int) bool {
	for _, addr := range []string{"0.0.0.0", "127.0.0.1"} {
		l, err := net.Listen("tcp4", net.JoinHostPort(addr, strconv.Itoa(port)))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

// portRange is [lo, hi): ports below the ephemeral range, above the
// well-known ones.
func portRange() (int, int) {
	lo, hi := 20000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var elo, ehi int
		if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &elo, &ehi); err == nil && elo > lo+1000 {
			hi = elo
		}
	}
	return lo, hi
}
