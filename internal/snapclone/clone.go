package snapclone

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CloneOptions configures one clone. Zero fields mean the documented
// defaults.
type CloneOptions struct {
	// Dir is the clone's directory, new, whose parent exists (required):
	// Dir/data is its data directory, Dir/tblspc its tablespaces,
	// Dir/server.log its log. With a btrfs or reflink snapshot it must be
	// on the snapshot's filesystem.
	Dir string
	// Port is the clone server's port (required).
	Port int
	// SocketDir is its unix_socket_directories; default Dir.
	SocketDir string
	// ListenAddresses is its listen_addresses; default "localhost".
	ListenAddresses string
	// Settings are the caller's settings (name -> raw value), applied after
	// pgstage's own and so winning over them.
	Settings map[string]string
	// StartTimeout bounds the start until the clone accepts writes;
	// default 5 minutes.
	StartTimeout time.Duration
	// QueryUser is the role that asks the clone, over its socket, whether
	// it has left recovery; default "postgres". Where it cannot log in,
	// pg_ctl's wait is trusted: a clone in crash recovery takes no
	// connection before it is open.
	QueryUser string
}

// socketPathMax is the longest Unix socket path (sun_path less its NUL).
const socketPathMax = 107

func (o *CloneOptions) check() error {
	if o.SocketDir == "" {
		o.SocketDir = o.Dir
	}
	if o.ListenAddresses == "" {
		o.ListenAddresses = "localhost"
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 5 * time.Minute
	}
	if o.QueryUser == "" {
		o.QueryUser = "postgres"
	}
	var problems []error
	if o.Dir == "" {
		problems = append(problems, errors.New("Dir is required: the clone's new directory"))
	}
	if o.Port <= 0 || o.Port > 65535 {
		problems = append(problems, fmt.Errorf("Port %d is not a TCP port: give the clone a free port", o.Port))
	}
	if sock := filepath.Join(o.SocketDir, ".s.PGSQL."+strconv.Itoa(o.Port)); len(sock) > socketPathMax {
		problems = append(problems, fmt.Errorf("the socket path %s is longer than %d bytes: choose a shorter SocketDir", sock, socketPathMax))
	}
	for k, v := range o.Settings {
		if k == "" || strings.ContainsAny(k+v, "\n\r") {
			problems = append(problems, fmt.Errorf("setting %q = %q: names must not be empty, values hold no line breaks", k, v))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(problems...))
	}
	return nil
}

// Clone makes a writable copy of the snapshot in snapshotDir and starts it
// as a primary of its own: a writable btrfs snapshot of a btrfs snapshot,
// a reflink copy of a reflink one, a plain copy of a copy one. It is
// configured with its own port and socket directory and the caller's
// settings, without the staging's standby settings, recovered to the
// snapshot's consistent point by crash recovery (see startServer) and
// opened read-write, and started with pg_ctl as the
// OS user with an environment of PATH and LANG only. A failure stops and
// removes what the clone made; the snapshot and the staging are never
// written.
func (s *Staging) Clone(ctx context.Context, snapshotDir string, opts CloneOptions) (*Clone, error) {
	start := time.Now()
	if s.cfg.BinDir == "" {
		return nil, fmt.Errorf("%w: BinDir is required to start clones", ErrInvalidConfig)
	}
	if err := opts.check(); err != nil {
		return nil, err
	}
	snap, err := ReadSnapshot(snapshotDir)
	if err != nil {
		return nil, err
	}
	if snap.Major != s.major {
		return nil, fmt.Errorf("%w: the snapshot in %s is of PostgreSQL %s, the staging's binaries in %s of %s", ErrInvalidConfig, snapshotDir, snap.Major, s.cfg.BinDir, s.major)
	}
	r, err := rulesFor(snap.Major)
	if err != nil {
		return nil, err
	}
	if err := checkPort(opts.ListenAddresses, opts.Port, opts.SocketDir); err != nil {
		return nil, err
	}
	if err := s.newDir(opts.Dir, "clone"); err != nil {
		return nil, err
	}
	c := &Clone{Dir: opts.Dir, DataDir: filepath.Join(opts.Dir, dataSub), Snapshot: snapshotDir, Method: snap.Method,
		Major: snap.Major, Port: opts.Port, SocketDir: opts.SocketDir, ListenAddresses: opts.ListenAddresses,
		LogFile: filepath.Join(opts.Dir, "server.log"), Created: start}
	started, ok := false, false
	defer func() {
		if ok {
			return
		}
		cleanup := context.WithoutCancel(ctx)
		if started {
			if err := s.stopServer(cleanup, c.DataDir); err != nil {
				s.log.Error("could not stop the failed clone", "dir", c.Dir, "error", err)
			}
		}
		if err := removeTree(cleanup, opts.Dir); err != nil {
			s.log.Error("could not remove the failed clone: remove it by hand", "dir", opts.Dir, "error", err)
		}
	}()
	freeBefore := freeBytes(opts.Dir)
	if err := checkCloneFS(snap, opts.Dir); err != nil {
		return nil, err
	}
	s.log.Info("making a clone", "dir", opts.Dir, "snapshot", snapshotDir, "method", snap.Method)
	if err := s.copySnapshot(ctx, snap, c); err != nil {
		return nil, err
	}
	if err := s.configureClone(c, r, opts); err != nil {
		return nil, err
	}
	started = true
	if err := s.startServer(ctx, c, opts); err != nil {
		return nil, err
	}
	c.Ready = time.Since(start)
	c.ExtraBytes, c.SizeMeasure = extraBytes(ctx, opts.Dir, c.Method, freeBefore)
	if err := writeMeta(filepath.Join(opts.Dir, cloneMeta), c); err != nil {
		return nil, noSpace(fmt.Errorf("snapclone: %w", err), opts.Dir, "writing the clone's description")
	}
	ok = true
	s.log.Info("clone ready", "dir", opts.Dir, "port", c.Port, "ready", c.Ready, "extra_bytes", c.ExtraBytes)
	return c, nil
}

