package walwatch_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/walwatch"
)

// proc is a server process as log_line_prefix sees it: a session
// (a backend with user, database, application, client) or not (the
// walreceiver, the startup process, the postmaster).
type proc struct {
	pid     int
	session bool
	btype   string
}

// renderPrefix prints prefix for p at time tm, line number line, with
// SQLSTATE code, following log_line_prefix() in elog.c: empty values print
// nothing, %q ends the prefix of processes that are not sessions, padding
// (%-10u, %10p) pads with spaces.
func renderPrefix(prefix string, p proc, tm time.Time, line int, code string) string {
	var b strings.Builder
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		if c != '%' || i+1 >= len(prefix) {
			b.WriteByte(c)
			continue
		}
		i++
		pad := 0
		sign := 1
		if prefix[i] == '-' {
			sign = -1
			i++
		}
		for i < len(prefix) && prefix[i] >= '0' && prefix[i] <= '9' {
			pad = pad*10 + int(prefix[i]-'0')
			i++
		}
		var v string
		switch prefix[i] {
		case '%':
			v = "%"
		case 'q':
			if !p.session {
				return b.String()
			}
			continue
		case 'a':
			if p.session {
				v = "psql"
			}
		case 'u':
			if p.session {
				v = "postgres"
			}
		case 'd':
			if p.session {
				v = "appdb"
			}
		case 'r':
			if p.session {
				v = "127.0.0.1(51234)"
			}
		case 'h':
			if p.session {
				v = "127.0.0.1"
			}
		case 'b':
			v = p.btype
		case 'p':
			v = strconv.Itoa(p.pid)
		case 'l':
			v = strconv.Itoa(line)
		case 't':
			v = tm.Format("2006-01-02 15:04:05 MST")
		case 'm':
			v = tm.Format("2006-01-02 15:04:05.000 MST")
		case 'n':
			v = fmt.Sprintf("%d.%03d", tm.Unix(), tm.Nanosecond()/1e6)
		case 's':
			v = tm.Add(-time.Hour).Format("2006-01-02 15:04:05 MST")
		case 'c':
			v = fmt.Sprintf("%x.%x", tm.Unix()-100, p.pid)
		case 'e':
			v = code
		case 'v':
			if p.session {
				v = "3/12"
			}
		case 'x':
			v = "0"
		case 'i':
			if p.session {
				v = "SELECT"
			}
		}
		v = fmt.Sprintf("%*s", sign*pad, v) // a negative width pads on the right
		b.WriteString(v)
	}
	return b.String()
}

// prefixLog writes a standby's log with prefix: startup and walreceiver
// lines, a session's lines in between, relayed continuation lines; an
// outage and its recovery.
func prefixLog(prefix string) string {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	startup := proc{pid: 4242, btype: "startup"}
	recv := proc{pid: 4250, btype: "walreceiver"}
	recv2 := proc{pid: 4301, btype: "walreceiver"}
	sess := proc{pid: 5120, session: true, btype: "client backend"}
	pm := proc{pid: 4240, btype: "postmaster"}
	line := 0
	var b strings.Builder
	w := func(p proc, s float64, code, sev, msg string) {
		line++
		tm := t0.Add(time.Duration(s * float64(time.Second)))
		fmt.Fprintf(&b, "%s%s:  %s\n", renderPrefix(prefix, p, tm, line, code), sev, msg)
	}
	w(pm, 0, "00000", "LOG", "starting PostgreSQL 16.1 on x86_64-pc-linux-gnu")
	w(startup, 0.1, "00000", "LOG", "entering standby mode")
	w(startup, 0.2, "00000", "LOG", "consistent recovery state reached at 0/3000100")
	w(pm, 0.2, "00000", "LOG", "database system is ready to accept read-only connections")
	w(recv, 0.3, "00000", "LOG", started)
	w(sess, 1, "00000", "LOG", "duration: 0.512 ms  statement: SELECT 1")
	w(sess, 1.5, "42P01", "ERROR", `relation "nope" does not exist at character 15`)
	w(sess, 1.5, "42P01", "STATEMENT", "SELECT * FROM nope;")
	w(recv, 2, "XX000", "FATAL", "could not receive data from WAL stream: server closed the connection unexpectedly")
	b.WriteString("\t\tThis probably means the server terminated abnormally\n\t\tbefore or while processing the request.\n")
	line += 2
	w(recv2, 7, "08006", "FATAL", `could not connect to the primary server: connection to server at "127.0.0.1", port 5432 failed: Connection refused`)
	b.WriteString("\t\tIs the server running on that host and accepting TCP/IP connections?\n")
	line++
	w(sess, 8, "00000", "LOG", "duration: 0.100 ms  statement: SELECT 2")
	w(recv2, 12, "00000", "LOG", started)
	return b.String()
}

