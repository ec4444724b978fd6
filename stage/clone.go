package stage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/pgstage/pgstage/internal/libpq"
	"github.com/pgstage/pgstage/internal/snapclone"
)

// CloneOptions configures one clone. Zero fields mean the defaults
// documented on each.
type CloneOptions struct {
	// ID names the clone (its directory under Snapshots.CloneDir); default
	// one made from the time.
	ID string
	// Port is the clone server's port; default a free one.
	Port int
	// SocketDir is its unix_socket_directories; default Staging.SocketDir
	// (each server's socket file is named after its port).
	SocketDir string
	// ListenAddresses is its listen_addresses; default "localhost".
	ListenAddresses string
	// Settings are set in its postgresql.conf after pgstage's own (name ->
	// raw value), e.g. {"work_mem": "64MB"}.
	Settings map[string]string
	// StartTimeout bounds its start; default 5 minutes.
	StartTimeout time.Duration
}

// Clone is a writable copy of a snapshot, started as a server of its own,
// and how to connect to it. It has the staging's roles and pg_hba.conf:
// Staging.DBUser reaches it over its socket as it reaches the staging (no
// password where the staging needs none).
type Clone struct {
	ID       string `json:"id"`
	Snapshot string `json:"snapshot"` // the ID of the snapshot it was made from
	Dir      string `json:"dir"`
	DataDir  string `json:"data_dir"`
	Method   string `json:"method"` // btrfs, reflink or copy
	// Host is the socket directory; Port, User and DBName complete the
	// connection (see ConnString).
	Host            string    `json:"host"`
	Port            int       `json:"port"`
	User            string    `json:"user"`
	DBName          string    `json:"dbname"`
	ListenAddresses string    `json:"listen_addresses,omitempty"`
	LogFile         string    `json:"log_file"`
	Created         time.Time `json:"created"`
	// Ready is how long it took until it accepted writes; ExtraBytes the
	// disk it added (measured as SizeMeasure says).
	Ready       time.Duration `json:"ready"`
	ExtraBytes  int64         `json:"extra_bytes"`
	SizeMeasure string        `json:"size_measure,omitempty"`
}

// ConnString is a libpq key=value connection string for the clone.
func (c Clone) ConnString() string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s", libpq.Quote(c.Host), c.Port, libpq.Quote(c.User), libpq.Quote(c.DBName))
}

