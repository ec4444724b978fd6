package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Environment variables the harness reads.
const (
	EnvVersions = "PGSTAGE_PG_VERSIONS" // majors to test, e.g. "15" or "10,15,18"
	EnvRequire  = "PGSTAGE_REQUIRE_PG"  // "1": missing binaries fail the test instead of skipping it
	EnvCache    = "PGSTAGE_PG_CACHE"    // where scripts/install-postgres put the server bundles
	EnvUser     = "PGSTAGE_PG_USER"     // OS user servers run as when the tests run as root
)

// AllMajors lists the majors that have server binaries on this kind of machine.
var AllMajors = []int{10, 11, 12, 13, 14, 15, 16, 17, 18}

// clientDir holds Debian's PostgreSQL 15 client tools.
const clientDir = "/usr/lib/postgresql/15/bin"

// Versions returns the majors to test: those named in PGSTAGE_PG_VERSIONS, or
// every major in AllMajors.
func Versions() []int {
	s := strings.TrimSpace(os.Getenv(EnvVersions))
	if s == "" {
		return slices.Clone(AllMajors)
	}
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		n, err := strconv.Atoi(f)
		if err != nil {
			panic(fmt.Sprintf("pgtest: %s=%q: %q is not a major version number", EnvVersions, s, f))
		}
		out = append(out, n)
	}
	return out
}

// CacheDir is where scripts/install-postgres unpacks the server bundles.
func CacheDir() string {
	if d := os.Getenv(EnvCache); d != "" {
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

// required reports whether missing binaries must fail the run (make test).
func required() bool { return os.Getenv(EnvRequire) == "1" }

// missing skips or fails tb for want, naming what is missing and how to get it.
func missing(tb testing.TB, what string) {
	tb.Helper()
	msg := fmt.Sprintf("pgtest: %s missing; run `make test` (it runs scripts/install-postgres) to install PostgreSQL 10-18", what)
	if required() {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// BinDir returns the directory holding initdb, pg_ctl and postgres of major.
func BinDir(tb testing.TB, major int) string {
	tb.Helper()
	dir := filepath.Join(CacheDir(), strconv.Itoa(major), "bin")
	for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			missing(tb, fmt.Sprintf("PostgreSQL %d server binary %s", major, filepath.Join(dir, b)))
		}
	}
	return dir
}

// ShareDir returns the share directory of major (postgresql.conf.sample is there).
func ShareDir(tb testing.TB, major int) string {
	tb.Helper()
	dir := filepath.Join(filepath.Dir(BinDir(tb, major)), "share", "postgresql")
	if _, err := os.Stat(filepath.Join(dir, "postgresql.conf.sample")); err != nil {
		missing(tb, fmt.Sprintf("PostgreSQL %d share directory %s", major, dir))
	}
	return dir
}

// ClientBinDir returns the directory of Debian's PostgreSQL 15 client tools.
func ClientBinDir(tb testing.TB) string {
	tb.Helper()
	for _, b := range []string{"pg_basebackup", "psql", "pg_controldata", "pg_verifybackup"} {
		if _, err := exec.LookPath(filepath.Join(clientDir, b)); err != nil {
			missing(tb, "PostgreSQL 15 client tool "+filepath.Join(clientDir, b))
		}
	}
	return clientDir
}

// ForEachMajor runs fn as a subtest "pg<major>" for every major in Versions,
// skipping (or, under make test, failing) a major whose binaries are missing.
func ForEachMajor(t *testing.T, fn func(t *testing.T, major int)) {
	t.Helper()
	for _, major := range Versions() {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			BinDir(t, major)
			fn(t, major)
		})
	}
}
