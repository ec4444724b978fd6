package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/internal/snapclone"
	"github.com/pgstage/pgstage/stage"
)

// stagingFS picks where the staging lives so that its snapshots and clones
// share blocks with it: dir itself when it is on btrfs or XFS; else, run as
// root, a small loop-mounted btrfs (XFS where btrfs is missing) in dir,
// which undo unmounts and removes (the caller defers it, so it runs on
// error too). Otherwise dir, and the snapshots are copies.
func stagingFS(dir string, u demoUser) (where string, undo func() error, err error) {
	undo = func() error { return nil }
	t, err := snapclone.FSType(dir)
	if err != nil {
		return "", undo, err
	}
	if t == "btrfs" || t == "xfs" {
		fmt.Printf("   %s is on %s: snapshots and clones share its blocks\n", dir, t)
		return dir, undo, nil
	}
	mnt := filepath.Join(dir, "fs")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		return "", undo, err
	}
	var whyNot []string
	for _, fstype := range []string{"btrfs", "xfs"} {
		_, u2, err := pgtest.Mount(fstype, 1<<30, mnt)
		if err != nil {
			whyNot = append(whyNot, err.Error())
			continue
		}
		if err := u.chown(mnt); err != nil {
			return "", u2, err
		}
		fmt.Printf("   %s is on %s: made a 1 GiB loop-mounted %s in %s for the staging (removed at the end)\n", dir, t, fstype, mnt)
		return mnt, u2, nil
	}
	fmt.Printf("   %s is on %s and no loop filesystem could be made (%v):\n   the staging stays there and its snapshots and clones are plain copies\n", dir, t, whyNot)
	return dir, undo, nil
}

// cloneDemo makes a clone of the snapshot, writes a row on it, shows that
// neither the staging nor the source has the row, and destroys the clone.
func cloneDemo(ctx context.Context, l *stage.Linker, snap *stage.Snapshot, src *source, cfg stage.Config) error {
	fmt.Printf("\n7. Making a writable clone of snapshot %s...\n", snap.ID)
	c, err := l.Clone(ctx, snap.ID, stage.CloneOptions{ID: "demo-clone"})
	if err != nil {
		return err
	}
	destroyed := false
	defer func() {
		if !destroyed {
			l.DestroyClone(context.WithoutCancel(ctx), c.ID)
		}
	}()
	fmt.Printf("   clone ready (%s) in %v, %s more disk (%s)\n", c.Method, c.Ready.Round(time.Millisecond), mib(c.ExtraBytes), c.SizeMeasure)
	fmt.Printf("   connect with: psql %q\n", c.ConnString())

	var id int64
	if err := queryOne(ctx, c.ConnString()+" sslmode=disable", "INSERT INTO demo (note) VALUES ('written on the clone') RETURNING id", &id); err != nil {
		return fmt.Errorf("writing on the clone: %w", err)
	}
	fmt.Printf("   wrote row %d 'written on the clone' on the clone\n", id)
	const count = "SELECT count(*) FROM demo WHERE note = 'written on the clone'"
	var onStaging, onSource int64
	staging := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", cfg.Staging.SocketDir, cfg.Staging.Port)
	if err := queryOne(ctx, staging, count, &onStaging); err != nil {
		return err
	}
	if err := src.queryRow(ctx, count, &onSource); err != nil {
		return err
	}
	fmt.Printf("   rows 'written on the clone': %d on the staging, %d on the source\n", onStaging, onSource)
	if onStaging != 0 || onSource != 0 {
		return fmt.Errorf("the clone's row reached the staging or the source")
	}
	if err := l.DestroyClone(ctx, c.ID); err != nil {
		return err
	}
	destroyed = true
	fmt.Printf("   clone destroyed: %s is gone; the snapshot stays until DeleteSnapshot or retention\n", c.Dir)
	return nil
}

func queryOne(ctx context.Context, connString, sql string, dst any) error {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(ctx, sql).Scan(dst)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
