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

	"golang.org/x/sys/unix"
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
const createFlags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC

// errInTheWay is wrapped when a name to be written is taken by something
// that is not a regular file.
var errInTheWay = errors.New("exists and is not a regular file (a directory or link restored earlier)")

// rawFile is a file being restored, held by its descriptor. An *os.File
// costs, per file, an epoll_ctl at open (refused for regular files) and two
// fcntl calls for each Fd() (copy_file_range needs the descriptor): five
// system calls around the three (open, copy or write, close) that restore
// a small file.
type rawFile struct {
	fd   int
	name string
}

// Write writes all of b.
func (f rawFile) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Write(f.fd, b[n:])
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return n, &fs.PathError{Op: "write", Path: f.name, Err: err}
		case m == 0:
			return n, &fs.PathError{Op: "write", Path: f.name, Err: io.ErrShortWrite}
		}
		n += m
	}
	return n, nil
}

// create makes a new file at p. An existing regular file of that name (an
// earlier entry, or a hard link to one) is unlinked first, as GNU tar does:
// writing into it would change the file a hard link shares, which Select
// may have checked. Anything else in the way is refused.
func (m *fileMaker) create(p string) (rawFile, error) {
	f, err := m.open(p)
	if !errors.Is(err, fs.ErrExist) {
		return f, err
	}
	if info, lerr := os.Lstat(p); lerr != nil || !info.Mode().IsRegular() {
		return f, fmt.Errorf("%s %w", p, errInTheWay)
	}
	if err := os.Remove(p); err != nil {
		return f, err
	}
	return m.open(p)
}

func (m *fileMaker) open(p string) (rawFile, error) {
	for {
		fd, err := unix.Open(p, createFlags, uint32(m.fileMode))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return rawFile{fd: -1}, &fs.PathError{Op: "open", Path: p, Err: err}
		}
		return rawFile{fd: fd, name: p}, nil
	}
}

// writeFile is the one way a restore writes a file: create p, fill it,
// give it its mode and owner, start its write-out when asked and it is
// larger than writeAheadMin, close it.
func (m *fileMaker) writeFile(p string, fill func(f rawFile) error) error {
	f, err := m.create(p)
	if err != nil {
		return err
	}
	err = fill(f)
	if err == nil && m.fixMode {
		err = pathErr("chmod", p, unix.Fchmod(f.fd, uint32(m.fileMode)))
	}
	if err == nil && m.chown {
		err = pathErr("chown", p, unix.Fchown(f.fd, m.uid, m.gid))
	}
	if m.sync && err == nil && writeAheadOf(f.fd) {
		// Start writing it out now, while other files are written; Restore
		// waits for all of it with one syncfs (see RestoreOptions.Sync). A
		// hint only: syncfs reports what fails.
		_ = unix.SyncFileRange(f.fd, 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
	// close(2) is not retried on EINTR: on Linux the descriptor is gone.
	if cerr := pathErr("close", p, unix.Close(f.fd)); err == nil {
		err = cerr
	}
	return err
}

// writeAheadMin is the size above which a file of a Sync restore starts its
// write-out when it is closed. Below it, syncfs writes the file out with
// the others: a small file's early write-out is one allocation, journal
// update and I/O of its own, where the flusher writes thousands of them
// together. On the real backup of bench/RESULTS.md (22,000 files, 13 of
// them over 1 MiB holding 80% of the bytes), starting every file's
// write-out made a Sync restore take 0.87-1.12x `tar -xf && sync`; starting
// only those 13, 0.47-0.66x (16 MiB did the same, 64 KiB 0.56-0.78x).
const writeAheadMin = 1 << 20

// writeAheadOf says whether the file open at fd is large enough to start
// its write-out early (see writeAheadMin).
func writeAheadOf(fd int) bool {
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Size > writeAheadMin
}

func pathErr(op, p string, err error) error {
	if err == nil {
		return nil
	}
	return &fs.PathError{Op: op, Path: p, Err: err}
}

// writeBytes writes data as the whole of a new file p.
func (m *fileMaker) writeBytes(p string, data []byte) error {
	return m.writeFile(p, func(f rawFile) error {
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

// syncPath fsyncs the file or directory p.
func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
