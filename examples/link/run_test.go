package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
)

// waitLimit bounds every wait for something the servers do; it is a
// timeout, not a timing assertion.
const waitLimit = 90 * time.Second

// service is one `link run` process.
type service struct {
	cmd     *exec.Cmd
	logFile string
	done    chan struct{} // closed when the process has exited, err set
	err     error
}

func (c *cli) start(t *testing.T, addr string) *service {
	t.Helper()
	s := &service{logFile: filepath.Join(t.TempDir(), "run.log"), done: make(chan struct{})}
	f, err := os.Create(s.logFile)
	require.NoError(t, err)
	defer f.Close()
	s.cmd = exec.Command(c.bin, "-config", c.cfgFile, "-http", addr, "-log", "json", "run")
	s.cmd.Stdout, s.cmd.Stderr = f, f
	require.NoError(t, s.cmd.Start())
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

// stop sends SIGTERM, requires a clean exit and returns the log records,
// every line of which must be one JSON object.
func (s *service) stop(t *testing.T) []map[string]any {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-s.done:
		require.NoError(t, s.err, "run exits cleanly on SIGTERM:\n%s", s.logs(t))
	case <-time.After(waitLimit):
		t.Fatalf("run did not stop within %s:\n%s", waitLimit, s.logs(t))
	}
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.logs(t)))
	for sc.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec), "a log line that is not one JSON object: %q", sc.Text())
		recs = append(recs, rec)
	}
	return recs
}

func (s *service) logs(t *testing.T) string {
	b, err := os.ReadFile(s.logFile)
	require.NoError(t, err)
	return string(b)
}

// events counts the "replication event" records of a kind.
func events(recs []map[string]any, kind string) int {
	n := 0
	for _, r := range recs {
		if r["msg"] == "replication event" && r["kind"] == kind {
			n++
		}
	}
	return n
}

