package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgstage/pgstage/backupsel"
	"github.com/pgstage/pgstage/internal/netcheck"
	"github.com/pgstage/pgstage/internal/osuser"
	"github.com/pgstage/pgstage/internal/pgver"
)

// preflight is what the checks learnt, for the job that follows.
type preflight struct {
	backup   *backupsel.Backup
	binMajor pgver.Major // 0 when the binaries could not be asked
	source   *sourceInfo
	// passOver lists the backups Restore found not whole since, for the
	// next selection.
	passOver []backupsel.Candidate
}

// Preflight runs the checks Link (or, on a linked staging, Resync) runs
// first, touching nothing, and reports every problem at once in a
// *PreflightError.
func (l *Linker) Preflight(ctx context.Context) error {
	if err := l.begin(); err != nil {
		return err
	}
	defer l.end()
	mode := modeLink
	if l.ownsDataDir() {
		mode = modeResync
	}
	_, err := l.deps.preflight(ctx, mode)
	return err
}

// preflightMode says which checks apply: a resync works on its own data
// directory and its own (running) server's port.
type preflightMode int

const (
	modeLink preflightMode = iota
	modeResync
)

// selectOptions are the backupsel options of the configuration.
func (l *Linker) selectOptions(passOver []backupsel.Candidate) backupsel.Options {
	cfg := l.cfg
	return backupsel.Options{
		WALPath: cfg.Restore.WALPath, StreamWhenNoWAL: cfg.Restore.StreamWhenNoWAL, Verify: cfg.Restore.Verify,
		Settle: cfg.Restore.Settle, Logger: l.log, PassOver: passOver,
	}
}

// versionProblem reports a backup of another major than the staging
// binaries; nil when they agree or the binaries' version is unknown.
func versionProblem(b *backupsel.Backup, binDir string, bin pgver.Major) *Problem {
	if bin == 0 {
		return nil
	}
	if m, err := pgver.Parse(b.PGVersion); err == nil && m == bin {
		return nil
	}
	e := fmt.Errorf("the backup %s is PostgreSQL %s, the staging binaries in %s are PostgreSQL %s", b.Name, b.PGVersion, binDir, bin)
	return &Problem{Check: "version", What: e.Error(), Do: "set Staging.BinDir to PostgreSQL " + b.PGVersion + " binaries (a standby runs the source's major version)", Err: e}
}

