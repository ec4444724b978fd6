package stage_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/pgstage/pgstage/stage"
)

// A staging that snapshots itself every hour and keeps a day of
// snapshots, and a clone of the newest for a developer. (Compiled, not
// run: it needs a source.)
func ExampleLinker_Clone() {
	ctx := context.Background()
	l, err := stage.Open(ctx, stage.Config{
		Staging:   stage.Staging{DataDir: "/srv/staging/sales"},
		Snapshots: stage.SnapshotConfig{Every: time.Hour, KeepWithin: 24 * time.Hour},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	snap, err := l.Snapshot(ctx)
	if errors.Is(err, stage.ErrFaulted) {
		log.Fatal("replication is faulted, no snapshot: ", err)
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println(snap.ID, snap.DataMethod, snap.Location, snap.ExtraBytes)

	c, err := l.Clone(ctx, snap.ID, stage.CloneOptions{ID: "alice", Settings: map[string]string{"work_mem": "64MB"}})
	if errors.Is(err, stage.ErrPortInUse) {
		log.Fatal("choose another port: ", err)
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println("psql", c.ConnString(), "ready after", c.Ready)

	if err := l.DestroyClone(ctx, c.ID); err != nil {
		log.Fatal(err)
	}
}
