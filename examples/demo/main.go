// Command demo runs pgstage's whole job on a throwaway local source, in
// about ten seconds: it starts a PostgreSQL server to play the production
// source, writes rows, takes a real base backup into a
// PostgreSQL_T<timestamp> folder, links a staging standby from it with
// stage.Linker, shows a row arriving, stops the source to show the fault
// and the refused snapshot, starts it again to show the recovery and a
// snapshot that holds the data, makes a writable clone of it, writes on the
// clone, shows that neither the staging nor the source sees that, destroys
// the clone, and cleans everything up. Run as root on a machine whose
// temporary directory is not on btrfs or XFS, it puts the staging on a
// small loop-mounted btrfs (or XFS) so that the clone shares blocks.
//
//	make demo                          # PostgreSQL 17
//	PGSTAGE_DEMO_MAJOR=12 make demo    # any of 10-18 that scripts/install-postgres installed
//
// The PostgreSQL binaries are the ones `make` installs (scripts/install-postgres).
// Run as root, the servers run as the OS user "postgres" (PGSTAGE_PG_USER).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgstage/pgstage/internal/osuser"
	"github.com/pgstage/pgstage/stage"
	"github.com/pgstage/pgstage/walwatch"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	err := run(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("\nDone in %.1fs.\n", time.Since(start).Seconds())
}

func run(ctx context.Context) (err error) {
	major := 17
	if s := os.Getenv("PGSTAGE_DEMO_MAJOR"); s != "" {
		if major, err = strconv.Atoi(s); err != nil {
			return fmt.Errorf("PGSTAGE_DEMO_MAJOR=%q: %w", s, err)
		}
	}
	binDir := filepath.Join(cacheDir(), strconv.Itoa(major), "bin")
	if _, err := os.Stat(filepath.Join(binDir, "postgres")); err != nil {
		return fmt.Errorf("PostgreSQL %d is not installed in %s: run `make demo` (it runs scripts/install-postgres)", major, binDir)
	}
	u, err := serverUser()
	if err != nil {
		return err
	}

	// Everything lives in one directory, removed at the end.
	dir, err := os.MkdirTemp("", "pgstage-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, d := range []string{"source", "backups"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	if err := u.chown(dir, filepath.Join(dir, "source"), filepath.Join(dir, "backups")); err != nil {
		return err
	}

	fmt.Printf("pgstage demo: PostgreSQL %d, working in %s\n\n", major, dir)

	// 1. A throwaway source.
	src := &source{bin: binDir, dir: filepath.Join(dir, "source"), user: u, password: randomPassword()}
	fmt.Println("1. Starting a throwaway source server and writing 1000 rows...")
	if err := src.init(ctx); err != nil {
		return err
	}
	defer src.stop(context.Background(), "immediate")
	if err := src.start(ctx); err != nil {
		return err
	}
	if err := src.exec(ctx, "CREATE TABLE demo (id bigserial PRIMARY KEY, note text)",
		"INSERT INTO demo (note) SELECT 'row ' || g FROM generate_series(1, 1000) g"); err != nil {
		return err
	}
	fmt.Printf("   source listening on 127.0.0.1:%d, replication role %q\n", src.port, "replicator")

	// 2. A real base backup into a PostgreSQL_T<timestamp> folder.
	backupPath := filepath.Join(dir, "backups")
	folder := filepath.Join(backupPath, "PostgreSQL_T"+time.Now().Format("20060102150405"))
	fmt.Printf("\n2. Taking a base backup into %s...\n", filepath.Base(folder))
	if err := src.backup(ctx, folder); err != nil {
		return err
	}
	if names, err := filepath.Glob(filepath.Join(folder, "*")); err == nil {
		for _, n := range names {
			fmt.Printf("   %s\n", filepath.Base(n))
		}
	}

	// 3. Link a staging standby from it, on a filesystem that shares blocks
	// if the machine allows.
	fmt.Println("\n3. Choosing where the staging lives...")
	where, unmount, err := stagingFS(dir, u)
	defer func() {
		if uerr := unmount(); uerr != nil {
			fmt.Fprintf(os.Stderr, "cleaning up the loop filesystem: %v\n", uerr)
		}
	}()
	if err != nil {
		return err
	}
	stagingPort, err := freePort()
	if err != nil {
		return err
	}
	cfg := stage.Config{
		BackupPath: backupPath,
		Source:     stage.Source{Host: "127.0.0.1", Port: src.port, User: "replicator", Password: stage.Password(src.password), SSLMode: "disable"},
		Staging: stage.Staging{
			DataDir:   filepath.Join(where, "staging"),
			Port:      stagingPort,
			BinDir:    binDir,
			SocketDir: src.dir,
			OSUser:    u.Name,
		},
		Settings: []stage.Setting{
			{Name: "wal_retrieve_retry_interval", Value: "500ms"}, // retry the source quickly
			{Name: "fsync", Value: "off"},                         // a throwaway staging
		},
		Progress: progressBar(),
	}
	fmt.Printf("   linking a staging standby in %s (port %d)...\n", cfg.Staging.DataDir, stagingPort)
	l, err := stage.New(cfg)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		l.Disable(ctx) // stops the staging server
		l.Close()
	}()
	if err := l.Link(ctx); err != nil {
		return err
	}
	st, err := l.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("   linked from %s: %s, replayed up to %s\n", st.Backup.Name, st.State, st.ReplayLSN)

	// 4. A row written on the source arrives on the staging.
	fmt.Println("\n4. Writing a row on the source...")
	var id int64
	if err := src.queryRow(ctx, "INSERT INTO demo (note) VALUES ('written after the link') RETURNING id", &id); err != nil {
		return err
	}
	t0 := time.Now()
	note, err := waitRow(ctx, cfg.Staging, id)
	if err != nil {
		return err
	}
	fmt.Printf("   row %d %q is on the staging after %v\n", id, note, time.Since(t0).Round(time.Millisecond))

	// 5. The source stops: a fault, and snapshots are refused.
	fmt.Println("\n5. Stopping the source...")
	stopped := time.Now()
	if err := src.stop(ctx, "fast"); err != nil {
		return err
	}
	ev, err := waitEvent(ctx, l, walwatch.KindFault)
	if err != nil {
		return err
	}
	fmt.Printf("   FAULT after %v: %s: %s\n", time.Since(stopped).Round(time.Millisecond), ev.Reason, ev.Message)
	fmt.Printf("   what to do: %s\n", stage.Advice(ev.Reason))
	if _, err := l.Snapshot(ctx); errors.Is(err, stage.ErrFaulted) {
		fmt.Printf("   snapshot refused, as it must be:\n     %v\n", err)
	} else {
		return fmt.Errorf("a snapshot while faulted should be refused, got %v", err)
	}

	// 6. The source comes back: recovery, and a snapshot is taken.
	fmt.Println("\n6. Starting the source again...")
	if err := src.start(ctx); err != nil {
		return err
	}
	if _, err := waitEvent(ctx, l, walwatch.KindRecovered); err != nil {
		return err
	}
	fmt.Println("   RECOVERED: the staging streams again")
	snap, err := l.Snapshot(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("   snapshot %s taken: timeline %d, replayed up to %s, from backup %s\n", snap.ID, snap.Timeline, snap.ReplayLSN, snap.Backup)
	fmt.Printf("   it holds the data: %s snapshot in %s, %v, %s more disk\n", snap.DataMethod, snap.Location, snap.Took.Round(time.Millisecond), mib(snap.ExtraBytes))

	if err := cloneDemo(ctx, l, snap, src, cfg); err != nil {
		return err
	}

	fmt.Println("\n8. Cleaning up: staging disabled, source stopped, filesystem and directory removed.")
	return nil
}

