package snapclone_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/pgstage/pgstage/internal/snapclone"
)

// A snapshot of a running staging, a clone of it, and the clone destroyed.
// (Compiled, not run: it needs a staging.)
func Example() {
	ctx := context.Background()
	sc, err := snapclone.New(snapclone.Config{
		DataDir:    "/srv/staging/data",
		BinDir:     "/usr/lib/postgresql/17/bin",
		ConnString: "host=/srv/staging port=5433 user=postgres dbname=postgres",
	})
	if err != nil {
		log.Fatal(err)
	}
	snap, err := sc.Snapshot(ctx, "/srv/staging/snapshots/2026-12-01T12")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(snap.Method, snap.Consistency, snap.ExtraBytes)

	c, err := sc.Clone(ctx, snap.Dir, snapclone.CloneOptions{Dir: "/srv/staging/clones/alice", Port: 6001,
		Settings: map[string]string{"work_mem": "64MB"}})
	switch {
	case errors.Is(err, snapclone.ErrPortInUse):
		log.Fatal("choose another port: ", err)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println("psql", c.ConnString(), "ready after", c.Ready)

	if err := sc.DestroyClone(ctx, c.Dir); err != nil {
		log.Fatal(err)
	}
}
