package basebackup_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/pgstage/pgstage/backupsel/basebackup"
)

// ExampleTake takes a backup and branches on what went wrong. Here nothing
// listens on the source's port, so it fails, and leaves nothing behind.
func ExampleTake() {
	backupPath, err := os.MkdirTemp("", "basebackup-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(backupPath)

	res, err := basebackup.Take(context.Background(), basebackup.Config{
		Host: "127.0.0.1", Port: 1, User: "replicator", Password: os.Getenv("EXAMPLE_PASSWORD"),
		SSLMode:     "disable",
		BackupPath:  backupPath,
		Compression: basebackup.LZ4,
		Progress: func(done, total int64) {
			fmt.Printf("%d of %d bytes\n", done, total)
		},
	})
	switch {
	case errors.Is(err, basebackup.ErrRefused):
		fmt.Println("fix the source's configuration:", err)
	case errors.Is(err, basebackup.ErrBusy):
		fmt.Println("retry later:", err)
	case err != nil:
		fmt.Println("failed:", strings.Contains(err.Error(), "check Host and Port"))
	default:
		fmt.Println("backup in", res.Path, "files", res.Files)
	}
	left, _ := os.ReadDir(backupPath)
	fmt.Println("left in the backup path:", len(left))
	// Output:
	// failed: true
	// left in the backup path: 0
}

// ExampleTake_invalidConfig: every problem of a Config at once.
func ExampleTake_invalidConfig() {
	_, err := basebackup.Take(context.Background(), basebackup.Config{
		Host: "db1", Compression: basebackup.Gzip, CompressionLevel: 12, MaxRate: 1024,
	})
	fmt.Println(errors.Is(err, basebackup.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// true
	// basebackup: invalid configuration: User is empty: name a role with the REPLICATION attribute
	// BackupPath is empty: name the directory to write the backup into
	// CompressionLevel 12 is outside 1-9 for gzip
	// MaxRate 1024 bytes/s is outside the source's range, 32 kB/s to 1 GB/s (0: no limit)
}
