package walwatch

import (
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
			assert.True(t, e.Since >= 904 && (e.Until == 0 || e.Until > e.Since), "version range [%d, %d)", e.Since, e.Until)
			if e.Class != clsNoise {
				assert.True(t, lineMayMatter(line), "fast path would skip %q", line)
			}
			var got []class
			var reasons []Reason
			a := newStderrAsm(p, func(r *rawRecord) {
				c, re := classify(r)
				got, reasons = append(got, c), append(reasons, re)
			})
			a.fast = true
			a.line(line, 0, 1, int64(len(line)+1))
			a.flush()
			if e.Class == clsNoise {
				return
			}
			assert.Equal(t, []class{e.Class}, got)
			assert.Equal(t, []Reason{e.Reason}, reasons)
		})
	}
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
