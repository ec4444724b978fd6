package walwatch_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pgstage/pgstage/walwatch"
)

// Replay a log directory and print one line per event.
func Example() {
	dir, _ := os.MkdirTemp("", "walwatch-example")
	defer os.RemoveAll(dir)
	log := strings.Join([]string{
		"2026-11-24 10:00:00.400 UTC [105] LOG:  started streaming WAL from primary at 0/3000000 on timeline 1",
		"2026-11-24 10:01:00.001 UTC [105] FATAL:  could not receive data from WAL stream: server closed the connection unexpectedly",
		"\t\tThis probably means the server terminated abnormally",
		"\t\tbefore or while processing the request.",
		"2026-11-24 10:01:05.020 UTC [110] FATAL:  could not connect to the primary server: connection to server at \"127.0.0.1\", port 5432 failed: Connection refused",
		"2026-11-24 10:01:10.020 UTC [111] FATAL:  could not connect to the primary server: connection to server at \"127.0.0.1\", port 5432 failed: Connection refused",
		"2026-11-24 10:01:15.100 UTC [112] LOG:  started streaming WAL from primary at 0/3000000 on timeline 1",
		"",
	}, "\n")
	os.WriteFile(filepath.Join(dir, "postgresql.log"), []byte(log), 0o644)

	w, err := walwatch.New(walwatch.Config{LogDir: dir, Start: walwatch.StartReplay})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()
	for ev := range w.Events() {
		fmt.Println(ev.LogTime.Format("15:04:05"), ev.Kind, ev.Reason, "line", ev.Line)
	}
	fmt.Println("now:", w.State().Phase)
	// Output:
	// 10:00:00 streaming  line 1
	// 10:01:00 fault stream-lost line 2
	// 10:01:15 recovered  line 7
	// now: streaming
}

// Read the records of one stderr log file.
func ExampleNewReader() {
	log := "2026-11-24 10:00:00.123 UTC [7] FATAL:  could not connect to the primary server: connection refused\n" +
		"\t\tIs the server running?\n" +
		"2026-11-24 10:00:01.000 UTC [7] LOG:  entering standby mode\n"
	r := walwatch.NewReader(strings.NewReader(log), walwatch.FormatStderr, "%m [%p] ")
	for {
		rec, err := r.Next()
		if err != nil {
			break
		}
		fmt.Printf("%d %s %q\n", rec.PID, rec.Severity, rec.Message)
	}
	// Output:
	// 7 FATAL "could not connect to the primary server: connection refused\n\tIs the server running?"
	// 7 LOG "entering standby mode"
}

// Save the position of the last event handled and resume from it after a
// restart: the events in between are neither missed nor repeated.
func ExampleConfig_resume() {
	dir, _ := os.MkdirTemp("", "walwatch-example")
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "postgresql.log")
	write := func(s string) {
		f, _ := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		f.WriteString(s)
		f.Close()
	}
	write("2026-11-24 10:00:00.400 UTC [105] LOG:  started streaming WAL from primary at 0/3000000 on timeline 1\n")

	w, _ := walwatch.New(walwatch.Config{LogDir: dir})
	ev := <-w.Events()
	fmt.Println("first run:", ev.Kind)
	saved, _ := json.Marshal(ev.Position) // kept by the embedding process
	w.Close()

	// While nothing watches, replication stops.
	write("2026-11-24 10:01:00.001 UTC [105] FATAL:  terminating walreceiver due to timeout\n")

	var pos walwatch.Position
	json.Unmarshal(saved, &pos)
	w, _ = walwatch.New(walwatch.Config{LogDir: dir, Start: walwatch.StartResume, Resume: pos})
	defer w.Close()
	ev = <-w.Events()
	fmt.Println("after restart:", ev.Kind, ev.Reason, "line", ev.Line)
	// Output:
	// first run: streaming
	// after restart: fault timeout line 2
}
