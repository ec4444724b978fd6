package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Status is what Status found.
type Status struct {
	Running bool
	PID     int // the postmaster's, when running
	// WalReceiver: a walreceiver process runs under the postmaster.
	WalReceiver bool
}

// Status reports whether the staging server runs (its postmaster.pid names
// a live process) and whether a walreceiver runs under it.
func (s *Standby) Status(ctx context.Context) (Status, error) {
	pid, err := s.postmaster()
	if err != nil || pid == 0 {
		return Status{}, err
	}
	return Status{Running: true, PID: pid, WalReceiver: walReceiverOf(pid)}, nil
}

// postmaster returns the pid of the running postmaster, 0 when none runs.
func (s *Standby) postmaster() (int, error) {
	b, err := os.ReadFile(filepath.Join(s.cfg.DataDir, "postmaster.pid"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("replica: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, nil // being written, or garbage: not running
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0, nil // stale file
	}
	return pid, nil
}

// walReceiverOf reports whether a child of pid is a walreceiver, from
// /proc (Linux): its process title is "postgres: walreceiver ..." (10+) or
// "postgres: wal receiver process ..." (9.x).
func walReceiverOf(pid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	want := strconv.Itoa(pid)
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[1] != want {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if c := string(cmd); strings.Contains(c, "walreceiver") || strings.Contains(c, "wal receiver") {
			return true
		}
	}
	return false
}
