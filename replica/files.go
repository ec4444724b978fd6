package replica

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/pgstage/pgstage/internal/atomicfile"
)

// writeFile replaces path atomically with a 0600 file of the OS user's
// (see [atomicfile.Write]): the mode and owner are set before the data is
// in, so a secret is never readable by others for an instant.
func (s *Standby) writeFile(path string, data []byte) error {
	var opts []atomicfile.Option
	if s.asUser {
		opts = append(opts, atomicfile.Owner(s.user.UID, s.user.GID))
	}
	if err := atomicfile.Write(path, data, 0o600, opts...); err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	return nil
}

// removeFile removes path and reports whether it was there.
func removeFile(path string) (bool, error) {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("replica: %w", err)
	}
	return true, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// ownDataDir makes sure the OS user owns the data directory (the server
// refuses a data directory it does not own) and that its mode is one the
// server accepts: 0700, or 0750 for group access (11+). Everything below is
// given to the user only when the top is not theirs already, so a restore
// that got the owners right costs one stat.
func (s *Standby) ownDataDir() (changed bool, err error) {
	st, err := os.Stat(s.cfg.DataDir)
	if err != nil {
		return false, fmt.Errorf("replica: data directory: %w", err)
	}
	if !st.IsDir() {
		return false, fmt.Errorf("replica: data directory %s is not a directory", s.cfg.DataDir)
	}
	if perm := st.Mode().Perm(); perm != 0o700 && perm != 0o750 {
		if err := os.Chmod(s.cfg.DataDir, 0o700); err != nil {
			return false, fmt.Errorf("replica: data directory mode %04o: %w", perm, err)
		}
		changed = true
	}
	if !s.asUser {
		return changed, nil
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) == s.user.UID {
		return changed, nil
	}
	err = filepath.WalkDir(s.cfg.DataDir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return s.user.Chown(p)
	})
	if err != nil {
		return false, fmt.Errorf("replica: giving the data directory to %s: %w", s.user.Name, err)
	}
	return true, nil
}

// can reports whether the OS user has the permission bits (4 read, 2
// write, 1 search) on path, as owner, through any of their groups, or as
// others.
func (s *Standby) can(path string, bits os.FileMode) (bool, error) {
	if !s.asUser {
		return true, nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return true, nil
	}
	perm := st.Mode().Perm()
	switch {
	case int(sys.Uid) == s.user.UID:
		return perm&(bits<<6) == bits<<6, nil
	case s.user.InGroup(int(sys.Gid)):
		return perm&(bits<<3) == bits<<3, nil
	default:
		return perm&bits == bits, nil
	}
}

// reachable checks that the OS user can read path: search permission on
// every directory above it and read permission on the file. A password file
// the server cannot read makes the walreceiver fail with "no password
// supplied", long after Setup returned.
func (s *Standby) reachable(path string) error {
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		ok, err := s.can(dir, 0o1)
		if err != nil {
			return fmt.Errorf("replica: %w", err)
		}
		if !ok {
			return fmt.Errorf("replica: %s cannot enter %s, so the server cannot read %s: give it search permission or choose another PassFile", s.user.Name, dir, path)
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	ok, err := s.can(path, 0o4)
	if err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	if !ok {
		return fmt.Errorf("replica: %s cannot read %s", s.user.Name, path)
	}
	return nil
}

// prepareSocketDirs makes each of unix_socket_directories usable by the
// server: a missing one is created (0755, the OS user's, so clients can
// reach the socket); an existing one must let the OS user write in it.
func (s *Standby) prepareSocketDirs() error {
	for _, dir := range strings.Split(s.cfg.SocketDir, ",") {
		dir = strings.TrimSpace(dir)
		if dir == "" {
			continue
		}
		if !exists(dir) {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("replica: socket directory: %w", err)
			}
			if err := s.user.Chown(dir); err != nil {
				return fmt.Errorf("replica: socket directory: %w", err)
			}
			continue
		}
		ok, err := s.can(dir, 0o3)
		if err != nil {
			return fmt.Errorf("replica: socket directory: %w", err)
		}
		if !ok {
			return fmt.Errorf("replica: %s cannot create its socket in %s: give it write permission or choose another SocketDir", s.user.Name, dir)
		}
	}
	return nil
}
