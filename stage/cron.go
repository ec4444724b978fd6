package stage

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// cronSpec is a parsed 5-field cron expression: minute, hour, day of month,
// month, day of week (0 or 7 is Sunday). Each field is "*", a number, a
// range "a-b", a step "*/n" or "a-b/n", or a comma list of these; names
// (jan, mon) and the @ shorthands are not taken. As in cron, when both day
// fields are restricted a day matching either runs.
type cronSpec struct {
	minute, hour, dom, month, dow uint64 // bit i set: value i matches
	domAny, dowAny                bool
}

type cronField struct {
	name     string
	min, max int
}

var cronFields = [5]cronField{{"minute", 0, 59}, {"hour", 0, 23}, {"day of month", 1, 31}, {"month", 1, 12}, {"day of week", 0, 7}}

// parseCron parses expr, saying which field is wrong and why.
func parseCron(expr string) (*cronSpec, error) {
	parts := strings.Fields(expr)
	if len(parts) != 5 {
		return nil, fmt.Errorf("cron expression %q has %d fields, want 5: minute hour day-of-month month day-of-week", expr, len(parts))
	}
	var bits [5]uint64
	for i, p := range parts {
		b, err := parseCronField(p, cronFields[i])
		if err != nil {
			return nil, fmt.Errorf("cron expression %q: %w", expr, err)
		}
		bits[i] = b
	}
	s := &cronSpec{minute: bits[0], hour: bits[1], dom: bits[2], month: bits[3], dow: bits[4],
		domAny: parts[2] == "*", dowAny: parts[4] == "*"}
	if s.dow&(1<<7) != 0 {
		s.dow |= 1 // 7 is Sunday too
	}
	if s.next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("cron expression %q never runs (no such day)", expr)
	}
	return s, nil
}

func parseCronField(p string, f cronField) (uint64, error) {
	var bits uint64
	for _, item := range strings.Split(p, ",") {
		rng, stepText, hasStep := strings.Cut(item, "/")
		lo, hi, step := f.min, f.max, 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("%s: step %q is not a positive number", f.name, stepText)
			}
			step = n
		}
		switch a, b, isRange := strings.Cut(rng, "-"); {
		case rng == "*":
		case isRange:
			var err error
			if lo, err = cronNumber(a, f); err != nil {
				return 0, err
			}
			if hi, err = cronNumber(b, f); err != nil {
				return 0, err
			}
			if lo > hi {
				return 0, fmt.Errorf("%s: range %q runs backwards", f.name, rng)
			}
		default:
			n, err := cronNumber(rng, f)
			if err != nil {
				return 0, err
			}
			lo, hi = n, n
			if hasStep {
				hi = f.max // "5/10" is "5-max/10", as in Vixie cron
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << v
		}
	}
	return bits, nil
}

func cronNumber(s string, f cronField) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < f.min || n > f.max {
		return 0, fmt.Errorf("%s: %q is not a number from %d to %d", f.name, s, f.min, f.max)
	}
	return n, nil
}

func (s *cronSpec) dayMatches(t time.Time) bool {
	dom := s.dom&(1<<t.Day()) != 0
	dow := s.dow&(1<<int(t.Weekday())) != 0
	switch {
	case s.domAny && s.dowAny:
		return true
	case s.domAny:
		return dow
	case s.dowAny:
		return dom
	}
	return dom || dow
}

// cronHorizon bounds the search: a spec that matches no time within it
// never runs (31 February), and 29 February comes within it.
const cronHorizon = 8

// next is the first time after t (to the minute, in t's zone) the spec
// names, or zero when none does within cronHorizon years.
func (s *cronSpec) next(t time.Time) time.Time {
	loc := t.Location()
	t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute()+1, 0, 0, loc)
	end := t.Year() + cronHorizon
	for t.Year() <= end {
		switch {
		case s.month&(1<<int(t.Month())) == 0:
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
		case !s.dayMatches(t):
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
		case s.hour&(1<<t.Hour()) == 0:
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, loc)
		case s.minute&(1<<t.Minute()) == 0:
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute()+1, 0, 0, loc)
		default:
			return t
		}
	}
	return time.Time{}
}
