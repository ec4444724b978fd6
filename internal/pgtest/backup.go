package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstage/pgstage/backupsel/basebackup"
)

// Layout is how a backup is laid out in the backup path.
type Layout int

const (
	LayoutFolder Layout = iota // PostgreSQL_T<YYYYMMDDhhmmss>/ holding the files
	LayoutDirect               // the files directly in the backup path
	LayoutZip                  // PostgreSQL_T<YYYYMMDD>.zip with the files at its root
)

// Layouts lists every layout.
var Layouts = []Layout{LayoutFolder, LayoutDirect, LayoutZip}

func (l Layout) String() string {
	switch l {
	case LayoutFolder:
		return "folder"
	case LayoutDirect:
		return "direct"
	case LayoutZip:
		return "zip"
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

// Form is how the backup was taken.
type Form int

const (
	FormStream     Form = iota // pg_basebackup -F t -X stream: base.tar + pg_wal.tar
	FormFetch                  // pg_basebackup -F t -X fetch: WAL inside base.tar
	FormGzip                   // -X stream -z: base.tar.gz + pg_wal.tar.gz
	FormLZ4                    // -X stream --compress=client-lz4: base.tar.lz4 (+ pg_wal.tar)
	FormZstd                   // -X stream --compress=client-zstd: base.tar.zst (+ pg_wal.tar)
	FormServer                 // BASE_BACKUP TARGET 'server': base.tar with WAL inside
	FormServerGzip             // BASE_BACKUP TARGET 'server' COMPRESSION 'gzip': base.tar.gz
)

func (f Form) String() string {
	return [...]string{"stream", "fetch", "gzip", "lz4", "zstd", "server", "server-gzip"}[f]
}

// Forms returns the backup forms the harness can take of a major (see the
// package documentation for why). The first is the -X stream form on every
// major.
func Forms(major int) []Form {
	var fs []Form
	if major <= 15 {
		fs = append(fs, FormStream, FormFetch, FormGzip, FormLZ4, FormZstd)
	} else {
		fs = append(fs, FormStream, FormGzip, FormLZ4, FormZstd)
	}
	if major >= 15 {
		fs = append(fs, FormServer, FormServerGzip)
	}
	return fs
}

// BackupOptions configures TakeBackup.
type BackupOptions struct {
	Layout Layout
	Form   Form
	// Path is the backup path; default a new TempDir.
	Path string
	// Time names the folder or zip; default now.
	Time time.Time
	// Extra, when set, is called with the directory of raw backup files
	// before they are laid out, so a test can alter them.
	Extra func(dir string)
}

// Backup describes a backup written by TakeBackup.
type Backup struct {
	Path     string // the backup path
	Location string // the folder, the backup path itself, or the zip file
	Files    []string
	Layout   Layout
	Form     Form
	Major    int
}

// TakeBackup takes a real base backup of p in the given form and lays it out
// in the backup path.
func TakeBackup(t testing.TB, p *Primary, opts BackupOptions) *Backup {
	t.Helper()
	if !slices.Contains(Forms(p.Major), opts.Form) {
		t.Fatalf("pgtest: backup form %v is not available for PostgreSQL %d (see package doc)", opts.Form, p.Major)
	}
	if opts.Path == "" {
		opts.Path = TempDir(t)
	}
	if opts.Time.IsZero() {
		opts.Time = time.Now()
	}
	raw := filepath.Join(TempDir(t), "raw")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	switch {
	case opts.Form == FormServer || opts.Form == FormServerGzip:
		serverBackup(ctx, t, p, raw, opts.Form == FormServerGzip)
	case p.Major > 15:
		packageBackup(ctx, t, p, raw, opts.Form)
	default:
		clientBackup(ctx, t, p, raw, opts.Form)
	}
	if opts.Extra != nil {
		opts.Extra(raw)
	}
	entries, err := os.ReadDir(raw)
	if err != nil {
		t.Fatal(err)
	}
	b := &Backup{Path: opts.Path, Layout: opts.Layout, Form: opts.Form, Major: p.Major}
	for _, e := range entries {
		b.Files = append(b.Files, e.Name())
	}
	sort.Strings(b.Files)

	switch opts.Layout {
	case LayoutFolder:
		b.Location = filepath.Join(opts.Path, "PostgreSQL_T"+opts.Time.Format("20060102150405"))
		if err := os.Rename(raw, b.Location); err != nil {
			// raw may sit on another filesystem than the backup path.
			run(t, "mv", raw, b.Location)
		}
	case LayoutDirect:
		b.Location = opts.Path
		for _, f := range b.Files {
			run(t, "mv", filepath.Join(raw, f), filepath.Join(opts.Path, f))
		}
	case LayoutZip:
		b.Location = filepath.Join(opts.Path, "PostgreSQL_T"+opts.Time.Format("20060102")+".zip")
		// As the original procedure does: cd <dir>; zip <name>.zip *
		cmd := exec.Command("zip", append([]string{"-q", b.Location}, b.Files...)...)
		cmd.Dir = raw
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pgtest: zip: %v\n%s", err, out)
		}
	}
	return b
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("pgtest: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// clientBackup runs Debian's pg_basebackup 15 as root (it writes files
// readable by root only, as a DBA's backup typically is).
func clientBackup(ctx context.Context, t testing.TB, p *Primary, dir string, form Form) {
	t.Helper()
	args := []string{"-D", dir, "-F", "t", "-h", p.Host, "-p", fmt.Sprint(p.Port), "-U", "postgres", "-w", "--checkpoint=fast", "--no-sync"}
	switch form {
	case FormStream:
		args = append(args, "-X", "stream")
	case FormFetch:
		args = append(args, "-X", "fetch")
	case FormGzip:
		args = append(args, "-X", "stream", "-z")
	case FormLZ4:
		args = append(args, "-X", "stream", "--compress=client-lz4")
	case FormZstd:
		args = append(args, "-X", "stream", "--compress=client-zstd")
	}
	out, err := exec.CommandContext(ctx, filepath.Join(ClientBinDir(t), "pg_basebackup"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("pgtest: pg_basebackup of PostgreSQL %d (%v): %v\n%s", p.Major, form, err, out)
	}
}

// packageBackup takes the backup with pgstage's own basebackup package, as
// the replication role, for the majors pg_basebackup 15 refuses: the same
// files pg_basebackup -F t -X stream writes (its tests compare the two on
// 10-15).
func packageBackup(ctx context.Context, t testing.TB, p *Primary, dir string, form Form) {
	t.Helper()
	compression := map[Form]basebackup.Compression{FormStream: basebackup.None, FormGzip: basebackup.Gzip, FormLZ4: basebackup.LZ4, FormZstd: basebackup.Zstd}
	c, ok := compression[form]
	if !ok {
		t.Fatalf("pgtest: backup form %v is not available for PostgreSQL %d (see package doc)", form, p.Major)
	}
	tmp := filepath.Dir(dir)
	res, err := basebackup.Take(ctx, basebackup.Config{
		Host: p.Host, Port: p.Port, User: p.ReplUser, Password: p.ReplPassword, SSLMode: "disable",
		BackupPath: tmp, Compression: c, FastCheckpoint: true, NoSync: true,
	})
	if err != nil {
		t.Fatalf("pgtest: basebackup.Take of PostgreSQL %d (%v): %v\n%s", p.Major, form, err, p.LogTail(20))
	}
	if err := os.Rename(res.Path, dir); err != nil {
		t.Fatal(err)
	}
}

// StartCopy starts a restored copy of a server of major in data, listening
// on a Unix socket in dir only, and returns a superuser connection to it.
// The copy is stopped when the test ends.
func StartCopy(t testing.TB, major int, dir, data string) *pgx.Conn {
	t.Helper()
	pgctl := filepath.Join(BinDir(t, major), "pg_ctl")
	logFile := filepath.Join(dir, "restored.log")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := Command(ctx, pgctl, "-D", data, "-l", logFile, "-w", "-t", "90", "start",
		"-o", fmt.Sprintf("-p 5432 -k %s -c listen_addresses=''", dir)).CombinedOutput()
	if err != nil {
		t.Fatalf("pgtest: start restored PostgreSQL %d: %v\n%s\n%s", major, err, out, Tail(logFile, 40))
	}
	t.Cleanup(func() {
		Command(context.Background(), pgctl, "-D", data, "-m", "immediate", "-w", "stop").Run()
	})
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=5432 user=postgres dbname=postgres sslmode=disable", dir))
	if err != nil {
		t.Fatalf("pgtest: connect to restored PostgreSQL %d: %v", major, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// serverBackup has the server write the backup into dir itself (15+).
func serverBackup(ctx context.Context, t testing.TB, p *Primary, dir string, gzip bool) {
	t.Helper()
	conn, err := pgconn.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=replication replication=true sslmode=disable", p.Host, p.Port))
	if err != nil {
		t.Fatalf("pgtest: replication connection to PostgreSQL %d: %v", p.Major, err)
	}
	defer conn.Close(ctx)
	cmd := fmt.Sprintf("BASE_BACKUP (TARGET 'server', TARGET_DETAIL %s, WAL true, CHECKPOINT 'fast', MANIFEST 'yes', WAIT true", quoteLiteral(dir))
	if gzip {
		cmd += ", COMPRESSION 'gzip'"
	}
	cmd += ")"
	if _, err := conn.Exec(ctx, cmd).ReadAll(); err != nil {
		t.Fatalf("pgtest: %s on PostgreSQL %d: %v\n%s", cmd, p.Major, err, p.LogTail(20))
	}
}