// Clone makes a writable clone of the snapshot snapshotID and starts it: a
// btrfs snapshot of a btrfs snapshot, a reflink copy of a reflink one, a
// plain copy of a copy one, opened read-write at the snapshot's consistent
// point, on its own port and socket, without the staging's standby
// settings, run by Staging.OSUser. It never touches the staging or the
// snapshot; a failure removes what the clone made. The clone is recorded
// in the state file until DestroyClone; its server keeps running after
// Close (a clone is the caller's until destroyed). It works while
// replication is faulted: the snapshot was taken while it was not.
func (l *Linker) Clone(ctx context.Context, snapshotID string, opts CloneOptions) (*Clone, error) {
	if err := l.begin(); err != nil {
		return nil, err
	}
	defer l.end()
	if err := l.needLinked(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	i := slices.IndexFunc(l.st.Snapshots, func(s Snapshot) bool { return s.ID == snapshotID && snapshotID != "" })
	var snap Snapshot
	if i >= 0 {
		snap = l.st.Snapshots[i]
	}
	if opts.ID == "" {
		opts.ID = newID(time.Now(), func(id string) bool { return l.cloneIndexLocked(id) >= 0 })
	}
	exists := l.cloneIndexLocked(opts.ID) >= 0
	l.mu.Unlock()
	switch {
	case i < 0:
		return nil, fmt.Errorf("%w: no snapshot %q of %s (Snapshots lists them)", ErrNotFound, snapshotID, l.cfg.Staging.DataDir)
	case snap.Location == "":
		return nil, fmt.Errorf("%w: snapshot %s records positions only (Link's first sync, or Snapshots.Method none): take one with Snapshot", ErrNoData, snapshotID)
	case exists:
		return nil, fmt.Errorf("%w: clone %s already exists: choose another ID", ErrInvalidConfig, opts.ID)
	case opts.ID != filepath.Base(opts.ID) || opts.ID == "." || opts.ID == "..":
		return nil, fmt.Errorf("%w: clone ID %q must be a plain name", ErrInvalidConfig, opts.ID)
	}
	if opts.SocketDir == "" {
		opts.SocketDir = l.cfg.Staging.SocketDir
	}
	if opts.Port == 0 {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		opts.Port = p
	}
	sn, err := l.deps.snap()
	if err != nil {
		return nil, err
	}
	if err := l.ensureDir(l.cfg.Snapshots.CloneDir, 0o711); err != nil {
		return nil, err
	}
	dir := filepath.Join(l.cfg.Snapshots.CloneDir, opts.ID)
	l.log.Info("making a clone", "id", opts.ID, "snapshot", snapshotID, "port", opts.Port)
	sc, err := sn.Clone(ctx, snap.Location, snapclone.CloneOptions{
		Dir: dir, Port: opts.Port, SocketDir: opts.SocketDir, ListenAddresses: opts.ListenAddresses,
		Settings: opts.Settings, StartTimeout: opts.StartTimeout, QueryUser: l.cfg.Staging.DBUser,
	})
	if err != nil {
		return nil, fmt.Errorf("stage: clone of snapshot %s: %w", snapshotID, err)
	}
	c := Clone{
		ID: opts.ID, Snapshot: snapshotID, Dir: dir, DataDir: sc.DataDir, Method: string(sc.Method),
		Host: sc.SocketDir, Port: sc.Port, User: l.cfg.Staging.DBUser, DBName: "postgres",
		ListenAddresses: sc.ListenAddresses, LogFile: sc.LogFile, Created: sc.Created,
		Ready: sc.Ready, ExtraBytes: sc.ExtraBytes, SizeMeasure: sc.SizeMeasure,
	}
	l.mu.Lock()
	l.st.Clones = append(l.st.Clones, c)
	err = l.saveLocked()
	l.mu.Unlock()
	if err != nil {
		// Unrecorded, it would be nobody's to destroy.
		l.destroy(context.WithoutCancel(ctx), sn, c)
		return nil, err
	}
	l.log.Info("clone ready", "id", c.ID, "port", c.Port, "ready", c.Ready, "extra_bytes", c.ExtraBytes)
	return &c, nil
}

// Clones returns the clones that exist, oldest first.
func (l *Linker) Clones() []Clone {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Clone(nil), l.st.Clones...)
}

// DestroyClone stops the clone id and removes it and its record. Its
// snapshot is kept.
func (l *Linker) DestroyClone(ctx context.Context, id string) error {
	if err := l.begin(); err != nil {
		return err
	}
	defer l.end()
	l.mu.Lock()
	i := l.cloneIndexLocked(id)
	var c Clone
	if i >= 0 {
		c = l.st.Clones[i]
	}
	l.mu.Unlock()
	if i < 0 {
		return fmt.Errorf("%w: no clone %q of %s (Clones lists them)", ErrNotFound, id, l.cfg.Staging.DataDir)
	}
	sn, err := l.deps.snap()
	if err != nil {
		return err
	}
	if err := l.destroy(ctx, sn, c); err != nil {
		return err
	}
	l.mu.Lock()
	l.st.Clones = slices.DeleteFunc(l.st.Clones, func(o Clone) bool { return o.ID == id })
	err = l.saveLocked()
	l.mu.Unlock()
	l.log.Info("clone destroyed", "id", id)
	return err
}

// destroy stops and removes a clone's server and directory; one already
// gone by hand is fine.
func (l *Linker) destroy(ctx context.Context, sn snapper, c Clone) error {
	err := sn.DestroyClone(ctx, c.Dir)
	if errors.Is(err, snapclone.ErrNotClone) {
		if _, serr := os.Stat(c.Dir); errors.Is(serr, os.ErrNotExist) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("stage: destroying clone %s: %w", c.ID, err)
	}
	return nil
}

func (l *Linker) cloneIndexLocked(id string) int {
	return slices.IndexFunc(l.st.Clones, func(c Clone) bool { return c.ID == id })
}

// freePort asks the kernel for a free TCP port on localhost.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("stage: finding a free port for the clone: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
