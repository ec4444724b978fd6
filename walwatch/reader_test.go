package walwatch_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/walwatch"
)

func readAll(t testing.TB, format walwatch.Format, prefix, in string) []walwatch.Record {
	t.Helper()
	r := walwatch.NewReader(strings.NewReader(in), format, prefix)
	var out []walwatch.Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, rec)
	}
}

func TestReaderStderr(t *testing.T) {
	utc := func(s string) time.Time {
		tm, err := time.Parse("2006-01-02 15:04:05.000", s)
		require.NoError(t, err)
		return tm
	}
	tests := []struct {
		name, prefix, in string
		want             []walwatch.Record
	}{
		{
			name:   "default prefix with continuation lines",
			prefix: "%m [%p] ",
			in: "2026-11-24 10:01:05.020 UTC [110] FATAL:  could not connect to the primary server: connection refused\n" +
				"\t\tIs the server running on that host?\n" +
				"2026-11-24 10:01:06.000 UTC [111] LOG:  entering standby mode\n",
			want: []walwatch.Record{
				{Time: utc("2026-11-24 10:01:05.020"), PID: 110, Severity: "FATAL", Message: "could not connect to the primary server: connection refused\n\tIs the server running on that host?", Line: 1},
				{Time: utc("2026-11-24 10:01:06.000"), PID: 111, Severity: "LOG", Message: "entering standby mode", Line: 3},
			},
		},
		{
			name:   "detail of the same process attaches",
			prefix: "%m [%p] ",
			in: "2026-11-24 10:01:00.000 UTC [105] LOG:  replication terminated by primary server\n" +
				"2026-11-24 10:01:00.000 UTC [105] DETAIL:  End of WAL reached on timeline 1 at 0/3000148.\n",
			want: []walwatch.Record{
				{Time: utc("2026-11-24 10:01:00.000"), PID: 105, Severity: "LOG", Message: "replication terminated by primary server", Detail: "End of WAL reached on timeline 1 at 0/3000148.", Line: 1},
			},
		},
		{
			name:   "unprefixed relayed warning is a record of its own",
			prefix: "%m [%p] ",
			in: "2026-11-24 10:01:00.000 UTC [105] LOG:  started streaming WAL from primary at 0/3000000 on timeline 1\n" +
				"WARNING:  terminating connection because of crash of another server process\n" +
				"DETAIL:  The postmaster has commanded this server process to roll back.\n",
			want: []walwatch.Record{
				{Time: utc("2026-11-24 10:01:00.000"), PID: 105, Severity: "LOG", Message: "started streaming WAL from primary at 0/3000000 on timeline 1", Line: 1},
				{Severity: "WARNING", Message: "terminating connection because of crash of another server process", Detail: "The postmaster has commanded this server process to roll back.", Relayed: true, Line: 2},
			},
		},
		{
			name:   "unprefixed text without severity continues the record",
			prefix: "%t [%p]: [%l-1] ",
			in: "2026-11-24 10:01:00 UTC [7]: [3-1] LOG:  restored log file \"x\" from archive\n" +
				"cp: cannot stat '/arch/0000000100000000000000AA': No such file or directory\n",
			want: []walwatch.Record{
				{Time: utc("2026-11-24 10:01:00.000"), PID: 7, Severity: "LOG", Message: "restored log file \"x\" from archive\ncp: cannot stat '/arch/0000000100000000000000AA': No such file or directory", Line: 1},
			},
		},
		{
			name:   "sqlstate and backend type from the prefix",
			prefix: "%m [%p] %e %b: ",
			in:     "2026-11-24 10:01:05.020 +0300 [110] 08006 walreceiver: FATAL:  could not receive data from WAL stream: x\n",
			want: []walwatch.Record{
				{Time: time.Date(2026, 11, 24, 10, 1, 5, 20e6, time.FixedZone("+0300", 3*3600)), PID: 110, Severity: "FATAL", SQLState: "08006", BackendType: "walreceiver", Message: "could not receive data from WAL stream: x", Line: 1},
			},
		},
		{
			name:   "backend type with a space, user and database with %q",
			prefix: "%m [%p] %q%u@%d %b ",
			in: "2026-11-24 10:00:00.000 UTC [1] LOG:  database system is ready to accept read-only connections\n" +
				"2026-11-24 10:00:01.000 UTC [2] bob@db client backend ERROR:  relation \"x\" does not exist\n",
			want: []walwatch.Record{
				{Time: utc("2026-11-24 10:00:00.000"), PID: 1, Severity: "LOG", Message: "database system is ready to accept read-only connections", Line: 1},
				{Time: utc("2026-11-24 10:00:01.000"), PID: 2, Severity: "ERROR", BackendType: "client backend", Message: "relation \"x\" does not exist", Line: 2},
			},
		},
		{
			name: "prefix sniffed",
			in:   "2026-11-24 10:00:00.000 UTC [1] LOG:  a\n2026-11-24 10:00:00.000 UTC [2] LOG:  b\n",
			want: []walwatch.Record{
				{Time: utc("2026-11-24 10:00:00.000"), PID: 1, Severity: "LOG", Message: "a", Line: 1},
				{Time: utc("2026-11-24 10:00:00.000"), PID: 2, Severity: "LOG", Message: "b", Line: 2},
			},
		},
		{
			name:   "last line without newline",
			prefix: "%m [%p] ",
			in:     "2026-11-24 10:00:00.000 UTC [1] LOG:  a",
			want:   []walwatch.Record{{Time: utc("2026-11-24 10:00:00.000"), PID: 1, Severity: "LOG", Message: "a", Line: 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readAll(t, walwatch.FormatStderr, tt.prefix, tt.in)
			require.Len(t, got, len(tt.want))
			setSpans(tt.in, tt.want)
			for i := range got {
				assert.True(t, tt.want[i].Time.Equal(got[i].Time), "record %d: got time %v, want %v", i, got[i].Time, tt.want[i].Time)
				got[i].Time = tt.want[i].Time
				assert.Equal(t, tt.want[i], got[i], "record %d", i)
			}
		})
	}
}

// setSpans fills Offset and End of records that know their first Line: a
// record runs to the next record's first line (or the end of the input).
func setSpans(in string, recs []walwatch.Record) {
	lineOff := []int64{0, 0}
	for i, c := range in {
		if c == '\n' {
			lineOff = append(lineOff, int64(i+1))
		}
	}
	if in != "" && in[len(in)-1] != '\n' {
		lineOff = append(lineOff, int64(len(in)))
	}
	for i := range recs {
		recs[i].Offset = lineOff[recs[i].Line]
		if i+1 < len(recs) {
			recs[i].End = lineOff[recs[i+1].Line]
		} else {
			recs[i].End = lineOff[len(lineOff)-1]
		}
	}
}

func TestReaderLongLineIsCut(t *testing.T) {
	long := strings.Repeat("x", walwatch.MaxLine+100)
	in := "2026-11-24 10:00:00.000 UTC [1] LOG:  " + long + "\n2026-11-24 10:00:00.000 UTC [2] LOG:  next\n"
	got := readAll(t, walwatch.FormatStderr, "%m [%p] ", in)
	require.Len(t, got, 2)
	assert.True(t, strings.HasSuffix(got[0].Message, walwatch.CutMarker), "got %q...", got[0].Message[len(got[0].Message)-40:])
	assert.Equal(t, walwatch.MaxLine+len(walwatch.CutMarker), len("2026-11-24 10:00:00.000 UTC [1] LOG:  ")+len(got[0].Message))
	assert.Equal(t, "next", got[1].Message)
	assert.Equal(t, 2, got[1].Line)
	assert.Equal(t, int64(len(in)-len("2026-11-24 10:00:00.000 UTC [2] LOG:  next\n")), got[1].Offset)
}

func TestReaderCSV(t *testing.T) {
	// 23 columns (9.x-12), 24 (13) and 26 (14+).
	row := func(extra string) string {
		return `2026-11-24 10:01:05.020 UTC,,,110,,6562f0a1.6e,1,,2026-11-24 10:01:05 UTC,,0,FATAL,08006,"could not connect to the primary server: connection refused
	Is the server running on that host and accepting TCP/IP connections?",,,,,,,,,""` + extra + "\n"
	}
	for _, tc := range []struct {
		name, extra, btype string
	}{
		{"23 columns", "", ""},
		{"24 columns", ",walreceiver", "walreceiver"},
		{"26 columns", ",walreceiver,,0", "walreceiver"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := row(tc.extra) + `2026-11-24 10:01:06.000 UTC,,,111,,x,1,,,,0,LOG,00000,"say ""hi""",,,,,,,,,""` + tc.extra + "\n"
			got := readAll(t, walwatch.FormatCSV, "", in)
			require.Len(t, got, 2)
			assert.Equal(t, "could not connect to the primary server: connection refused\n\tIs the server running on that host and accepting TCP/IP connections?", got[0].Message)
			assert.Equal(t, 110, got[0].PID)
			assert.Equal(t, "FATAL", got[0].Severity)
			assert.Equal(t, "08006", got[0].SQLState)
			assert.Equal(t, tc.btype, got[0].BackendType)
			assert.Equal(t, 1, got[0].Line)
			assert.Equal(t, 3, got[1].Line)
			assert.Equal(t, `say "hi"`, got[1].Message)
			assert.Equal(t, int64(len(in)), got[1].End)
		})
	}
}

