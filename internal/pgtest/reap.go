package pgtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A test process killed mid-run (go test's -timeout, Ctrl-C, SIGKILL) never
// runs its t.Cleanup, so the servers it started keep running in their
// TempDir directories, holding ports, memory and disk; a freeze test may have
// left them stopped (SIGSTOP). pg_ctl detaches the postmaster (setsid), so
// nothing else ever stops them. The reaper does, the next time a test process
// of the same user uses the harness.
//
// Each TempDir directory gets an owner file beside it, <dir>.pgtest-owner,
// naming the test process that made it. It sits beside the directory, not in
// it, because tests use TempDir directories as data directories and backup
// paths that must start empty. A directory without an owner file (made by an
// older harness, or in the instant between creating it and writing the file)
// is never touched.

// ownerSuffix names the owner file of directory d: d + ownerSuffix.
const ownerSuffix = ".pgtest-owner"

// Grace periods of a reap: how long postmasters get to shut down after
// SIGQUIT (PostgreSQL 14+ sends SIGKILL to its own children after 5
// seconds), and how long SIGKILL-ed processes get to disappear.
const (
	quitGrace = 8 * time.Second
	killGrace = 5 * time.Second
)

// owner identifies a test process. A pid alone is not enough: pids are
// reused, so a dead owner's pid may belong to an unrelated live process. The
// start time, with the boot it counts from, is unique.
type owner struct {
	PID   int
	Start uint64 // /proc/<pid>/stat field 22, clock ticks after boot
	Boot  string // /proc/sys/kernel/random/boot_id
	PIDNS string // the pid namespace the pid is valid in
	UID   int    // effective uid
}

// self describes the current process as an owner.
var self = sync.OnceValues(func() (owner, error) {
	o := owner{PID: os.Getpid(), UID: os.Geteuid()}
	_, start, err := procStat(o.PID)
	if err != nil {
		return owner{}, err
	}
	o.Start = start
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return owner{}, err
	}
	o.Boot = strings.TrimSpace(string(boot))
	if o.PIDNS, err = os.Readlink("/proc/self/ns/pid"); err != nil {
		return owner{}, err
	}
	return o, nil
})

func (o owner) String() string {
	return fmt.Sprintf("pid %d\nstart %d\nboot %s\npidns %s\nuid %d\n", o.PID, o.Start, o.Boot, o.PIDNS, o.UID)
}

func parseOwner(b []byte) (owner, error) {
	var o owner
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || seen[k] {
			return owner{}, fmt.Errorf("pgtest: owner file line %q", sc.Text())
		}
		seen[k] = true
		var err error
		switch k {
		case "pid":
			o.PID, err = strconv.Atoi(v)
		case "start":
			o.Start, err = strconv.ParseUint(v, 10, 64)
		case "boot":
			o.Boot = v
		case "pidns":
			o.PIDNS = v
		case "uid":
			o.UID, err = strconv.Atoi(v)
		default:
			err = errors.New("unknown key")
		}
		if err != nil {
			return owner{}, fmt.Errorf("pgtest: owner file line %q: %v", sc.Text(), err)
		}
	}
	if len(seen) != 5 || o.PID <= 0 || o.Boot == "" || o.PIDNS == "" {
		return owner{}, fmt.Errorf("pgtest: owner file incomplete: %q", b)
	}
	return o, nil
}

type liveness int

const (
	ownerUnknown liveness = iota // not ours to judge: leave alone
	ownerAlive
	ownerDead
)

// liveness tells whether o is still running, as seen by cur.
func (o owner) liveness(cur owner) liveness {
	switch {
	case o.UID != cur.UID:
		return ownerUnknown // another user's tests
	case o.Boot != cur.Boot:
		return ownerDead // a reboot ended every process
	case o.PIDNS != cur.PIDNS:
		return ownerUnknown // its pid means nothing here
	}
	state, start, err := procStat(o.PID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ownerDead
	case err != nil:
		return ownerUnknown
	case start != o.Start, state == 'Z', state == 'X':
		return ownerDead // pid reused, or exited and not yet waited for
	}
	return ownerAlive
}

// writeOwner records the current process as the owner of dir. It records
// nothing where /proc cannot say who is alive: such a directory is never
// reaped.
func writeOwner(dir string) error {
	o, err := self()
	if err != nil {
		return nil
	}
	return os.WriteFile(dir+ownerSuffix, []byte(o.String()), 0o644)
}

