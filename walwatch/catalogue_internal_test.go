package walwatch

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// Every catalogue entry is reachable: a line carrying its wording takes the
// fast path's slow branch and classifies as the entry says.
func TestCatalogueEntries(t *testing.T) {
	p := compilePrefix(DefaultPrefix)
	for _, e := range catalogue {
		t.Run(e.Prefix+e.Contains, func(t *testing.T) {
			msg := e.Prefix + " ... " + e.Contains
			line := []byte("2026-11-24 10:00:00.000 UTC [1] FATAL:  " + msg)
			if e.Class != clsNoise {
				assert.True(t, lineMayMatter(line), "fast path would skip %q", line)
			}
			got, reasons := classifyLine(p, line)
			if e.Class == clsNoise {
				return
			}
			assert.Equal(t, []class{e.Class}, got)
			assert.Equal(t, []Reason{e.Reason}, reasons)
		})
	}
}

// classifyLine reads one stderr line the way the watcher does, fast path
// on, and classifies the records it yields.
func classifyLine(p *prefix, line []byte) (got []class, reasons []Reason) {
	a := newStderrAsm(p, func(r *rawRecord) {
		c, re := classify(r)
		got, reasons = append(got, c), append(reasons, re)
	})
	a.fast = true
	a.line(line, 0, 1, int64(len(line)+1))
	a.flush()
	return got, reasons
}

func TestClassifyByCode(t *testing.T) {
	r := &rawRecord{message: []byte("no se pudo recibir datos del flujo de WAL"), sqlstate: []byte("08006"), btype: []byte("walreceiver")}
	c, reason := classify(r)
	assert.Equal(t, clsFault, c)
	assert.Equal(t, ReasonUnknown, reason)
	r.btype = []byte("client backend")
	c, _ = classify(r)
	assert.Equal(t, clsNone, c)
}

func TestFilenamePattern(t *testing.T) {
	for _, tc := range []struct {
		in   string
		f    Format
		want string
	}{
		{"postgresql-%Y-%m-%d_%H%M%S.log", FormatStderr, "postgresql-*-*-*_*.log"},
		{"postgresql-%Y-%m-%d_%H%M%S.log", FormatCSV, "postgresql-*-*-*_*.csv"},
		{"postgresql-%a", FormatJSON, "postgresql-*.json"},
		{"pg[1]-%%.log", FormatStderr, `pg\[1]-%.log`},
	} {
		assert.Equal(t, tc.want, filenamePattern(tc.in, tc.f), tc.in)
	}
}

// FuzzMachine: whatever the log holds, reading and classifying it never
// panics, and an outage raises one Fault (plus one if it turns out to need a
// resync) before its Recovered.
func FuzzMachine(f *testing.F) {
	f.Add("2026-11-24 10:00:00.000 UTC [1] LOG:  started streaming WAL from primary at 0/3000000 on timeline 1\n" +
		"2026-11-24 10:00:01.000 UTC [1] FATAL:  could not receive data from WAL stream: x\n\t\ty\n" +
		"2026-11-24 10:00:02.000 UTC [2] LOG:  started streaming WAL from primary at 0/3000000 on timeline 1\n")
	f.Add("2026-11-24 10:00:00.000 UTC [1] LOG:  replication terminated by primary server\n\t\tx\nWARNING:  y\n" +
		"2026-11-24 10:00:01.000 UTC [9] LOG:  received fast shutdown request\n")
	f.Add("2026-11-24 10:00:00.000 UTC [1] FATAL:  could not receive data from WAL stream: ERROR:  requested WAL segment 000000010000000000000003 has already been removed\n" +
		"2026-11-24 10:00:01.000 UTC [1] LOG:  started streaming WAL from primary at 0/3000000 on timeline 1\n")
	f.Fuzz(func(t *testing.T, log string) {
		for _, grace := range []time.Duration{0, time.Second} {
			m := newMachine(State{}, grace, time.Second)
			m.now = func() time.Time { return time.Time{} } // only log times settle pending faults
			var out []Event
			a := newStderrAsm(compilePrefix(DefaultPrefix), func(r *rawRecord) {
				c, reason := classify(r)
				out = m.feed(c, Event{Reason: reason, LogTime: r.logTime(time.UTC), Message: text(r.message)}, out)
			})
			a.fast = true
			sp := newSplitter(a, 0, 1)
			sp.write([]byte(log))
			sp.write([]byte{'\n'})
			a.flush()
			out = m.finish(out)
			open := false
			for _, ev := range out {
				switch ev.Kind {
				case KindFault:
					if open && !ev.Reason.NeedsResync() {
						t.Fatalf("second fault in one outage: %v", out)
					}
					open = true
				case KindRecovered:
					if !open {
						t.Fatalf("recovered without a fault: %v", out)
					}
					open = false
				case KindPromoted:
					open = false
				}
			}
		}
	})
}

