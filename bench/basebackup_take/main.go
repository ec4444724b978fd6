// Command basebackup_take is the Go side of bench/basebackup.sh: it takes a
// backup with backupsel/basebackup into a backup path, as
// pg_basebackup -F t -X stream would, and prints where and how long.
//
// The role logs in without a password here (the bench's server trusts
// local connections); a password would come from PGPASSWORD, never from an
// argument.
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/pgstage/pgstage/bench/internal/cpuprof"
	"log"
	"os"
	"time"

	"github.com/pgstage/pgstage/backupsel/basebackup"
)

func main() {
	host := flag.String("host", "127.0.0.1", "source host")
	port := flag.Int("port", 5432, "source port")
	user := flag.String("user", "postgres", "replication role")
	path := flag.String("path", "", "backup path")
	compress := flag.String("compress", "none", "none, gzip, lz4 or zstd")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	methods := map[string]basebackup.Compression{"none": basebackup.None, "gzip": basebackup.Gzip, "lz4": basebackup.LZ4, "zstd": basebackup.Zstd}
	c, ok := methods[*compress]
	if *path == "" || !ok {
		log.Fatal("usage: basebackup_take -path BACKUP_PATH [-host H -port P -user U -compress none|gzip|lz4|zstd]")
	}
	defer cpuprof.Start(*cpuprofile)()
	t0 := time.Now()
	res, err := basebackup.Take(context.Background(), basebackup.Config{
		Host: *host, Port: *port, User: *user, Password: os.Getenv("PGPASSWORD"), SSLMode: "disable",
		BackupPath: *path, Compression: c, FastCheckpoint: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "took %.3fs: %s %v bytes %d\n", time.Since(t0).Seconds(), res.Path, res.Files, res.Bytes)
}
