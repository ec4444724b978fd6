package walwatch

import (
	"bytes"
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxLine is the longest log line kept whole; longer lines are cut there and
// end with CutMarker.
const MaxLine = 1 << 20

// CutMarker ends a line cut at MaxLine.
const CutMarker = " [walwatch: line cut at 1 MiB]"

// Record is one log record: a stderr line with its continuation lines, one
// csvlog row or one jsonlog object.
type Record struct {
	// Time is the record's time with the zone it was written in; zero when
	// the format or prefix carries none.
	Time        time.Time
	PID         int
	Severity    string // LOG, FATAL, ... (translated if lc_messages is)
	SQLState    string // "" when the format has none (stderr without %e)
	BackendType string // "" before PostgreSQL 13 or without %b
	Message     string
	Detail      string
	Hint        string
	// Relayed is set for stderr text that carried no prefix (text relayed
	// from libpq or a restore_command).
	Relayed bool
	Line    int   // line of the record's start, from 1
	Offset  int64 // byte offset of the record's start
	End     int64 // byte offset just after the record
}

// rawRecord is the reader's reusable form of a Record: byte slices into
// buffers owned by the assembler, valid until the emit callback returns.
type rawRecord struct {
	line        int
	lastLine    int // line number of the record's last line
	offset, end int64
	ts, epoch   []byte
	msec        bool
	pid         []byte
	severity    []byte
	sqlstate    []byte
	btype       []byte
	message     []byte
	detail      []byte
	hint        []byte
	relayed     bool
	last        *[]byte
}

func (r *rawRecord) reset() {
	r.ts, r.epoch, r.pid = r.ts[:0], r.epoch[:0], r.pid[:0]
	r.severity, r.sqlstate, r.btype = r.severity[:0], r.sqlstate[:0], r.btype[:0]
	r.message, r.detail, r.hint = r.message[:0], r.detail[:0], r.hint[:0]
	r.msec, r.relayed = false, false
	r.last = &r.message
}

// logTime parses the record's time; loc resolves zone abbreviations other
// than UTC/GMT (nil: time.Local).
func (r *rawRecord) logTime(loc *time.Location) time.Time {
	if len(r.epoch) > 0 {
		f, err := strconv.ParseFloat(string(r.epoch), 64)
		if err != nil {
			return time.Time{}
		}
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).Round(time.Millisecond)
	}
	return parseLogTime(r.ts, loc)
}

func (r *rawRecord) record(loc *time.Location) Record {
	pid, _ := strconv.Atoi(string(r.pid))
	return Record{
		Time:        r.logTime(loc),
		PID:         pid,
		Severity:    text(r.severity),
		SQLState:    text(r.sqlstate),
		BackendType: text(r.btype),
		Message:     text(r.message),
		Detail:      text(r.detail),
		Hint:        text(r.hint),
		Relayed:     r.relayed,
		Line:        r.line,
		Offset:      r.offset,
		End:         r.end,
	}
}

// text makes a valid UTF-8 string of log bytes (logs may hold anything).
func text(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}

// parseLogTime parses "2006-01-02 15:04:05[.000] ZONE".
func parseLogTime(b []byte, loc *time.Location) time.Time {
	if len(b) < 19 {
		return time.Time{}
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range b[i : i+n] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	ns, i := 0, 19
	if len(b) > 23 && b[19] == '.' {
		ns, i = num(20, 3)*int(time.Millisecond), 23
	}
	zone := ""
	if i < len(b) && b[i] == ' ' {
		zone = string(b[i+1:])
	}
	l := zoneLocation(zone, loc)
	return time.Date(num(0, 4), time.Month(num(5, 2)), num(8, 2), num(11, 2), num(14, 2), num(17, 2), ns, l)
}

func zoneLocation(zone string, loc *time.Location) *time.Location {
	switch zone {
	case "UTC", "GMT", "Z", "":
		return time.UTC
	}
	if zone[0] == '+' || zone[0] == '-' {
		digits := make([]byte, 0, 4)
		for i := 1; i < len(zone); i++ {
			if isDigit(zone[i]) {
				digits = append(digits, zone[i])
			}
		}
		if len(digits) == 2 || len(digits) == 4 {
			h, _ := strconv.Atoi(string(digits[:2]))
			m := 0
			if len(digits) == 4 {
				m, _ = strconv.Atoi(string(digits[2:]))
			}
			off := h*3600 + m*60
			if zone[0] == '-' {
				off = -off
			}
			return time.FixedZone(zone, off)
		}
	}
	if loc == nil {
		loc = time.Local
	}
	return loc
}