// prefixes are log_line_prefix values seen in the wild and odd ones built
// from every escape, padding, literal text, no space before the severity.
var prefixes = []string{
	"%t [%p]: [%l-1] user=%u,db=%d,app=%a ",
	"< %m %p %e > ",
	"%t:%r:%u@%d:[%p]:",
	"[%m] [%p] [%c] [%l] ",
	"",
	"%m [%p] ",
	"%m [%p] %q%u@%d ",
	"%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
	"%m [%p] %q%u@%d %b ",
	"%m [%p] %b %e ",
	"%n [%p] ",
	"%t %-10u %-8d [%10p] ",
	"pid=%p ts=%m ",
	"%m|%p|%e|%u|%d|",
	"%%%m %% [%p] ",
	"%s %c %v %x [%p] ",
	"%m %p %q%r %h %i ",
	"%t [%p-%l] %q%u@%d/%a ",
	"[%p] ",
	"%m ",
	"%t %e %b [%p]: ",
	"{%m} (%p) ",
}

// TestAnyPrefix: every prefix, given or inferred from the lines, finds the
// same events.
func TestAnyPrefix(t *testing.T) {
	want := []string{"ready", "streaming", "fault stream-lost", "recovered"}
	for _, p := range prefixes {
		log := prefixLog(p)
		for _, given := range []bool{true, false} {
			t.Run(fmt.Sprintf("%q given=%v", p, given), func(t *testing.T) {
				cfg := walwatch.Config{Format: walwatch.FormatStderr}
				if given {
					cfg.Prefix, cfg.PrefixEmpty = p, p == ""
				}
				got := replay(t, cfg, log)
				for i := range got {
					got[i] = got[i][:strings.IndexByte(got[i], '@')]
				}
				assert.Equal(t, want, got, "log:\n%s", log)
			})
		}
	}
}

// checkPrefixStretch replays a stretch of a real log written with prefix
// (an outage and its recovery) with the prefix given and inferred.
func checkPrefixStretch(t *testing.T, prefix, log string) {
	t.Helper()
	for _, given := range []bool{true, false} {
		cfg := walwatch.Config{Format: walwatch.FormatStderr}
		if given {
			cfg.Prefix, cfg.PrefixEmpty = prefix, prefix == ""
		}
		got := replay(t, cfg, log)
		for i := range got {
			got[i] = got[i][:strings.IndexByte(got[i], '@')]
		}
		assert.Equal(t, []string{"fault stream-lost", "recovered"}, got, "prefix %q given=%v, log:\n%s", prefix, given, log)
	}
}

// TestPrefixFixtures replays the stretches real standbys wrote with each
// prefix (testdata/prefixes/<major>/, from TestLivePrefixes -update). It
// needs no PostgreSQL.
func TestPrefixFixtures(t *testing.T) {
	logs, err := filepath.Glob(filepath.Join("testdata", "prefixes", "*", "*.log"))
	require.NoError(t, err)
	require.NotEmpty(t, logs, "no fixtures: run go test -run TestLivePrefixes -update")
	for _, l := range logs {
		t.Run(strings.TrimPrefix(l, "testdata/prefixes/"), func(t *testing.T) {
			data, err := os.ReadFile(l)
			require.NoError(t, err)
			prefix, err := os.ReadFile(strings.TrimSuffix(l, ".log") + ".prefix")
			require.NoError(t, err)
			checkPrefixStretch(t, string(prefix), string(data))
		})
	}
}
