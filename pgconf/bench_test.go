package pgconf_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgstage/pgstage/pgconf"
)

// bigConf returns a 10,000-line configuration file shaped like a real one:
// comments, commented templates, blank lines and settings with trailing
// comments.
func bigConf() []byte {
	var b strings.Builder
	for i := 0; b.Len() == 0 || strings.Count(b.String(), "\n") < 10000; i++ {
		switch i % 5 {
		case 0:
			fmt.Fprintf(&b, "# section %d: a comment line of ordinary length\n", i)
		case 1:
			fmt.Fprintf(&b, "#param_%d = 'template'\t\t# (change requires restart)\n", i)
		case 2:
			b.WriteString("\n")
		case 3:
			fmt.Fprintf(&b, "setting_%d = %dMB\t\t# a trailing comment\n", i, i)
		case 4:
			fmt.Fprintf(&b, "ext.string_%d = 'it''s \\'quoted\\''\n", i)
		}
	}
	b.WriteString("port = 5432\nshared_preload_libraries = 'pg_stat_statements'\n")
	return []byte(b.String())
}

// BenchmarkEdit10k: load a 10,000-line postgresql.conf from disk, one Set,
// one Comment, and write it back atomically (fsync included).
func BenchmarkEdit10k(b *testing.B) {
	data := bigConf()
	dir := b.TempDir()
	conf := filepath.Join(dir, "postgresql.conf")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		b.StopTimer()
		if err := os.WriteFile(conf, data, 0o600); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		c, err := pgconf.Load(dir)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Set("port", "5433"); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Comment("shared_preload_libraries"); err != nil {
			b.Fatal(err)
		}
		if err := c.Save(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse10k: Parse and Bytes of the same file, in memory.
func BenchmarkParse10k(b *testing.B) {
	data := bigConf()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		f, err := pgconf.Parse("postgresql.conf", data)
		if err != nil {
			b.Fatal(err)
		}
		_ = f.Bytes()
	}
}
