package stage_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/pgstage/pgstage/stage"
	"github.com/pgstage/pgstage/walwatch"
)

// The whole job: link a staging from the newest backup, then react to
// faults and take snapshots while replication is healthy.
func ExampleLinker() {
	ctx := context.Background()
	l, err := stage.New(stage.Config{
		BackupPath: "/backups/sales", // PostgreSQL_T<YYYYMMDDhhmmss>/ folders, the newest wins
		Source:     stage.Source{Host: "db1.example.com", User: "replicator", Password: stage.Password(os.Getenv("PGSTAGE_SOURCE_PASSWORD"))},
		Staging:    stage.Staging{DataDir: "/mnt/staging/sales", Port: 5433, BinDir: "/usr/lib/postgresql/15/bin"},
		Settings:   []stage.Setting{{Name: "ssl", Value: "off"}, {Name: "shared_preload_libraries", Comment: true}},
		Progress:   func(p stage.Progress) { fmt.Printf("%3.0f%% %s\n", p.Percent, p.Step) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	if err := l.Link(ctx); err != nil {
		log.Fatal(err) // a *stage.PreflightError lists every problem, a *stage.StepError names the step
	}
	go func() {
		for ev := range l.Events() {
			if ev.Kind == walwatch.KindFault {
				log.Printf("replication stopped: %s; %s", ev.Reason, stage.Advice(ev.Reason))
			}
		}
	}()
	snap, err := l.Snapshot(ctx)
	var fault *stage.Fault
	switch {
	case errors.As(err, &fault):
		log.Printf("no snapshot while faulted (since %s)", fault.Since)
	case err != nil:
		log.Fatal(err)
	default:
		log.Printf("snapshot at %s on timeline %d", snap.ReplayLSN, snap.Timeline)
	}
}

// A second process carries on with a staging linked before.
func ExampleOpen() {
	l, err := stage.Open(context.Background(), stage.Config{
		Staging: stage.Staging{DataDir: "/mnt/staging/sales"},
		Source:  stage.Source{Password: stage.Password(os.Getenv("PGSTAGE_SOURCE_PASSWORD"))}, // never in the state file
	})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	st, err := l.Status(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.State)
}

func ExampleAdvice() {
	fmt.Println(stage.Advice(walwatch.ReasonWALRemoved))
	// Output: the source has already removed WAL the staging needs: Resync from a newer backup (a replication slot or a larger wal_keep_size on the source prevents it)
}
