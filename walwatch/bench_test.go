package walwatch_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgstage/pgstage/walwatch"
)

// BenchmarkReplay replays a 64 MiB stderr log of mostly ordinary records
// (bench/walwatch.sh compares a 1 GiB one with grep).
func BenchmarkReplay(b *testing.B) {
	dir := b.TempDir()
	var sb strings.Builder
	lines := []string{
		logAt(0, 1, "LOG", "checkpoint starting: time"),
		logAt(0, 2, "LOG", "connection received: host=10.0.0.5 port=51234"),
		logAt(0, 2, "LOG", "duration: 12.345 ms  statement: SELECT * FROM orders WHERE customer_id = 42 ORDER BY created_at DESC LIMIT 50"),
		logAt(0, 3, "ERROR", "canceling statement due to conflict with recovery"),
		logAt(0, 3, "DETAIL", "User query might have needed to see row versions that must be removed."),
	}
	for i := 0; sb.Len() < 64<<20; i++ {
		sb.WriteString(lines[i%len(lines)])
		if i%10000 == 0 {
			sb.WriteString(logAt(1, 4, "FATAL", lost) + logAt(2, 5, "LOG", started))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "postgresql.log"), []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(sb.Len()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w, err := walwatch.New(walwatch.Config{LogDir: dir, Start: walwatch.StartReplay, Prefix: walwatch.DefaultPrefix})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for range w.Events() {
			n++
		}
		if n == 0 {
			b.Fatal("no events")
		}
	}
}
