package stage

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCronNext(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse("2006-01-02 15:04 Mon", s)
		require.NoError(t, err)
		return tm
	}
	cases := []struct {
		name, expr, from, want string
	}{
		{"every minute", "* * * * *", "2026-12-01 12:14 Tue", "2026-12-01 12:15 Tue"},
		{"hourly at :30", "30 * * * *", "2026-12-01 12:30 Tue", "2026-12-01 13:30 Tue"},
		{"step", "*/15 * * * *", "2026-12-01 12:14 Tue", "2026-12-01 12:15 Tue"},
		{"start/step", "5/20 * * * *", "2026-12-01 12:26 Tue", "2026-12-01 12:45 Tue"},
		{"range and list", "0 9-17/4,22 * * *", "2026-12-01 17:00 Tue", "2026-12-01 22:00 Tue"},
		{"daily at 3 rolls over a month", "0 3 * * *", "2026-12-31 04:00 Thu", "2027-01-01 03:00 Fri"},
		{"weekday only", "0 0 * * 1-5", "2026-12-04 12:00 Fri", "2026-12-07 00:00 Mon"},
		{"sunday as 7", "0 0 * * 7", "2026-12-01 00:00 Tue", "2026-12-06 00:00 Sun"},
		{"either day field when both restricted", "0 0 13 * 5", "2026-12-01 00:00 Tue", "2026-12-04 00:00 Fri"},
		{"month", "0 0 1 2 *", "2026-12-01 00:00 Tue", "2027-02-01 00:00 Mon"},
		{"leap day", "0 0 29 2 *", "2026-03-01 00:00 Sun", "2028-02-29 00:00 Tue"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseCron(tc.expr)
			require.NoError(t, err)
			got := s.next(at(tc.from))
			want := at(tc.want)
			assert.True(t, got.Equal(want), "got %s, want %s", got.Format("2006-01-02 15:04 Mon"), tc.want)
		})
	}
}

func TestCronErrors(t *testing.T) {
	cases := []struct{ name, expr, want string }{
		{"too few fields", "* * * *", "has 4 fields, want 5"},
		{"minute out of range", "60 * * * *", "minute: \"60\" is not a number from 0 to 59"},
		{"day 0", "0 0 0 * *", "day of month: \"0\""},
		{"backwards", "0 5-3 * * *", "hour: range \"5-3\" runs backwards"},
		{"zero step", "*/0 * * * *", "step \"0\" is not a positive number"},
		{"names not taken", "0 0 * jan *", "month: \"jan\""},
		{"never", "0 0 31 2 *", "never runs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseCron(tc.expr)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// FuzzCron: a spec that parses names a time after any start, at a whole
// minute, that it matches itself.
func FuzzCron(f *testing.F) {
	for _, s := range []string{"* * * * *", "*/15 1-5 * * 1", "5/20 9-17/4,22 13 2 5", "0 0 29 2 *", "0 0 31 2 *", "1,2,3 * * * 7"} {
		f.Add(s, int64(1796000000))
	}
	f.Fuzz(func(t *testing.T, expr string, unix int64) {
		s, err := parseCron(expr)
		if err != nil {
			return
		}
		from := time.Unix(unix%(1<<34), 0).UTC()
		got := s.next(from)
		if got.IsZero() {
			return // never within the horizon from a date past it
		}
		if !got.After(from) || got.Second() != 0 {
			t.Fatalf("%q from %s: got %s", expr, from, got)
		}
		if s.minute&(1<<got.Minute()) == 0 || s.hour&(1<<got.Hour()) == 0 || s.month&(1<<int(got.Month())) == 0 || !s.dayMatches(got) {
			t.Fatalf("%q: %s does not match", expr, got)
		}
	})
}