// nextBackup selects again after Restore found b not whole (a deferred
// backup, see backupsel.Backup.Deferred), passing over every backup found so, and
// checks the one chosen as preflight checked the first.
func (l *Linker) nextBackup(ctx context.Context, pf *preflight) (*backupsel.Backup, error) {
	b, err := backupsel.Select(ctx, l.cfg.BackupPath, l.selectOptions(pf.passOver))
	if err != nil {
		return nil, err
	}
	var problems []error
	if p := versionProblem(b, l.cfg.Staging.BinDir, pf.binMajor); p != nil {
		problems = append(problems, p)
	}
	if pf.source != nil {
		for _, p := range pf.source.problems(b) {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return b, nil
}

// runPreflight checks everything a link needs before anything is touched
// and reports every problem at once.
func (l *Linker) runPreflight(ctx context.Context, mode preflightMode) (*preflight, error) {
	cfg := l.cfg
	pf := &preflight{}
	var problems []error
	add := func(p *Problem) { problems = append(problems, p) }

	// Binaries.
	binMajor, err := binaryVersion(ctx, cfg.Staging.BinDir)
	if err != nil {
		add(&Problem{Check: "binaries", What: err.Error(), Do: "set Staging.BinDir to the bin directory of the staging PostgreSQL (it holds postgres and pg_ctl)", Err: err})
	}
	pf.binMajor = binMajor

	// The password goes into a passfile line and the conninfo: neither
	// can carry a line break or a zero byte.
	if strings.ContainsAny(cfg.Source.Password.Reveal(), "\r\n\x00") {
		add(&Problem{Check: "source", What: "Source.Password holds a line break or a zero byte, which a passfile line cannot carry",
			Do: "change the replication role's password to one without line breaks"})
	}

	// Staging port and directories (a resync reuses its own).
	if mode == modeLink {
		if err := portFree(cfg.Staging.Port, cfg.Staging.SocketDir); err != nil {
			add(&Problem{Check: "port", What: err.Error(), Do: "choose a free Staging.Port, or stop what uses it", Err: err})
		}
		if err := dataDirUsable(cfg.Staging.DataDir); err != nil {
			add(&Problem{Check: "data directory", What: err.Error(), Do: "empty it or name another Staging.DataDir (Open and Resync work on a staging linked before)", Err: err})
		}
	}
	if p := snapshotDirProblem(cfg); p != nil {
		add(p)
	}
	runUser, err := osuser.RunAs(cfg.Staging.OSUser)
	if err != nil {
		add(&Problem{Check: "os user", What: err.Error(), Do: "create the user or set Staging.OSUser", Err: err})
	} else if err := writableBy(cfg.Staging.SocketDir, runUser); err != nil {
		add(&Problem{Check: "socket directory", What: err.Error(), Do: fmt.Sprintf("give %s read, write and execute on it, or choose another Staging.SocketDir", runUser.Name), Err: err})
	}

	// Backup: exactly one path, readable, a whole backup in it; in take
	// mode, a path the backup taken after preflight can be written into.
	if l.takes() {
		if p := backupPathProblem(cfg.BackupPath); p != nil {
			add(p)
		}
	} else if b, err := backupsel.Select(ctx, cfg.BackupPath, l.selectOptions(nil)); err != nil {
		add(&Problem{Check: "backup", What: err.Error(), Do: backupAdvice(err), Err: err})
	} else {
		pf.backup = b
		if p := versionProblem(b, cfg.Staging.BinDir, binMajor); p != nil {
			add(p)
		}
	}

	// Source: a replication connection as the configured role.
	si, err := identifySource(ctx, cfg.Source)
	if err != nil {
		add(&Problem{Check: "source", What: err.Error(), Do: sourceAdvice(err), Err: err})
	} else {
		pf.source = si
		for _, p := range si.problems(pf.backup) {
			add(p)
		}
		if p := l.takeVersionProblem(si, binMajor); p != nil {
			add(p)
		}
	}

	// Config settings, checked against the staging binaries.
	if binMajor != 0 {
		for _, err := range validateSettings(ctx, cfg.Staging.BinDir, cfg.Settings, runUser) {
			add(&Problem{Check: "settings", What: err.Error(), Do: "fix or remove that entry of Settings", Err: err})
		}
	}

	if len(problems) > 0 {
		return nil, &PreflightError{Problems: problems}
	}
	return pf, nil
}

// binaryVersion returns the major of BinDir's postgres, after checking
// pg_ctl is there too.
func binaryVersion(ctx context.Context, binDir string) (pgver.Major, error) {
	if binDir == "" {
		return 0, errors.New("no binaries directory given")
	}
	for _, b := range []string{"postgres", "pg_ctl"} {
		st, err := os.Stat(filepath.Join(binDir, b))
		if err != nil {
			return 0, fmt.Errorf("%s: %w", filepath.Join(binDir, b), err)
		}
		if st.Mode()&0o111 == 0 {
			return 0, fmt.Errorf("%s is not executable", filepath.Join(binDir, b))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// postgres --version is answered before the server's root check.
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "postgres"), "--version").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s --version: %v: %s", filepath.Join(binDir, "postgres"), err, strings.TrimSpace(string(out)))
	}
	m, err := pgver.Parse(string(out))
	if err != nil {
		return 0, fmt.Errorf("%s --version printed %q, not a PostgreSQL version", filepath.Join(binDir, "postgres"), strings.TrimSpace(string(out)))
	}
	return m, nil
}

// portFree checks that nothing listens on port over TCP (any address or
// loopback) nor on the Unix socket a server on that port would create.
func portFree(port int, socketDir string) error {
	err := netcheck.PortFree(port, []string{"127.0.0.1", "0.0.0.0"}, []string{socketDir})
	var e *netcheck.InUseError
	switch {
	case !errors.As(err, &e):
		return err
	case e.Socket != "":
		return fmt.Errorf("a server listens on %s", e.Socket)
	default:
		return fmt.Errorf("port %d is in use (%s)", port, e.Addr)
	}
}

// dataDirUsable accepts an absent or empty data directory whose parent
// exists.
func dataDirUsable(dir string) error {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		parent := filepath.Dir(dir)
		if st, err := os.Stat(parent); err != nil || !st.IsDir() {
			return fmt.Errorf("the parent of %s, %s, is not a directory", dir, parent)
		}
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	names, err := f.Readdirnames(3)
	if err != nil && err != io.EOF {
		return fmt.Errorf("%s: %w", dir, err)
	}
	if len(names) > 0 {
		return fmt.Errorf("%s is not empty (it holds %s)", dir, strings.Join(names, ", "))
	}
	return nil
}

// writableBy checks that u can create files in dir, by its mode bits (this
// process may be root, for which access(2) says nothing about u).
func writableBy(dir string, u osuser.User) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	mode := st.Mode().Perm()
	var bits fs.FileMode
	switch {
	case u.UID == 0:
		return nil
	case int(sys.Uid) == u.UID:
		bits = mode >> 6
	case u.InGroup(int(sys.Gid)):
		bits = mode >> 3
	default:
		bits = mode
	}
	if bits&3 != 3 {
		return fmt.Errorf("%s (mode %v, owner %d:%d) is not writable by %s (uid %d)", dir, mode, sys.Uid, sys.Gid, u.Name, u.UID)
	}
	return nil
}

func backupAdvice(err error) string {
	var pe *backupsel.PermissionError
	switch {
	case errors.As(err, &pe):
		return "grant " + pe.Need + " on " + pe.Path + " to this process"
	case errors.Is(err, backupsel.ErrMultiplePaths):
		return "give exactly one backup path"
	case errors.Is(err, backupsel.ErrNoBackup):
		return "put a whole pg_basebackup -F t backup in a PostgreSQL_T<YYYYMMDDhhmmss> folder of the backup path (see the reasons above for each candidate)"
	}
	return "check BackupPath"
}

func sourceAdvice(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "28P01" || pe.Code == "28000":
			return "check Source.User and its password, and that the source's pg_hba.conf has a replication line for this host"
		case pe.Code == "53300":
			return "raise max_wal_senders on the source or end an idle WAL sender"
		case pe.Code == "42501":
			return "grant the REPLICATION attribute to Source.User (ALTER ROLE ... REPLICATION)"
		}
	}
	return "check Source.Host and Source.Port, that the source runs and accepts connections from this host"
}
