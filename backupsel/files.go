package backupsel

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// fileMaker creates the files and directories of a restore with the modes
// and owner the data directory needs.
type fileMaker struct {
	dirMode, fileMode os.FileMode
	fixMode           bool // the umask strips bits we need: chmod explicitly
	chown             bool
	uid, gid          int
	sync              bool
}

func newFileMaker(group bool, opts RestoreOptions) fileMaker {
	m := fileMaker{dirMode: 0o700, fileMode: 0o600, chown: opts.UID != 0 || opts.GID != 0, uid: opts.UID, gid: opts.GID, sync: opts.Sync}
	if group {
		m.dirMode, m.fileMode = 0o750, 0o640
	}
	mask := processUmask()
	m.fixMode = m.dirMode&^mask != m.dirMode || m.fileMode&^mask != m.fileMode
	return m
}

var (
	umaskOnce  sync.Once
	umaskValue os.FileMode = 0o777
)

// processUmask reads the umask from /proc (changing it to read it would race
// with other goroutines); unknown means "assume the worst".
func processUmask() os.FileMode {
	umaskOnce.Do(func() {
		data, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					umaskValue = os.FileMode(m)
				}
			}
		}
	})
	return umaskValue
}

// createFlags never follow a symbolic link and never open an existing file:
// see create.
const createFlags = os.O_WRONLY | os.O_CREATE | os.O_EXCL | syscall.O_NOFOLLOW | syscall.O_CLOEXEC

// errInTheWay is wrapped when a name to be written is taken by something
// that is not a regular file.
var errInTheWay = errors.New("exists and is not a regular file (a directory or link restored earlier)")

// create makes a new file at p. An existing regular file of that name (an
// earlier entry, or a hard link to one) is unlinked first, as GNU tar does:
// writing into it would change the file a hard link shares, which Select
// may have checked. Anything else in the way is refused.
func (m *fileMaker) create(p string) (*os.File, error) {
	f, err := os.OpenFile(p, createFlags, m.fileMode)
	if !errors.Is(err, fs.ErrExist) {
		return f, err
	}
	if info, lerr := os.Lstat(p); lerr != nil || !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %w", p, errInTheWay)
	}
	if err := os.Remove(p); err != nil {
		return nil, err
	}
	return os.OpenFile(p, createFlags, m.fileMode)
}

// writeFile is the one way a restore writes a file: create p, fill it,
// give it its mode and owner, flush it when asked, close it.
func (m *fileMaker) writeFile(p string, fill func(f *os.File) error) error {
	f, err := m.create(p)
	if err != nil {
		return err
	}
	err = fill(f)
	if err == nil && m.fixMode {
		err = f.Chmod(m.fileMode)
	}
	if err == nil && m.chown {
		err = f.Chown(m.uid, m.gid)
	}
	if err == nil && m.sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeBytes writes data as the whole of a new file p.
func (m *fileMaker) writeBytes(p string, data []byte) error {
	return m.writeFile(p, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// mkdir creates dir with the directory mode and owner.
func (m *fileMaker) mkdir(dir string) error {
	if err := os.Mkdir(dir, m.dirMode); err != nil {
		return err
	}
	return m.fixDir(dir)
}

// fixDir gives an existing directory the directory mode and owner.
func (m *fileMaker) fixDir(dir string) error {
	if m.fixMode {
		if err := os.Chmod(dir, m.dirMode); err != nil {
			return err
		}
	}
	if m.chown {
		return os.Chown(dir, m.uid, m.gid)
	}
	return nil
}

// copyN copies exactly size bytes from r to w through buf, calling done
// after each write; a short source is a cut archive.
func copyN(w io.Writer, r io.Reader, size int64, buf []byte, done func(n int64) error) error {
	for size > 0 {
		n := int64(len(buf))
		if size < n {
			n = size
		}
		m, err := io.ReadFull(r, buf[:n])
		if m > 0 {
			if _, werr := w.Write(buf[:m]); werr != nil {
				return werr
			}
			size -= int64(m)
			if derr := done(int64(m)); derr != nil {
				return derr
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return errTruncated
			}
			return err
		}
	}
	return nil
}
