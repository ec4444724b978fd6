package snapclone

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/pgstage/pgstage/internal/osuser"
	"github.com/pgstage/pgstage/internal/pgver"
)

// Config describes the staging that snapshots are taken of. Zero fields
// mean the defaults documented on each.
type Config struct {
	// DataDir is the staging's data directory (required).
	DataDir string
	// BinDir holds the staging's pg_ctl and postgres, which clones run
	// (required for clones).
	BinDir string
	// ConnString reaches the running staging as a role allowed to run the
	// base backup functions and create a replication slot (a superuser),
	// in libpq key=value or URL form. Needed by reflink and copy snapshots
	// of a running staging (and by btrfs ones when it has tablespaces);
	// not needed for a stopped one. It is never logged.
	ConnString string
	// Method is how snapshots are taken; zero picks from the filesystem
	// (see Detect): btrfs for a subvolume, reflink where FICLONE works,
	// else copy.
	Method Method
	// OSUser is the unprivileged user clone servers run as when this
	// process is root; default "postgres".
	OSUser string
	// Label names the base backups in the staging's log; default
	// "pgstage snapshot".
	Label string
	// Logger receives progress; nil discards.
	Logger *slog.Logger
}

// Staging takes snapshots of one staging and makes clones of them. Its
// methods are safe to call from one goroutine at a time.
type Staging struct {
	cfg   Config
	user  osuser.User
	major pgver.Major
	log   *slog.Logger
}

// New checks cfg and fills in the defaults; every problem is reported at
// once.
func New(cfg Config) (*Staging, error) {
	var problems []error
	if cfg.DataDir == "" {
		problems = append(problems, errors.New("DataDir is required: the staging's data directory"))
	} else if !filepath.IsAbs(cfg.DataDir) {
		problems = append(problems, fmt.Errorf("DataDir %q must be an absolute path", cfg.DataDir))
	}
	if cfg.BinDir != "" {
		if _, err := os.Stat(filepath.Join(cfg.BinDir, "pg_ctl")); err != nil {
			problems = append(problems, fmt.Errorf("BinDir %s: no pg_ctl there: name the staging's binary directory", cfg.BinDir))
		}
	}
	switch cfg.Method {
	case MethodAuto, MethodBtrfs, MethodReflink, MethodCopy:
	default:
		problems = append(problems, fmt.Errorf("Method %q is none of btrfs, reflink, copy (or empty to detect)", cfg.Method))
	}
	s := &Staging{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.cfg.Label == "" {
		s.cfg.Label = "pgstage snapshot"
	}
	var err error
	if s.user, err = osuser.RunAs(cfg.OSUser); err != nil {
		problems = append(problems, err)
	}
	if cfg.DataDir != "" {
		if s.major, err = pgver.ReadDataDir(cfg.DataDir); err != nil {
			problems = append(problems, fmt.Errorf("DataDir %s holds no readable PG_VERSION: %w", cfg.DataDir, err))
		} else if _, err := rulesFor(s.major); err != nil {
			problems = append(problems, err)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(problems...))
	}
	return s, nil
}

// Config returns the configuration with its defaults filled in.
func (s *Staging) Config() Config { return s.cfg }

// running reports whether a live postmaster holds dataDir (its
// postmaster.pid names a live process).
func running(dataDir string) bool {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return false
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// newDir checks that dir does not exist and that its parent does, then
// makes it (0700, the OS user's).
func (s *Staging) newDir(dir, what string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("%w: the %s directory %q must be an absolute path", ErrInvalidConfig, what, dir)
	}
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("%w: the %s directory %s already exists: name a new one", ErrInvalidConfig, what, dir)
	}
	if fi, err := os.Stat(filepath.Dir(dir)); err != nil || !fi.IsDir() {
		return fmt.Errorf("%w: the parent of the %s directory %s does not exist: create it first", ErrInvalidConfig, what, dir)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("snapclone: %w", err)
	}
	return s.user.Chown(dir)
}
