package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Netns is a network namespace joined to the test's own (root) namespace by
// a veth pair, for tests of a network that fails silently: Cut drops every
// packet on the link in both directions, without a reset or an unreachable
// error, as a partition or a dead host does; Heal lets packets through
// again. A primary moved into it with Move is reached at NSIP; the test
// process, and a staging it starts, stay at HostIP.
//
// It needs root and iproute2 (ip, tc). Everything it makes is
// removed when the test ends, whether it passed or not: deleting the
// namespace deletes the veth pair and its queueing rules with it.
type Netns struct {
	Name           string
	HostIP, NSIP   string // the root end and the namespace end of the link
	hostDev, nsDev string
}

var netnsSeq atomic.Int32

// NewNetns makes a namespace and its link. It skips the test when not run as
// root (namespaces need it), and skips (or under make test fails) when
// iproute2 is missing.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("pgtest: network namespace tests need root (ip netns, tc); run the tests as root")
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing(t, tool+" (iproute2)")
		}
	}
	// Names unique across test processes; interface names stay within 15 bytes.
	id := os.Getpid()%100000*10 + int(netnsSeq.Add(1))%10
	n := &Netns{
		Name:    fmt.Sprintf("pgstage-%d", id),
		hostDev: fmt.Sprintf("pgs%dh", id),
		nsDev:   fmt.Sprintf("pgs%dn", id),
	}
	// A /30 in 10.200.0.0/16 chosen by id; another run's link on the same
	// one is unlikely, and "ip addr add" would then fail loudly.
	sub := id % 16384
	base := fmt.Sprintf("10.%d.%d.", 200+sub/4096, sub%4096/16)
	host := (sub % 16) * 4 // subnets inside a /24, each a /30
	n.HostIP, n.NSIP = base+strconv.Itoa(host+1), base+strconv.Itoa(host+2)

	ip(t, "netns", "add", n.Name)
	t.Cleanup(func() { _ = runIP("netns", "delete", n.Name) })
	ip(t, "link", "add", n.hostDev, "type", "veth", "peer", "name", n.nsDev)
	t.Cleanup(func() { _ = runIP("link", "delete", n.hostDev) }) // gone already once the namespace is
	ip(t, "link", "set", n.nsDev, "netns", n.Name)
	ip(t, "addr", "add", n.HostIP+"/30", "dev", n.hostDev)
	ip(t, "link", "set", n.hostDev, "up")
	ip(t, "-n", n.Name, "addr", "add", n.NSIP+"/30", "dev", n.nsDev)
	ip(t, "-n", n.Name, "link", "set", n.nsDev, "up")
	ip(t, "-n", n.Name, "link", "set", "lo", "up")
	return n
}

// HBA returns pg_hba.conf lines that let the test process and a staging in
// the root namespace into a primary in the namespace, as StartPrimary's own
// lines do over 127.0.0.1 (see Options.HBA).
func (n *Netns) HBA() []string {
	net := n.HostIP + "/32"
	return []string{
		"host all postgres " + net + " trust",
		"host replication postgres " + net + " trust",
		"host replication all " + net + " scram-sha-256",
		"host all all " + net + " scram-sha-256",
	}
}

// Move restarts p inside the namespace, where it is then reached at NSIP.
// Start it with listen_addresses = '*' (Options.Settings) and the lines of
// HBA. Later Start, Stop and Restart of p act on it there.
func (n *Netns) Move(t testing.TB, p *Primary) {
	t.Helper()
	p.Stop(t, "fast")
	p.netns = n.Name
	p.Host = n.NSIP
	p.Start(t)
}

// Cut drops every packet on the link, both ways, with no error to either
// side: the blackhole queueing discipline on each end reports every packet
// sent and sends none (as netem loss 100% does, and unlike netem it is built
// into kernels that lack sch_netem).
func (n *Netns) Cut(t testing.TB) {
	t.Helper()
	tc(t, "", "qdisc", "add", "dev", n.hostDev, "root", "blackhole")
	tc(t, n.Name, "qdisc", "add", "dev", n.nsDev, "root", "blackhole")
}

// Heal lets packets through again.
func (n *Netns) Heal(t testing.TB) {
	t.Helper()
	tc(t, "", "qdisc", "del", "dev", n.hostDev, "root")
	tc(t, n.Name, "qdisc", "del", "dev", n.nsDev, "root")
}

func ip(t testing.TB, args ...string) {
	t.Helper()
	if err := runIP(args...); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}

func runIP(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// tc runs tc in the namespace ns ("": the root one).
func tc(t testing.TB, ns string, args ...string) {
	t.Helper()
	name := "tc"
	if ns != "" {
		name, args = "ip", append([]string{"netns", "exec", ns, "tc"}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("pgtest: %s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
}

// nsCommand is Command for a program run inside the namespace ns: ip
// enters it as root, setpriv then becomes the OS user.
func nsCommand(ctx context.Context, ns, name string, args ...string) (*exec.Cmd, error) {
	u, err := osUser()
	if err != nil {
		return nil, err
	}
	all := append([]string{"netns", "exec", ns, "setpriv",
		"--reuid", strconv.Itoa(u.UID), "--regid", strconv.Itoa(u.GID), "--clear-groups", "--", name}, args...)
	cmd := exec.CommandContext(ctx, "ip", all...)
	cmd.Env = append(os.Environ(), "HOME="+os.TempDir(), "USER="+u.Name)
	return cmd, nil
}
