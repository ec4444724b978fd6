package pgconf_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pgstage/pgstage/pgconf"
)

// A staging copy of a data directory gets its own port, loses a library it
// cannot load, and keeps every other byte of its postgresql.conf.
func Example() {
	dir, _ := os.MkdirTemp("", "pgconf-example")
	defer os.RemoveAll(dir)
	conf := "listen_addresses = '*'\t\t# what IP address(es) to listen on\n" +
		"#port = 5432\t\t\t\t# (change requires restart)\n" +
		"shared_preload_libraries = 'pg_stat_statements'\t# (change requires restart)\n"
	os.WriteFile(filepath.Join(dir, "postgresql.conf"), []byte(conf), 0o600)

	c, err := pgconf.Load(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	changed, _ := c.Set("port", "5433")
	fmt.Println("port changed:", changed)
	changed, _ = c.Comment("shared_preload_libraries")
	fmt.Println("shared_preload_libraries commented out:", changed)
	if err := c.Save(); err != nil {
		fmt.Println(err)
		return
	}
	out, _ := os.ReadFile(filepath.Join(dir, "postgresql.conf"))
	fmt.Print(string(out))
	// Output:
	// port changed: true
	// shared_preload_libraries commented out: true
	// listen_addresses = '*'		# what IP address(es) to listen on
	// port = 5433				# (change requires restart)
	// #pgconf:off# shared_preload_libraries = 'pg_stat_statements'	# (change requires restart)
}

// Get answers which value is in effect and where it comes from: here
// postgresql.auto.conf, which the server reads last.
func ExampleConfig_Get() {
	dir, _ := os.MkdirTemp("", "pgconf-example")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "postgresql.conf"), []byte("work_mem = 4MB\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "postgresql.auto.conf"), []byte("work_mem = '64MB'\n"), 0o600)

	c, _ := pgconf.Load(dir)
	s, _ := c.Get("WORK_MEM")
	fmt.Println(s.Name, "=", s.Value, "from", filepath.Base(s.File), "line", s.Line)
	// Output: work_mem = 64MB from postgresql.auto.conf line 1
}

// Values are quoted for the configuration file, not for SQL. A
// primary_conninfo names a password file, never the password; its values
// are quoted by libpq's rules first (' and \ escaped with \), then the whole
// string by the file's (' doubled, \ doubled).
func ExampleQuote() {
	conninfo := `host=primary.example port=5432 user=replicator passfile='/var/lib/pgstage/staging 1.pgpass' application_name='o\'brien'`
	fmt.Println("primary_conninfo =", pgconf.Quote(conninfo))
	// Output: primary_conninfo = 'host=primary.example port=5432 user=replicator passfile=''/var/lib/pgstage/staging 1.pgpass'' application_name=''o\\''brien'''
}

// Syntax errors read as the server's own.
func ExampleParse() {
	_, err := pgconf.Parse("postgresql.conf", []byte("port = 5432\nmax_wal_size = 1e3\n"))
	var se *pgconf.SyntaxError
	if errors.As(err, &se) {
		fmt.Println(se.Line, se.Near)
	}
	fmt.Println(err)
	// Output:
	// 2 3
	// pgconf: syntax error in file "postgresql.conf" line 2, near token "3"
}

// Settings are checked by the binary of the version that will read them,
// before any server starts; every problem comes back at once.
func ExampleChecker_Check() {
	k := &pgconf.Checker{BinDir: "/usr/lib/postgresql/17/bin"}
	// As root, postgres must run as an unprivileged user:
	// k.Credential = &syscall.Credential{Uid: 101, Gid: 104}
	err := k.Check(context.Background(), []pgconf.Setting{
		{Name: "wal_level", Value: "maximal"},
		{Name: "shared_buffers", Value: "1XB"},
	})
	var bad *pgconf.InvalidSettingError
	if errors.As(err, &bad) {
		fmt.Println(bad.Name, bad.Reason)
	}
}