// scrape reads /metrics with the Prometheus text parser and returns each
// sample as name{label="value",...} -> value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			sort.Strings(ls)
			k := name
			if len(ls) > 0 {
				k += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.Gauge != nil:
				out[k] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[k] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// sum adds the samples of a metric over its labels.
func sum(m map[string]float64, name string) float64 {
	s := 0.0
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// waitScrape scrapes until cond holds.
func waitScrape(t *testing.T, addr, what string, cond func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		m := scrape(t, addr)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; last scrape: %v", waitLimit, what, m)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitHealth polls /healthz until it answers code, and returns the body.
func waitHealth(t *testing.T, addr string, code int) map[string]any {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	last := "no answer"
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
			if resp.StatusCode == code {
				var body map[string]any
				require.NoError(t, json.Unmarshal(b, &body), "%s", b)
				return body
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("waited %s for /healthz %d; last: %s", waitLimit, code, last)
	return nil
}

// waitLogGrows waits until the staging server logs hold more FATAL lines
// than before: the walreceiver has noticed the source is gone.
func waitLogGrows(t *testing.T, name string, before int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for countFatal(name) <= before {
		if time.Now().After(deadline) {
			names, _ := filepath.Glob(name)
			tail := "(no file)"
			if len(names) > 0 {
				tail = pgtest.Tail(names[len(names)-1], 20)
			}
			t.Fatalf("waited %s for a FATAL line in %s:\n%s", waitLimit, names, tail)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// countFatal counts the FATAL lines of the files the glob pattern names
// (the logging collector's rotated files).
func countFatal(pattern string) int {
	names, _ := filepath.Glob(pattern)
	n := 0
	for _, name := range names {
		b, _ := os.ReadFile(name)
		n += bytes.Count(b, []byte("FATAL:"))
	}
	return n
}

// TestRun keeps a real staging watched with `link run` and reads it from
// outside as monitoring would: /metrics and /healthz while streaming,
// during an outage of the source and after it; then it stops run with
// SIGTERM, lets an outage happen while nothing watches, and starts run
// again: that outage is reported once, and a third run reports nothing
// again.
func TestRun(t *testing.T) {
	c := newCLI(t)
	c.run(t, nil, "link")
	addr := fmt.Sprintf("127.0.0.1:%d", pgtest.FreePort(t))
	stagingLog := filepath.Join(c.cfg["staging"].(map[string]any)["data_dir"].(string)+".pgstage", "log", "staging-*.log")

	// Streaming.
	s1 := c.start(t, addr)
	require.Equal(t, "streaming", waitHealth(t, addr, http.StatusOK)["state"])
	m := waitScrape(t, addr, "walreceiver up", func(m map[string]float64) bool { return m["pgstage_walreceiver_up"] == 1 })
	require.Equal(t, 1.0, m[`pgstage_state{state="streaming"}`])
	require.Equal(t, 1.0, m["pgstage_replication_query_up"])
	require.Positive(t, m["pgstage_replay_lsn_bytes"])
	require.GreaterOrEqual(t, m["pgstage_receive_lsn_bytes"], m["pgstage_replay_lsn_bytes"])
	require.Equal(t, 0.0, sum(m, "pgstage_fault_open"))
	require.Equal(t, 0.0, sum(m, "pgstage_faults_total"))
	require.Equal(t, 1.0, m["pgstage_snapshots_total"], "link takes a snapshot")
	require.Contains(t, m, "pgstage_last_snapshot_timestamp_seconds")
	require.Equal(t, 1.0, sum(m, "pgstage_backup_info"))
	require.Contains(t, m, "pgstage_backup_age_seconds")
	lsn := m["pgstage_replay_lsn_bytes"]

	// The source stops: 503 with the fault, walreceiver down, one fault.
	c.p.Stop(t, "fast")
	body := waitHealth(t, addr, http.StatusServiceUnavailable)
	require.Equal(t, "faulted", body["state"], "%v", body)
	fault, ok := body["fault"].(map[string]any)
	require.True(t, ok, "the fault as JSON: %v", body)
	reason := fault["reason"].(string)
	require.NotEmpty(t, reason)
	m = waitScrape(t, addr, "walreceiver down", func(m map[string]float64) bool { return m["pgstage_walreceiver_up"] == 0 })
	require.Equal(t, 1.0, m[fmt.Sprintf(`pgstage_fault_open{reason=%q}`, reason)])
	require.Equal(t, 1.0, sum(m, "pgstage_fault_open"))
	require.Equal(t, 1.0, m[fmt.Sprintf(`pgstage_faults_total{reason=%q}`, reason)])
	require.Equal(t, 1.0, m[`pgstage_state{state="faulted"}`])

	// It starts again: 200, walreceiver up, the fault closed and still one.
	c.p.Start(t)
	c.p.InsertRows(t, 1)
	waitHealth(t, addr, http.StatusOK)
	m = waitScrape(t, addr, "walreceiver up again", func(m map[string]float64) bool {
		return m["pgstage_walreceiver_up"] == 1 && m["pgstage_replay_lsn_bytes"] > lsn
	})
	require.Equal(t, 0.0, sum(m, "pgstage_fault_open"))
	require.Equal(t, 1.0, sum(m, "pgstage_faults_total"))
	recs := s1.stop(t)
	require.Equal(t, 1, events(recs, "fault"), "run 1 logs its outage once")

	// An outage while nothing watches.
	before := countFatal(stagingLog)
	c.p.Stop(t, "fast")
	waitLogGrows(t, stagingLog, before)
	c.p.Start(t)

	// The next run reports it, once, and follows streaming again.
	s2 := c.start(t, addr)
	waitHealth(t, addr, http.StatusOK)
	m = waitScrape(t, addr, "walreceiver up", func(m map[string]float64) bool { return m["pgstage_walreceiver_up"] == 1 })
	require.Equal(t, 2.0, sum(m, "pgstage_faults_total"))
	require.Equal(t, 0.0, sum(m, "pgstage_fault_open"))
	recs = s2.stop(t)
	require.Equal(t, 1, events(recs, "fault"), "run 2 reports the outage it did not see happen, once:\n%s", s2.logs(t))

	// A third run repeats nothing.
	s3 := c.start(t, addr)
	waitHealth(t, addr, http.StatusOK)
	require.Equal(t, 2.0, sum(scrape(t, addr), "pgstage_faults_total"))
	recs = s3.stop(t)
	require.Zero(t, events(recs, "fault"), "run 3 repeats no event:\n%s", s3.logs(t))
}
