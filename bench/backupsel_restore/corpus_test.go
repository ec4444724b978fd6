package main

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgstage/pgstage/internal/pgtest"
)

// TestMakeRealCorpus is not a test of the package: bench/backupsel_real.sh
// runs it to make the real backups it restores, with the project's harness.
// A PostgreSQL 15 server gets 3,500 small tables (heap, primary key, TOAST
// table and index, and after VACUUM the free space and visibility maps) and
// four large ones (about 250 MiB each), then Debian's pg_basebackup 15 takes
// it as -F t -X stream plain, with -Z client-gzip:1, client-lz4 and
// client-zstd; the plain files are also stored in a zip (zip -0, the form a
// copy tool produces). Each goes to $PGSTAGE_BENCH_CORPUS/<form>.
func TestMakeRealCorpus(t *testing.T) {
	out := os.Getenv("PGSTAGE_BENCH_CORPUS")
	if out == "" {
		t.Skip("PGSTAGE_BENCH_CORPUS unset: this is bench/backupsel_real.sh's backup maker, not a test")
	}
	p := pgtest.StartPrimary(t, 15, pgtest.Options{Settings: map[string]string{
		"fsync": "off", "synchronous_commit": "off", "max_wal_size": "2GB", "autovacuum": "off",
	}})
	for batch := 0; batch < 35; batch++ {
		p.Exec(t, fmt.Sprintf(`DO $$ BEGIN FOR i IN %d..%d LOOP
			EXECUTE format('CREATE TABLE s_%%s (id int PRIMARY KEY, v text)', i);
			EXECUTE format('INSERT INTO s_%%s SELECT g, md5(g::text) || repeat(''r'', g) FROM generate_series(1, 40) g', i);
		END LOOP; END $$`, batch*100+1, batch*100+100))
	}
	for i := 1; i <= 4; i++ {
		p.Exec(t, fmt.Sprintf(`CREATE TABLE big_%d AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) || repeat('pgstage', 12) AS v
			FROM generate_series(1, 1100000) g`, i))
	}
	p.Exec(t, "VACUUM")
	p.Exec(t, "CHECKPOINT")
	bb := filepath.Join(pgtest.ClientBinDir(t), "pg_basebackup")
	for form, extra := range map[string][]string{
		"plain": nil,
		"gzip":  {"-Z", "client-gzip:1"},
		"lz4":   {"--compress=client-lz4"},
		"zstd":  {"--compress=client-zstd"},
	} {
		dir := filepath.Join(out, form)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"-D", dir, "-F", "t", "-X", "stream", "-h", p.Host, "-p", fmt.Sprint(p.Port),
			"-U", "postgres", "-w", "--checkpoint=fast", "--no-sync"}, extra...)
		if b, err := exec.Command(bb, args...).CombinedOutput(); err != nil {
			t.Fatalf("pg_basebackup %s: %v\n%s", form, err, b)
		}
	}
	zipDir := filepath.Join(out, "zip")
	if err := os.RemoveAll(zipDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(zipDir, 0o755); err != nil {
		t.Fatal(err)
	}
	zip := exec.Command("zip", "-q", "-0", filepath.Join(zipDir, "PostgreSQL_T20261201.zip"), "base.tar", "pg_wal.tar", "backup_manifest")
	zip.Dir = filepath.Join(out, "plain")
	if b, err := zip.CombinedOutput(); err != nil {
		t.Fatalf("zip: %v\n%s", err, b)
	}
	files, size := tarStats(t, filepath.Join(out, "plain", "base.tar"))
	t.Logf("base.tar: %d files, %d MiB", files, size>>20)
	if files < 15000 || size < 1<<30 {
		t.Fatalf("base.tar holds %d files and %d bytes; the benchmark needs >= 15,000 and >= 1 GiB", files, size)
	}
}

// tarStats counts the regular files and content bytes of a tar.
func tarStats(t *testing.T, name string) (files int, size int64) {
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, size
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg && !strings.HasSuffix(h.Name, "/") {
			files++
			size += h.Size
		}
	}
}
