package replica_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/pgstage/pgstage/replica"
)

// Turn a restored data directory into a standby, start it and wait until it
// streams. (Not run: it needs a source and a restored backup.)
func Example() {
	s, err := replica.New(replica.Config{
		DataDir:  "/mnt/staging/data", // restored from the source's pg_basebackup
		BinDir:   "/usr/lib/postgresql/15/bin",
		Port:     5433,
		OSUser:   "postgres",
		SlotName: "staging_one", CreateSlot: true,
		Source: replica.Source{
			Host:     "db.example.com",
			User:     "replicator",
			Password: replica.Password(os.Getenv("REPL_PASSWORD")), // goes to a 0600 password file only
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := s.Setup(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range res.Raised {
		fmt.Printf("raised %s from %d to %d (the source's value)\n", r.Name, r.From, r.To)
	}
	for _, n := range res.Neutralised {
		fmt.Printf("%s %s (%s line %d): %s\n", n.Action, n.Name, n.File, n.Line, n.Why)
	}
	if err := s.Start(ctx); err != nil {
		log.Fatal(err) // a *replica.StartError carries the reason and the log tail
	}
	st, err := s.WaitStreaming(ctx)
	if err != nil {
		log.Fatal(err) // a *replica.StreamError names the walreceiver's last fault
	}
	fmt.Println("streaming, confirmed by", st.Method)
}

// A Password shows itself as [redacted], so a Source or Config can be
// printed or logged whole.
func ExamplePassword() {
	src := replica.Source{Host: "db.example.com", User: "replicator", Password: "s3cret"}
	fmt.Printf("%+v\n", src)
	fmt.Printf("%q\n", src.Password)
	fmt.Println(len(src.Password.Reveal()), "bytes go into the password file")
	// Output:
	// {Host:db.example.com Port:0 User:replicator Password:[redacted] SSLMode:}
	// "[redacted]"
	// 6 bytes go into the password file
}