// Each version's wording, as that version logs it, classifies the same way
// (fast path included). 18 prefixes connect failures with the receiver's
// name; the reason must still come from the relayed error.
func TestClassifyPerVersion(t *testing.T) {
	const at = `connection to server at "127.0.0.1", port 5432 failed: `
	for _, tc := range []struct {
		major  int
		msg    string
		class  class
		reason Reason
	}{
		{10, `could not connect to the primary server: FATAL:  password authentication failed for user "r"`, clsFault, ReasonAuthRefused},
		{10, `could not connect to the primary server: fe_sendauth: no password supplied`, clsFault, ReasonAuthRefused},
		{10, `could not connect to the primary server: FATAL:  no pg_hba.conf entry for replication connection from host "127.0.0.1", user "r", SSL off`, clsFault, ReasonAuthRefused},
		{10, `could not connect to the primary server: could not connect to server: Connection refused`, clsFault, ReasonPrimaryUnreachable},
		{10, `trigger file found: /tmp/promote`, clsPromoted, ReasonNone},
		{11, `trigger file found: /tmp/promote`, clsPromoted, ReasonNone},
		{12, `promote trigger file found: /tmp/promote`, clsPromoted, ReasonNone},
		{15, `promote trigger file found: /tmp/promote`, clsPromoted, ReasonNone},
		{13, `database system is ready to accept read only connections`, clsReadyReadOnly, ReasonNone},
		{14, `database system is ready to accept read-only connections`, clsReadyReadOnly, ReasonNone},
		{17, `could not connect to the primary server: ` + at + `FATAL:  role "r" does not exist`, clsFault, ReasonAuthRefused},
		{17, `could not connect to the primary server: ` + at + `Connection refused`, clsFault, ReasonPrimaryUnreachable},
		{18, `streaming replication receiver "walreceiver" could not connect to the primary server: ` + at + `FATAL:  password authentication failed for user "r"`, clsFault, ReasonAuthRefused},
		{18, `streaming replication receiver "walreceiver" could not connect to the primary server: ` + at + `fe_sendauth: no password supplied`, clsFault, ReasonAuthRefused},
		{18, `streaming replication receiver "walreceiver" could not connect to the primary server: ` + at + `FATAL:  role "r" is not permitted to log in`, clsFault, ReasonAuthRefused},
		{18, `streaming replication receiver "walreceiver" could not connect to the primary server: ` + at + `FATAL:  role "nobody" does not exist`, clsFault, ReasonAuthRefused},
		{18, `streaming replication receiver "walreceiver" could not connect to the primary server: ` + at + `FATAL:  no pg_hba.conf entry for replication connection from host "127.0.0.1", user "r", no encryption`, clsFault, ReasonAuthRefused},
		{18, `streaming replication receiver "walreceiver" could not connect to the primary server: ` + at + `FATAL:  pg_hba.conf rejects replication connection for host "127.0.0.1", user "nohba", no encryption`, clsFault, ReasonAuthRefused},
		{18, `streaming replication receiver "standby 1" could not connect to the primary server: ` + at + `FATAL:  password authentication failed for user "r"`, clsFault, ReasonAuthRefused},
		{18, `streaming replication receiver "walreceiver" could not connect to the primary server: ` + at + `Connection refused`, clsFault, ReasonPrimaryUnreachable},
		{18, `streaming replication receiver "walreceiver" could not connect to the primary server: ` + at + `FATAL:  the database system is not yet accepting connections`, clsFault, ReasonPrimaryUnreachable},
		{18, `database system is ready to accept read-only connections`, clsReadyReadOnly, ReasonNone},
		{18, `streaming replication receiver "walreceiver" said something else`, clsNone, ReasonNone},
	} {
		t.Run(fmt.Sprintf("pg%d/%s", tc.major, tc.msg), func(t *testing.T) {
			line := []byte("2026-11-24 10:00:00.000 UTC [1] FATAL:  " + tc.msg)
			if tc.class != clsNone {
				assert.True(t, lineMayMatter(line), "fast path would skip %q", line)
			}
			got, reasons := classifyLine(compilePrefix(DefaultPrefix), line)
			if tc.class == clsNone {
				assert.NotContains(t, got, clsFault)
				return
			}
			assert.Equal(t, []class{tc.class}, got)
			assert.Equal(t, []Reason{tc.reason}, reasons)
		})
	}
}