// removeTempDir is TempDir's cleanup. The owner file goes only with the
// directory, so that whatever could not be removed is reaped later.
func removeTempDir(dir string) {
	if os.RemoveAll(dir) == nil {
		os.Remove(dir + ownerSuffix)
	}
}

var reapOnce sync.Once

// reapLeftovers reaps once per test process, before its first TempDir.
func reapLeftovers() { reapOnce.Do(func() { Reap() }) }

// Reaped says what Reap did to one directory.
type Reaped struct {
	Dir         string
	Owner       int   // pid of the dead test process
	Postmasters []int // sent SIGQUIT
	Killed      []int // sent SIGKILL: still there after the postmasters' grace, or not servers
	Err         error // what could not be done; the directory is then kept
}

func (r Reaped) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pgtest: reaped %s, left by test process %d that died before its cleanup:", r.Dir, r.Owner)
	if len(r.Postmasters) > 0 {
		fmt.Fprintf(&b, " postmaster %s sent SIGQUIT;", join(r.Postmasters))
	}
	if len(r.Killed) > 0 {
		fmt.Fprintf(&b, " process %s sent SIGKILL;", join(r.Killed))
	}
	if r.Err != nil {
		fmt.Fprintf(&b, " %v", r.Err)
	} else {
		b.WriteString(" removed")
	}
	return b.String()
}

func join(pids []int) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

// Reap stops what test processes of this user left behind when they died
// without running their cleanup, and removes it: for every TempDir directory
// whose owner has exited, every process whose working directory is inside it
// (a postmaster and its children work in their data directory) is continued
// (SIGCONT: a freeze test may have stopped it), postmasters get SIGQUIT
// (immediate shutdown), whatever is left after a grace period gets SIGKILL,
// and the directory is removed. Directories of live owners, of other users,
// and without an owner file are never touched, nor is any process outside
// them.
//
// It prints one line per directory reaped to stderr, and nothing when there
// was nothing to reap. The first TempDir (so the first StartPrimary) of every
// test process calls it, so `make test` cleans up after a killed run by
// itself.
func Reap() []Reaped {
	out := reap(os.TempDir())
	for _, r := range out {
		fmt.Fprintln(os.Stderr, r)
	}
	return out
}

// reap reaps the leftovers among root/pgs*.
func reap(root string) []Reaped {
	cur, err := self()
	if err != nil {
		return nil
	}
	files, _ := filepath.Glob(filepath.Join(root, "pgs*"+ownerSuffix))
	var out []Reaped
	for _, f := range files {
		if r, ok := reapDir(strings.TrimSuffix(f, ownerSuffix), cur); ok {
			out = append(out, r)
		}
	}
	return out
}

// reapDir reaps dir if its owner is dead. ok is false when it did nothing
// worth reporting.
func reapDir(dir string, cur owner) (r Reaped, ok bool) {
	b, err := os.ReadFile(dir + ownerSuffix)
	if err != nil {
		return r, false
	}
	if o, err := parseOwner(b); err != nil || o.liveness(cur) != ownerDead {
		return r, false
	}
	// Test processes starting together all reap: one at a time per
	// directory, the others wait and then find it gone.
	f, err := os.Open(dir + ownerSuffix)
	if err != nil {
		return r, false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return r, false
	}
	if !sameFile(f, dir+ownerSuffix) {
		return r, false // reaped meanwhile
	}
	b, err = io.ReadAll(f)
	if err != nil {
		return r, false
	}
	o, err := parseOwner(b)
	if err != nil || o.liveness(cur) != ownerDead {
		return r, false
	}
	r = Reaped{Dir: dir, Owner: o.PID}

	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		os.Remove(dir + ownerSuffix) // the directory went, its owner file stayed
		return r, false
	}
	if err != nil || !fi.IsDir() {
		return r, false // not a TempDir directory: leave it
	}
	resolved, err := filepath.EvalSymlinks(dir) // as /proc/<pid>/cwd shows it
	if err != nil {
		r.Err = err
		return r, true
	}
	if r.Err = stopProcsIn(resolved, &r); r.Err != nil {
		return r, true
	}
	if r.Err = os.RemoveAll(dir); r.Err != nil {
		return r, true
	}
	os.Remove(dir + ownerSuffix)
	return r, true
}

