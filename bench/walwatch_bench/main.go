// Command walwatch_bench measures walwatch (see bench/walwatch.sh):
//
//	walwatch_bench gen -size 1GiB -out DIR   write a synthetic stderr log
//	walwatch_bench replay -dir DIR           replay it, print events and time
//	walwatch_bench latency [-poll-only -poll 1s] -n 1000
//	                                         append records, measure append-to-event
//	walwatch_bench idle -seconds 60          CPU used by an idle watcher
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"syscall"
	"time"

	"github.com/pgstage/pgstage/walwatch"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: walwatch_bench gen|replay|latency|idle [flags]")
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	size := fs.Int64("size", 1<<30, "gen: bytes to write")
	out := fs.String("out", "", "gen: directory to write postgresql.log into")
	dir := fs.String("dir", "", "replay: log directory")
	n := fs.Int("n", 1000, "latency: records to measure")
	pollOnly := fs.Bool("poll-only", false, "latency: poll only")
	poll := fs.Duration("poll", time.Minute, "latency/idle: poll interval")
	seconds := fs.Int("seconds", 60, "idle: how long")
	fs.Parse(args)
	var err error
	switch cmd {
	case "gen":
		err = gen(*out, *size)
	case "replay":
		err = replay(*dir)
	case "latency":
		err = latency(*n, *pollOnly, *poll)
	case "idle":
		err = idle(*seconds, *poll)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "walwatch_bench:", err)
		os.Exit(1)
	}
}

// noise is what a busy standby's log is mostly made of; every 10000th
// record is a replication event so the replay has work to do.
var noise = []string{
	"LOG:  checkpoint starting: time",
	"LOG:  checkpoint complete: wrote 1234 buffers (7.5%); 0 WAL file(s) added, 0 removed, 3 recycled; write=269.921 s, sync=0.004 s, total=269.941 s; sync files=45, longest=0.002 s, average=0.001 s; distance=48123 kB, estimate=51234 kB",
	"LOG:  restartpoint starting: time",
	"LOG:  recovery restart point at 1/2A000028",
	"DETAIL:  Last completed transaction was at log time 2026-11-24 10:00:00.123456+00.",
	"LOG:  connection received: host=10.0.0.5 port=51234",
	"LOG:  connection authorized: user=app database=app application_name=psql",
	"LOG:  duration: 12.345 ms  statement: SELECT * FROM orders WHERE customer_id = 42 AND status IN ('new', 'paid') ORDER BY created_at DESC LIMIT 50",
	"ERROR:  canceling statement due to conflict with recovery",
	"DETAIL:  User query might have needed to see row versions that must be removed.",
	"LOG:  disconnection: session time: 0:00:01.234 user=app database=app host=10.0.0.5 port=51234",
	"LOG:  automatic analyze of table \"app.public.orders\" system usage: CPU: user: 0.01 s, system: 0.00 s, elapsed: 0.02 s",
}

var events = []string{
	"FATAL:  could not receive data from WAL stream: server closed the connection unexpectedly\n\t\tThis probably means the server terminated abnormally\n\t\tbefore or while processing the request.",
	"FATAL:  could not connect to the primary server: connection to server at \"10.0.0.1\", port 5432 failed: Connection refused\n\t\tIs the server running on that host and accepting TCP/IP connections?",
	"LOG:  started streaming WAL from primary at 1/2A000000 on timeline 1",
}

func gen(dir string, size int64) error {
	if dir == "" {
		return fmt.Errorf("gen: -out is required")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "postgresql.log"))
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	t := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	var written int64
	for i := 0; written < size; i++ {
		t = t.Add(3 * time.Millisecond)
		msg := noise[i%len(noise)]
		if i%10000 == 9999 {
			msg = events[(i/10000)%len(events)]
		}
		k, _ := fmt.Fprintf(w, "%s [%d] %s\n", t.Format("2006-01-02 15:04:05.000 MST"), 1000+i%5000, msg)
		written += int64(k)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func replay(dir string) error {
	start := time.Now()
	w, err := walwatch.New(walwatch.Config{LogDir: dir, Format: walwatch.FormatStderr, Prefix: "%m [%p] ", Start: walwatch.StartReplay})
	if err != nil {
		return err
	}
	count := map[walwatch.Kind]int{}
	for ev := range w.Events() {
		count[ev.Kind]++
	}
	el := time.Since(start)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("replay: %.3f s, events %v, max RSS %d MiB\n", el.Seconds(), count, ru.Maxrss/1024)
	return nil
}

func latency(n int, pollOnly bool, poll time.Duration) error {
	dir, err := os.MkdirTemp("", "walwatch-latency")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	name := filepath.Join(dir, "postgresql.log")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := walwatch.New(walwatch.Config{LogDir: dir, Format: walwatch.FormatStderr, Prefix: "%m [%p] ", PollOnly: pollOnly, PollInterval: poll})
	if err != nil {
		return err
	}
	defer w.Close()
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		// Alternate a fault and its recovery: every record is an event.
		msg := events[0]
		if i%2 == 1 {
			msg = events[2]
		}
		line := fmt.Sprintf("%s [%d] %s\n", time.Now().UTC().Format("2006-01-02 15:04:05.000 MST"), 100+i, msg)
		if pollOnly {
			// Spread the writes over the poll period.
			time.Sleep(time.Duration(i*7919%1000) * poll / 1000)
		} else {
			time.Sleep(2 * time.Millisecond)
		}
		t0 := time.Now()
		if _, err := f.WriteString(line); err != nil {
			return err
		}
		select {
		case <-w.Events():
			lat = append(lat, time.Since(t0))
		case err := <-w.Errors():
			return err
		case <-time.After(poll + 10*time.Second):
			return fmt.Errorf("no event for record %d", i)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[int(float64(len(lat)-1)*p)] }
	mode := "fsnotify"
	if pollOnly {
		mode = fmt.Sprintf("poll-only every %s", poll)
	}
	fmt.Printf("latency (%s, %d records): p50 %s, p99 %s, max %s\n", mode, len(lat), pct(0.50), pct(0.99), lat[len(lat)-1])
	return nil
}

func idle(seconds int, poll time.Duration) error {
	dir, err := os.MkdirTemp("", "walwatch-idle")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "postgresql.log"), []byte("2026-11-24 10:00:00.000 UTC [1] LOG:  started streaming WAL from primary at 0/3000000 on timeline 1\n"), 0o644); err != nil {
		return err
	}
	w, err := walwatch.New(walwatch.Config{LogDir: dir, PollInterval: poll})
	if err != nil {
		return err
	}
	defer w.Close()
	<-w.Events()
	runtime.GC()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	c0, t0 := cpu(), time.Now()
	time.Sleep(time.Duration(seconds) * time.Second)
	used, el := cpu()-c0, time.Since(t0)
	fmt.Printf("idle: %s CPU over %.1f s (poll every %s) = %.4f%% of one core\n", used, el.Seconds(), poll, 100*used.Seconds()/el.Seconds())
	return nil
}
