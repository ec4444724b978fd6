package pgtest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/pgstage/pgstage/internal/netcheck"
)

// FreePort returns a TCP port that no other test of any process on this
// machine holds, and that nothing listens on now. It is reserved until the
// test ends.
//
// Ports come from below the kernel's ephemeral range: a port the kernel
// picks for "listen on :0" is also what it hands out as the source port of
// outgoing connections, so it can be taken between the pick and the
// server's bind.
//
// The reservation is an abstract Unix socket named after the port. Abstract
// sockets live in the network namespace, the same one TCP ports live in, so
// two test processes that could collide on a port always see each other's
// reservation, even when they have different temporary directories (a CI
// checkout in its own mount namespace, a TMPDIR set by one of them). A lock
// file under os.TempDir() did not: a CI run and a local run picked the same
// port.
func FreePort(tb testing.TB) int {
	tb.Helper()
	lo, hi := portRange()
	start := lo + rand.IntN(hi-lo)
	for i := 0; i < hi-lo; i++ {
		port := lo + (start-lo+i)%(hi-lo)
		lock, err := net.Listen("unix", "@pgstage-port-"+strconv.Itoa(port))
		if err != nil {
			continue // held by another test
		}
		if !bindable(port) {
			lock.Close()
			continue
		}
		tb.Cleanup(func() { lock.Close() })
		return port
	}
	tb.Fatalf("pgtest: no free TCP port in %d-%d", lo, hi)
	return 0
}

// bindable reports whether a server could bind port now, on every address:
// the staging's own check (netcheck, as stage and replica call it) binds
// the wildcard, which Go makes an IPv6 socket taking IPv4 too, so a port
// held on ::1 alone (a server on "localhost" whose IPv4 bind failed) was
// free to a tcp4-only check here and in use to the staging's.
func bindable(port int) bool {
	return netcheck.PortFree(port, []string{"*", "127.0.0.1"}, nil) == nil
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