// sameFile reports whether f is still the file at name.
func sameFile(f *os.File, name string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(name)
	return err == nil && os.SameFile(a, b)
}

// stopProcsIn stops every process working inside dir and records what it did in r.
func stopProcsIn(dir string, r *Reaped) error {
	procs := procsIn(dir)
	for _, p := range procs {
		p.h.Signal(syscall.SIGCONT)
	}
	var quit []proc
	for _, p := range procs {
		if p.postmaster && p.h.Signal(syscall.SIGQUIT) == nil {
			r.Postmasters = append(r.Postmasters, p.pid)
			quit = append(quit, p)
		}
	}
	if len(quit) > 0 {
		waitGone(quit, quitGrace) // a postmaster exits after its children
	}
	// Rescan each round: a postmaster may have forked meanwhile.
	for range 3 {
		left := procsIn(dir)
		if len(left) == 0 {
			return nil
		}
		for _, p := range left {
			if p.h.Signal(syscall.SIGKILL) == nil {
				r.Killed = append(r.Killed, p.pid)
			}
		}
		waitGone(left, killGrace)
	}
	if left := procsIn(dir); len(left) > 0 {
		pids := make([]int, len(left))
		for i, p := range left {
			pids[i] = p.pid
		}
		return fmt.Errorf("processes %s survived SIGKILL; directory kept", join(pids))
	}
	return nil
}

// proc is a process working inside a reaped directory. h is a pidfd handle,
// opened before checking the process, so no signal can reach another
// process that reused its pid.
type proc struct {
	pid        int
	start      uint64
	h          *os.Process
	postmaster bool
}

// procsIn lists the live processes, of this user or the servers' OS user,
// whose working directory is dir or below it.
func procsIn(dir string) []proc {
	uids := map[uint32]bool{uint32(os.Geteuid()): true}
	if u, err := osUser(); err == nil {
		uids[uint32(u.UID)] = true
	}
	entries, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if p, ok := procIn(pid, dir, uids); ok {
			out = append(out, p)
		}
	}
	return out
}

func procIn(pid int, dir string, uids map[uint32]bool) (proc, bool) {
	state, start, err := procStat(pid)
	if err != nil || state == 'Z' || state == 'X' {
		return proc{}, false
	}
	base := "/proc/" + strconv.Itoa(pid)
	fi, err := os.Stat(base)
	if err != nil {
		return proc{}, false
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || !uids[st.Uid] {
		return proc{}, false
	}
	cwd, err := os.Readlink(base + "/cwd")
	if err != nil || (cwd != dir && !strings.HasPrefix(cwd, dir+"/")) {
		return proc{}, false
	}
	h, err := os.FindProcess(pid)
	if err != nil {
		return proc{}, false
	}
	// Same start time after opening the handle: the handle is the process
	// examined above, not one that reused its pid.
	if !procAlive(pid, start) {
		h.Release()
		return proc{}, false
	}
	p := proc{pid: pid, start: start, h: h}
	// postmaster.pid in a postmaster's data directory (its working
	// directory) starts with its pid; its children work there too.
	if b, err := os.ReadFile(base + "/cwd/postmaster.pid"); err == nil {
		first, _, _ := strings.Cut(string(b), "\n")
		p.postmaster = strings.TrimSpace(first) == strconv.Itoa(pid)
	}
	return p, true
}

// waitGone waits until every process in procs has exited, or grace has passed.
func waitGone(procs []proc, grace time.Duration) {
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		alive := false
		for _, p := range procs {
			if procAlive(p.pid, p.start) {
				alive = true
				break
			}
		}
		if !alive {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// procAlive reports whether the process pid that started at start is still
// running (a zombie is not: it only waits for its parent).
func procAlive(pid int, start uint64) bool {
	state, s, err := procStat(pid)
	return err == nil && s == start && state != 'Z' && state != 'X'
}

// procStat returns the state and the start time (clock ticks after boot) of
// process pid, from /proc/<pid>/stat.
func procStat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may hold anything.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("pgtest: /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 { // f[0] is field 3, state; f[19] is field 22, starttime
		return 0, 0, fmt.Errorf("pgtest: /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("pgtest: /proc/%d/stat: starttime: %v", pid, err)
	}
	return f[0][0], start, nil
}
