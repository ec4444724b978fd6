// Command backupsel_restore is the Go side of bench/backupsel.sh and
// bench/backupsel_real.sh: it selects the backup in a backup path and
// restores it, printing the time of each step. Its test file makes the real
// backups bench/backupsel_real.sh restores.
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/pgstage/pgstage/bench/internal/cpuprof"
	"log"
	"os"
	"time"

	"github.com/pgstage/pgstage/backupsel"
)

func main() {
	path := flag.String("path", "", "backup path")
	data := flag.String("data", "", "data directory to restore into")
	verify := flag.Bool("verify", false, "Select with checksum verification")
	durable := flag.Bool("sync", false, "Restore with RestoreOptions.Sync")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of both steps to this file")
	writers := flag.Int("writers", 0, "RestoreOptions.Writers (0: the default)")
	flag.Parse()
	if *path == "" || *data == "" {
		log.Fatal("usage: backupsel_restore -path BACKUP_PATH -data DATA_DIR")
	}
	defer cpuprof.Start(*cpuprofile)()
	ctx := context.Background()
	t0 := time.Now()
	b, err := backupsel.Select(ctx, *path, backupsel.Options{Verify: *verify, Settle: -1})
	if err != nil {
		log.Fatal(err)
	}
	t1 := time.Now()
	res, err := b.Restore(ctx, *data, backupsel.RestoreOptions{Sync: *durable, Writers: *writers})
	if err != nil {
		log.Fatal(err)
	}
	t2 := time.Now()
	fmt.Fprintf(os.Stderr, "select %.3fs restore %.3fs files %d bytes %d (%s, %s)\n",
		t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds(), res.Files, res.Bytes, b.Name, b.Archives[0].Compression)
}