// progressBar draws the link job's progress: a bar redrawn in place on a
// terminal, a line per step otherwise.
func progressBar() func(stage.Progress) {
	tty := false
	if fi, err := os.Stdout.Stat(); err == nil && fi.Mode()&fs.ModeCharDevice != 0 {
		tty = true
	}
	var last stage.Step
	return func(p stage.Progress) {
		if p.Job != stage.JobLink {
			return
		}
		const width = 30
		n := int(p.Percent / 100 * width)
		bar := strings.Repeat("#", n) + strings.Repeat(".", width-n)
		if tty {
			fmt.Printf("\r   [%s] %3.0f%% %-10s", bar, p.Percent, p.Step)
			if p.Percent >= 100 {
				fmt.Println()
			}
			return
		}
		if p.Step != last {
			fmt.Printf("   [%s] %3.0f%% %s: %s\n", bar, p.Percent, p.Step, p.Message)
			last = p.Step
		}
	}
}

func waitEvent(ctx context.Context, l *stage.Linker, kind walwatch.Kind) (walwatch.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		select {
		case ev := <-l.Events():
			if ev.Kind == kind {
				return ev, nil
			}
		case <-ctx.Done():
			return walwatch.Event{}, fmt.Errorf("no %s event: %w", kind, ctx.Err())
		}
	}
}

func waitRow(ctx context.Context, s stage.Staging, id int64) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cs := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", s.SocketDir, s.Port)
	for {
		conn, err := pgx.Connect(ctx, cs)
		if err == nil {
			var note string
			err = conn.QueryRow(ctx, "SELECT note FROM demo WHERE id = $1", id).Scan(&note)
			conn.Close(context.Background())
			if err == nil {
				return note, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("row %d never reached the staging: %v", id, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// serverUser is the OS user the servers run as: PGSTAGE_PG_USER (default
// postgres) when root, else this process's user.
func serverUser() (demoUser, error) {
	u, err := osuser.RunAs(os.Getenv("PGSTAGE_PG_USER"))
	if err != nil {
		return demoUser{}, fmt.Errorf("%w (scripts/install-postgres creates it)", err)
	}
	return demoUser{u}, nil
}

// demoUser runs the source's commands as the servers' user.
type demoUser struct{ osuser.User }

func (u demoUser) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID)}}
		cmd.Env = append(os.Environ(), "HOME="+os.TempDir(), "USER="+u.Name)
	}
	return cmd
}

func (u demoUser) chown(paths ...string) error {
	for _, p := range paths {
		if err := u.Chown(p); err != nil {
			return err
		}
	}
	return nil
}

// cacheDir is where scripts/install-postgres put the server bundles.
func cacheDir() string {
	if d := os.Getenv("PGSTAGE_PG_CACHE"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/cache/pgstage/pg"
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "pgstage", "pg")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "pgstage", "pg")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// randomPassword is the replication role's password for this run: hex, so
// it needs no quoting in the SQL that creates the role.
func randomPassword() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}
