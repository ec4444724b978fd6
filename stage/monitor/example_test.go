package monitor_test

import (
	"context"
	"log"
	"net/http"

	"github.com/pgstage/pgstage/stage"
	"github.com/pgstage/pgstage/stage/monitor"
)

// A program that embeds a Linker mounts the metrics and the health check
// on its own mux; monitor.Handler serves both for one that has none.
func Example() {
	ctx := context.Background()
	l, err := stage.Open(ctx, stage.Config{Staging: stage.Staging{DataDir: "/mnt/staging/sales"}})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	mux := http.NewServeMux()
	mux.Handle("/", monitor.Handler(l, monitor.Options{}))
	log.Fatal(http.ListenAndServe("127.0.0.1:9187", mux))
}