func TestReaderJSON(t *testing.T) {
	in := `{"timestamp":"2026-11-24 10:01:05.020 UTC","pid":110,"session_id":"x","error_severity":"FATAL","state_code":"08006","message":"could not receive data from WAL stream: server closed the connection unexpectedly\n\tThis probably means","backend_type":"walreceiver","query_id":0}` + "\n" +
		"not json at all\n"
	got := readAll(t, walwatch.FormatJSON, "", in)
	require.Len(t, got, 2)
	assert.Equal(t, "FATAL", got[0].Severity)
	assert.Equal(t, "08006", got[0].SQLState)
	assert.Equal(t, "walreceiver", got[0].BackendType)
	assert.Equal(t, 110, got[0].PID)
	assert.Equal(t, "could not receive data from WAL stream: server closed the connection unexpectedly\n\tThis probably means", got[0].Message)
	assert.True(t, got[1].Relayed)
	assert.Equal(t, 2, got[1].Line)
}

// FuzzReaderStderr: any bytes and any prefix (or none: inferred), never a
// panic, and records tile the input in order.
func FuzzReaderStderr(f *testing.F) {
	f.Add("%m [%p] ", "2026-11-24 10:01:05.020 UTC [110] FATAL:  x\n\ty\nWARNING:  z\n")
	f.Add("%t [%p]: [%l-1] %q%u@%d ", "2026-11-24 10:01:00 UTC [7]: [3-1] u@d LOG:  a\n")
	f.Add("%m [%p] %e %b: ", "2026-11-24 10:01:05.020 +0300 [110] 08006 walreceiver: FATAL:  x\n")
	f.Add("%-10u%%%10p%c%v%x%n%a%h%r%i%Q%L%s", "\x00\xff:  \n\t\n")
	f.Add("", "LOG:  a\nDETAIL:  b\n")
	for _, p := range prefixes { // "" infers the prefix from the lines
		f.Add(p, prefixLog(p))
		f.Add("", prefixLog(p))
	}
	f.Fuzz(func(t *testing.T, prefix, in string) {
		recs := readAll(t, walwatch.FormatStderr, prefix, in)
		checkTiling(t, recs, int64(len(in)))
	})
}

