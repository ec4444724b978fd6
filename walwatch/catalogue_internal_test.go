package walwatch

import (
	"testing"

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
