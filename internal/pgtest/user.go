package pgtest

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/pgstage/pgstage/internal/osuser"
)

// User is the OS user the servers run as.
type User struct {
	Name     string
	UID, GID int
}

// OSUser returns the user servers run as: PGSTAGE_PG_USER (default
// "postgres") when the tests run as root, else the current user.
func OSUser(tb testing.TB) User {
	tb.Helper()
	u, err := osUser()
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

func osUser() (User, error) {
	u, err := osuser.RunAs(os.Getenv(EnvUser))
	if err != nil {
		return User{}, fmt.Errorf("pgtest: %w (or set %s)", err, EnvUser)
	}
	return User{Name: u.Name, UID: u.UID, GID: u.GID}, nil
}

// TempDir returns a new directory with a short path under the system temp
// directory (Unix socket paths are limited to about 100 bytes), owned by the
// OS user, and removed when the test ends. If the test process dies before
// that, the next test process to call TempDir stops the servers left running
// in it and removes it (see [Reap]).
func TempDir(tb testing.TB) string {
	tb.Helper()
	reapLeftovers()
	dir, err := os.MkdirTemp("", "pgs")
	if err != nil {
		tb.Fatal(err)
	}
	if err := writeOwner(dir); err != nil {
		os.Remove(dir)
		tb.Fatal(err)
	}
	tb.Cleanup(func() { removeTempDir(dir) })
	Chown(tb, dir)
	return dir
}

// Chown hands path and everything below it to the OS user. It does nothing
// when the tests do not run as root.
func Chown(tb testing.TB, path string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		return
	}
	u := OSUser(tb)
	err := filepath.WalkDir(path, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, u.UID, u.GID)
	})
	if err != nil {
		tb.Fatalf("pgtest: chown %s to %s: %v", path, u.Name, err)
	}
}

// Command returns a command that runs as the OS user (see OSUser).
func Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	if os.Geteuid() == 0 {
		if u, err := osUser(); err == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID)}}
			cmd.Env = append(os.Environ(), "HOME="+os.TempDir(), "USER="+u.Name)
		}
	}
	return cmd
}