func FuzzReaderCSV(f *testing.F) {
	f.Add("2026-11-24 10:01:05.020 UTC,,,110,,x,1,,,,0,FATAL,08006,\"a\nb\",,,,,,,,,\"\",walreceiver,,0\n")
	f.Add("\"unterminated\n,,,\n\"\"\n")
	f.Fuzz(func(t *testing.T, in string) {
		recs := readAll(t, walwatch.FormatCSV, "", in)
		checkTiling(t, recs, int64(len(in)))
	})
}

func FuzzReaderJSON(f *testing.F) {
	f.Add(`{"timestamp":"2026-11-24 10:01:05.020 UTC","pid":110,"error_severity":"FATAL","message":"x"}` + "\n")
	f.Add("{\"pid\":\"not a number\"}\n{\n}\n\xff\n")
	f.Fuzz(func(t *testing.T, in string) {
		recs := readAll(t, walwatch.FormatJSON, "", in)
		for i := 1; i < len(recs); i++ {
			require.LessOrEqual(t, recs[i-1].End, recs[i].Offset)
		}
	})
}

// checkTiling: records do not overlap, go forward, and stay in the input.
func checkTiling(t *testing.T, recs []walwatch.Record, n int64) {
	t.Helper()
	var end int64
	for i, r := range recs {
		require.GreaterOrEqual(t, r.Offset, end, "record %d starts before the previous ends", i)
		require.Greater(t, r.End, r.Offset, "record %d is empty", i)
		end = r.End
	}
	require.LessOrEqual(t, end, n)
}
