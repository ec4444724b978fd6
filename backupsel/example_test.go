package backupsel_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/pgstage/pgstage/backupsel"
)

// exampleBackupPath lays out a small synthetic backup path for the examples:
// two timestamped folders, the newer one still being copied (base.tar cut
// short), and a zip.
func exampleBackupPath() string {
	dir, err := os.MkdirTemp("", "backupsel-example")
	if err != nil {
		log.Fatal(err)
	}
	var t exampleTB
	good := fixture{Manifest: true}.build(t)
	writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124090000"), good)
	writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124100000"), truncated(good, "base.tar", 4096))
	writeZip(t, filepath.Join(dir, "PostgreSQL_T20261123.zip"), good, "")
	return dir
}

func ExampleSelect() {
	backupPath := exampleBackupPath()
	defer os.RemoveAll(backupPath)

	b, err := backupsel.Select(context.Background(), backupPath, backupsel.Options{Verify: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("chosen: %s (PostgreSQL %s, system identifier %d, WAL from %s)\n", b.Name, b.PGVersion, b.SystemIdentifier, b.WAL)
	for _, c := range b.Passed {
		fmt.Printf("passed over: %s: %s\n", c.Name, strings.ReplaceAll(c.Reason, backupPath+"/", ""))
	}
	// Output:
	// chosen: PostgreSQL_T20261124090000 (PostgreSQL 15, system identifier 7300000000000000001, WAL from pg_wal.tar)
	// passed over: PostgreSQL_T20261124100000: PostgreSQL_T20261124100000/base.tar: archive is cut short (no end-of-archive blocks): still being copied or damaged
	// passed over: PostgreSQL_T20261123.zip: lower precedence (zip PostgreSQL_T<YYYYMMDD>.zip) than the chosen PostgreSQL_T20261124090000
}

func ExampleBackup_Restore() {
	backupPath := exampleBackupPath()
	defer os.RemoveAll(backupPath)
	b, err := backupsel.Select(context.Background(), backupPath, backupsel.Options{})
	if err != nil {
		log.Fatal(err)
	}
	dataDir := filepath.Join(backupPath, "restored")
	res, err := b.Restore(context.Background(), dataDir, backupsel.RestoreOptions{
		Progress: func(done, total int64) {
			if done == total {
				fmt.Printf("restored %d of %d bytes\n", done, total)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("WAL in", filepath.Base(res.WALDir), "- skipped", res.Skipped)
	fmt.Println("matches backup_manifest:", b.Manifest.VerifyDir(context.Background(), dataDir) == nil)
	// Output:
	// restored 98526 of 98526 bytes
	// WAL in pg_wal - skipped [postmaster.opts]
	// matches backup_manifest: true
}