// checkCloneFS refuses a btrfs or reflink clone on another filesystem than
// its snapshot, before anything is copied.
func checkCloneFS(snap *Snapshot, dir string) error {
	if snap.Method == MethodCopy {
		return nil
	}
	ok, cross, err := probeReflink(filepath.Join(snap.DataDir, "PG_VERSION"), dir)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	dt, _ := FSType(dir)
	if cross {
		return &fsError{Path: snap.Dir, FSType: snap.FSType, OtherPath: dir, OtherFSType: dt,
			What: "a " + string(snap.Method) + " clone must be on its snapshot's filesystem",
			Hint: "choose a clone directory on the snapshot's filesystem (or take a copy-method snapshot to clone elsewhere)", Err: ErrCrossFilesystem}
	}
	return &fsError{Path: dir, FSType: dt, What: "this filesystem cannot clone files (FICLONE refused)",
		Hint: "choose a clone directory on the snapshot's filesystem", Err: ErrMethod}
}

// copySnapshot copies the snapshot's data directory and tablespaces into
// the clone, then removes what belongs to the staging's server (lock files,
// standby and recovery files, slots).
func (s *Staging) copySnapshot(ctx context.Context, snap *Snapshot, c *Clone) error {
	if snap.Method == MethodBtrfs {
		if _, err := btrfs(ctx, "subvolume", "snapshot", snap.DataDir, c.DataDir); err != nil {
			return noSpace(err, c.DataDir, "snapshotting "+snap.DataDir)
		}
	} else if err := copyTree(ctx, snap.DataDir, c.DataDir, copyOpts{reflink: snap.Method == MethodReflink}); err != nil {
		return noSpace(err, c.DataDir, "copying "+snap.DataDir)
	}
	for _, ts := range snap.Tablespaces {
		ts.Path = filepath.Join(c.Dir, tblspcSub, ts.OID)
		if err := os.MkdirAll(filepath.Dir(ts.Path), 0o700); err != nil {
			return fmt.Errorf("snapclone: %w", err)
		}
		if err := s.user.Chown(filepath.Dir(ts.Path)); err != nil {
			return fmt.Errorf("snapclone: %w", err)
		}
		src := filepath.Join(snap.Dir, tblspcSub, ts.OID)
		if err := copyTree(ctx, src, ts.Path, copyOpts{reflink: snap.Method != MethodCopy}); err != nil {
			return noSpace(err, ts.Path, "copying tablespace "+src)
		}
		c.Tablespaces = append(c.Tablespaces, ts)
	}
	if err := relinkTablespaces(c.DataDir, c.Tablespaces); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(c.DataDir, "tablespace_map")); err == nil {
		if err := s.writeDataFile(c.DataDir, "tablespace_map", tablespaceMap(c.Tablespaces)); err != nil {
			return err
		}
	}
	for _, name := range []string{"postmaster.pid", "postmaster.opts", "standby.signal", "recovery.signal",
		"recovery.conf", "recovery.done", "current_logfiles", "pg_replslot"} {
		if err := removeStale(c.DataDir, name); err != nil {
			return err
		}
	}
	if err := os.Mkdir(filepath.Join(c.DataDir, "pg_replslot"), 0o700); err != nil {
		return fmt.Errorf("snapclone: %w", err)
	}
	if err := s.user.Chown(filepath.Join(c.DataDir, "pg_replslot")); err != nil {
		return err
	}
	if snap.Method == MethodBtrfs && len(c.Tablespaces) == 0 {
		return nil // a subvolume snapshot, nothing copied
	}
	// One syncfs for everything copied above (copyTree does not sync).
	if err := syncFS(c.Dir); err != nil {
		return noSpace(fmt.Errorf("snapclone: syncing the clone %s: %w", c.Dir, err), c.Dir, "syncing the clone")
	}
	return nil
}

// checkPort fails with ErrPortInUse when a server already answers on the
// clone's socket or something listens on its TCP port.
func checkPort(listen string, port int, socketDir string) error {
	sock := filepath.Join(socketDir, ".s.PGSQL."+strconv.Itoa(port))
	if conn, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("%w: a server already listens on %s: choose another port or socket directory", ErrPortInUse, sock)
	}
	var hosts []string
	for _, h := range strings.Split(listen, ",") {
		switch h = strings.TrimSpace(h); h {
		case "":
		case "localhost":
			hosts = append(hosts, "127.0.0.1", "::1")
		case "*":
			hosts = append(hosts, "")
		default:
			hosts = append(hosts, h)
		}
	}
	for _, h := range hosts {
		l, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(port)))
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%w: %s is taken: choose another port for the clone", ErrPortInUse, net.JoinHostPort(h, strconv.Itoa(port)))
		}
		if err == nil {
			l.Close()
		}
		// Other errors (no IPv6 here) are the server's to report.
	}
	return nil
}

// DestroyClone stops the clone in dir (fast, then immediate) and removes
// it. A directory without a clone.json is left alone (ErrNotClone).
func (s *Staging) DestroyClone(ctx context.Context, dir string) error {
	c, err := ReadClone(dir)
	if err != nil {
		return err
	}
	if err := s.stopServer(ctx, c.DataDir); err != nil {
		return err
	}
	return removeTree(ctx, dir)
}
