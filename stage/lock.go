package stage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

const lockName = "lock"

// dirLock is an exclusive lock on StateDir/lock, held for the Linker's life.
//
// Across processes it is a POSIX record lock (fcntl F_SETLK): the kernel
// drops it when the process dies, so a crash leaves no stale lock, and unlike
// flock it is not shared with children forked by other goroutines (an flock
// would stay held by a child between fork and exec, after Close). Within a
// process, where POSIX locks do not exclude, a registry of held paths does.
// The file's text (a pid) only feeds the error message.
type dirLock struct {
	f    *os.File
	path string
}

var held = struct {
	sync.Mutex
	paths map[string]bool
}{paths: map[string]bool{}}

func lockDir(dir string) (*dirLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("stage: state directory %s: %w", dir, err)
	}
	name, err := filepath.Abs(filepath.Join(dir, lockName))
	if err != nil {
		return nil, err
	}
	held.Lock()
	defer held.Unlock()
	if held.paths[name] {
		return nil, fmt.Errorf("%w: a Linker of this process holds %s; close it first (one Linker per staging data directory)", ErrLocked, name)
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("stage: lock file: %w", err)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		holder, _ := os.ReadFile(name)
		f.Close()
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
			who := strings.TrimSpace(string(holder))
			if who == "" {
				who = "another process"
			}
			return nil, fmt.Errorf("%w: %s holds %s; close it first (one Linker per staging data directory)", ErrLocked, who, name)
		}
		return nil, fmt.Errorf("stage: lock %s: %w", name, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte("pid "+strconv.Itoa(os.Getpid())+"\n"), 0)
	held.paths[name] = true
	return &dirLock{f: f, path: name}, nil
}

func (l *dirLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	held.Lock()
	defer held.Unlock()
	l.f.Truncate(0)
	err := l.f.Close() // closing the descriptor releases the lock
	l.f = nil
	delete(held.paths, l.path)
	return err
}
