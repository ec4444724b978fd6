package walwatch

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"time"
)

// Format is a log_destination format.
type Format string

// Formats.
const (
	FormatAuto   Format = ""       // decided from the files (see Config.Format)
	FormatStderr Format = "stderr" // plain text with log_line_prefix
	FormatCSV    Format = "csvlog"
	FormatJSON   Format = "jsonlog" // PostgreSQL 15+
)

// assembler turns complete lines into records.
type assembler interface {
	// line gets one line without its newline, the offset of its first byte,
	// its number, and the offset just after its newline.
	line(l []byte, off int64, no int, end int64)
	// flush emits a record still held open (end of available data).
	flush()
}

// splitter cuts a byte stream into lines for an assembler, holding a partial
// last line until its newline arrives and cutting lines at MaxLine.
type splitter struct {
	a        assembler
	buf      []byte // partial line
	bufOff   int64  // offset of buf[0]
	next     int64  // offset of the next byte to come
	line     int    // number of the next line
	skipping bool   // discarding the rest of a line cut at MaxLine
}

func newSplitter(a assembler, off int64, line int) *splitter {
	return &splitter{a: a, bufOff: off, next: off, line: line}
}

// write takes the bytes at offset s.next.
func (s *splitter) write(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if s.skipping {
			if i < 0 {
				s.next += int64(len(p))
				return
			}
			s.next += int64(i + 1)
			p = p[i+1:]
			s.skipping = false
			s.line++
			s.bufOff = s.next
			continue
		}
		n := i
		if i < 0 {
			n = len(p)
		}
		if len(s.buf) == 0 {
			s.bufOff = s.next
		}
		if len(s.buf)+n > MaxLine {
			k := MaxLine - len(s.buf)
			s.buf = append(s.buf, p[:k]...)
			s.next += int64(k)
			p = p[k:]
			s.cut()
			continue
		}
		if i < 0 {
			s.buf = append(s.buf, p...)
			s.next += int64(len(p))
			return
		}
		l := p[:i]
		if len(s.buf) > 0 {
			s.buf = append(s.buf, l...)
			l = s.buf
		}
		start := s.bufOff
		s.next += int64(i + 1)
		p = p[i+1:]
		s.a.line(l, start, s.line, s.next)
		s.line++
		s.buf = s.buf[:0]
		s.bufOff = s.next
	}
}

// cut emits the MaxLine bytes held as a line with the marker and skips the
// rest of the line.
func (s *splitter) cut() {
	l := append(s.buf, CutMarker...)
	s.a.line(l, s.bufOff, s.line, s.next)
	s.buf = s.buf[:0]
	s.skipping = true
}

// boundary is the offset up to which every line was handed on (partial
// lines excluded), with the number of the next line.
func (s *splitter) boundary() (int64, int) {
	if s.skipping {
		return s.next, s.line
	}
	return s.next - int64(len(s.buf)), s.line
}

var auxSeverities = [][]byte{[]byte("DETAIL"), []byte("HINT"), []byte("CONTEXT"), []byte("STATEMENT"), []byte("QUERY"), []byte("LOCATION")}

func auxSeverity(sev []byte) int {
	for i, a := range auxSeverities {
		if bytes.Equal(sev, a) {
			return i
		}
	}
	return -1
}

// stderrAsm assembles stderr records: a prefixed line starts a record;
// tab-led lines, prefixed DETAIL/HINT/... lines of the same process and
// unprefixed text without a severity continue it; unprefixed text with a
// severity ("WARNING:  ...", relayed from libpq) starts a relayed record.
type stderrAsm struct {
	p    *prefix
	emit func(*rawRecord)
	cur  rawRecord
	open bool
	f    prefixFields
	fast bool // skip lines that cannot matter (emit only records that may)
}

func newStderrAsm(p *prefix, emit func(*rawRecord)) *stderrAsm {
	a := &stderrAsm{p: p, emit: emit}
	a.cur.reset()
	return a
}

func (a *stderrAsm) flush() {
	if a.open {
		a.open = false
		a.emit(&a.cur)
		a.cur.reset()
	}
}

func (a *stderrAsm) start(off int64, no int, end int64) {
	a.flush()
	a.open = true
	a.cur.offset, a.cur.line, a.cur.end = off, no, end
}

func (a *stderrAsm) attach(sev []byte, msg []byte, end int64) {
	switch auxSeverity(sev) {
	case 0:
		a.cur.last = &a.cur.detail
	case 1:
		a.cur.last = &a.cur.hint
	default:
		// CONTEXT, STATEMENT, ...: kept out of the message.
		a.cur.last = nil
		a.cur.end = end
		return
	}
	*a.cur.last = append((*a.cur.last)[:0], msg...)
	a.cur.end = end
}

func (a *stderrAsm) cont(l []byte, end int64) {
	if a.cur.last != nil {
		*a.cur.last = append(append(*a.cur.last, '\n'), l...)
	}
	a.cur.end = end
}

func (a *stderrAsm) line(l []byte, off int64, no int, end int64) {
	if a.fast && !a.open && !lineMayMatter(l) {
		return // see fastpath.go
	}
	a.line0(l, off, no, end)
	a.cur.lastLine = no // whatever the branch, the open record now ends here
	if a.fast && a.open && a.cur.line == no && (a.cur.relayed || !mayMatter(a.cur.message)) {
		// A record that cannot matter: drop it so the next lines take the fast path.
		a.open = false
		a.cur.reset()
	}
}

func (a *stderrAsm) line0(l []byte, off int64, no int, end int64) {
	if len(l) > 0 && l[len(l)-1] == '\r' {
		l = l[:len(l)-1]
	}
	if len(l) > 0 && l[0] == '\t' {
		if a.open {
			a.cont(l[1:], end)
			return
		}
		a.start(off, no, end)
		a.cur.relayed = true
		a.cur.message = append(a.cur.message, l[1:]...)
		return
	}
	if n, ok := a.p.match(l, &a.f); ok {
		sl := severityLen(l[n:])
		sev, msg := l[n:n+sl-3], l[n+sl:]
		if a.open && auxSeverity(sev) >= 0 && (len(a.f.pid) == 0 || bytes.Equal(a.f.pid, a.cur.pid)) {
			a.attach(sev, msg, end)
			return
		}
		a.start(off, no, end)
		c := &a.cur
		c.ts = append(c.ts, a.f.ts...)
		c.msec = a.f.msec
		c.epoch = append(c.epoch, a.f.epoch...)
		c.pid = append(c.pid, a.f.pid...)
		c.sqlstate = append(c.sqlstate, a.f.sqlstate...)
		c.btype = append(c.btype, a.f.btype...)
		c.severity = append(c.severity, sev...)
		c.message = append(c.message, msg...)
		return
	}
	if sl := severityLen(l); sl > 0 {
		if a.open && auxSeverity(l[:sl-3]) >= 0 {
			a.attach(l[:sl-3], l[sl:], end)
			return
		}
		a.start(off, no, end)
		a.cur.relayed = true
		a.cur.severity = append(a.cur.severity, l[:sl-3]...)
		a.cur.message = append(a.cur.message, l[sl:]...)
		return
	}
	if a.open {
		a.cont(l, end)
		return
	}
	a.start(off, no, end)
	a.cur.relayed = true
	a.cur.message = append(a.cur.message, l...)
}

// csvAsm frames csvlog rows by quote parity (a row ends at a newline outside
// quotes) and parses each with encoding/csv. Columns by version: 23 (up to
// 12), 24 (13, + backend_type), 26 (14+, + leader_pid, query_id).
type csvAsm struct {
	emit   func(*rawRecord)
	buf    []byte
	quotes int
	cur    rawRecord
	open   bool
}

func newCSVAsm(emit func(*rawRecord)) *csvAsm {
	a := &csvAsm{emit: emit}
	a.cur.reset()
	return a
}

func (a *csvAsm) line(l []byte, off int64, no int, end int64) {
	if !a.open {
		a.open = true
		a.buf = a.buf[:0]
		a.quotes = 0
		a.cur.offset, a.cur.line = off, no
	} else {
		a.buf = append(a.buf, '\n')
	}
	a.buf = append(a.buf, l...)
	a.quotes += bytes.Count(l, []byte{'"'})
	a.cur.end, a.cur.lastLine = end, no
	if a.quotes%2 == 0 || bytes.HasSuffix(l, []byte(CutMarker)) || len(a.buf) > 4*MaxLine {
		a.flush()
	}
}

func (a *csvAsm) flush() {
	if !a.open {
		return
	}
	a.open = false
	r := csv.NewReader(bytes.NewReader(a.buf))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	c := &a.cur
	fields, err := r.Read()
	if err != nil || len(fields) < 14 {
		c.relayed = true
		c.message = append(c.message, a.buf...)
	} else {
		c.ts = append(c.ts, fields[0]...)
		c.msec = true
		c.pid = append(c.pid, fields[3]...)
		c.severity = append(c.severity, fields[11]...)
		c.sqlstate = append(c.sqlstate, fields[12]...)
		c.message = append(c.message, fields[13]...)
		if len(fields) > 15 {
			c.detail = append(c.detail, fields[14]...)
			c.hint = append(c.hint, fields[15]...)
		}
		if len(fields) >= 24 {
			c.btype = append(c.btype, fields[23]...)
		}
	}
	a.emit(c)
	c.reset()
}

// jsonAsm reads jsonlog: one object per line, by key.
type jsonAsm struct {
	emit func(*rawRecord)
	cur  rawRecord
}

type jsonRecord struct {
	Timestamp     string `json:"timestamp"`
	PID           int    `json:"pid"`
	ErrorSeverity string `json:"error_severity"`
	StateCode     string `json:"state_code"`
	Message       string `json:"message"`
	Detail        string `json:"detail"`
	Hint          string `json:"hint"`
	BackendType   string `json:"backend_type"`
}

func newJSONAsm(emit func(*rawRecord)) *jsonAsm {
	a := &jsonAsm{emit: emit}
	a.cur.reset()
	return a
}

func (a *jsonAsm) flush() {}

func (a *jsonAsm) line(l []byte, off int64, no int, end int64) {
	c := &a.cur
	c.offset, c.line, c.end, c.lastLine = off, no, end, no
	var j jsonRecord
	if err := json.Unmarshal(l, &j); err != nil {
		if len(bytes.TrimSpace(l)) == 0 {
			return
		}
		c.relayed = true
		c.message = append(c.message, l...)
	} else {
		c.ts = append(c.ts, j.Timestamp...)
		c.msec = true
		if j.PID != 0 {
			c.pid = strconv.AppendInt(c.pid, int64(j.PID), 10)
		}
		c.severity = append(c.severity, j.ErrorSeverity...)
		c.sqlstate = append(c.sqlstate, j.StateCode...)
		c.message = append(c.message, j.Message...)
		c.detail = append(c.detail, j.Detail...)
		c.hint = append(c.hint, j.Hint...)
		c.btype = append(c.btype, j.BackendType...)
	}
	a.emit(c)
	c.reset()
}

// newAssembler returns the record assembler of a format; with fast, a
// stderr assembler may skip records that cannot be classified.
func newAssembler(format Format, p *prefix, fast bool, emit func(*rawRecord)) assembler {
	switch format {
	case FormatCSV:
		return newCSVAsm(emit)
	case FormatJSON:
		return newJSONAsm(emit)
	}
	if p == nil {
		p = compilePrefix(DefaultPrefix)
	}
	a := newStderrAsm(p, emit)
	a.fast = fast && fastPrefix(p)
	return a
}

// DefaultPrefix is log_line_prefix's default since PostgreSQL 10.
const DefaultPrefix = "%m [%p] "

// Reader reads the records of one log file or stream.
type Reader struct {
	r     io.Reader
	sp    *splitter
	a     assembler
	loc   *time.Location
	queue []Record
	buf   []byte
	n     int64 // bytes read
	err   error
}

// NewReader returns a Reader of format (FormatAuto means stderr) with the
// given log_line_prefix ("" with stderr: inferred from the first 64 KiB;
// an empty prefix, 9.x's default, is inferred as such).
// Zone abbreviations other than UTC and GMT are read in time.Local.
func NewReader(r io.Reader, format Format, logLinePrefix string) *Reader {
	rd := &Reader{r: r, loc: time.Local, buf: make([]byte, 64<<10)}
	var p *prefix
	if format == FormatAuto || format == FormatStderr {
		if logLinePrefix != "" {
			p = compilePrefix(logLinePrefix)
		} else {
			n, _ := io.ReadFull(r, rd.buf)
			p, _ = inferPrefix(rd.buf[:n])
			rd.r = io.MultiReader(bytes.NewReader(append([]byte(nil), rd.buf[:n]...)), r)
		}
	}
	rd.a = newAssembler(format, p, false, func(raw *rawRecord) { rd.queue = append(rd.queue, raw.record(rd.loc)) })
	rd.sp = newSplitter(rd.a, 0, 1)
	return rd
}

// Next returns the next record, or io.EOF after the last. A last line
// without a newline counts as complete at the end of the input.
func (rd *Reader) Next() (Record, error) {
	for len(rd.queue) == 0 {
		if rd.err != nil {
			return Record{}, rd.err
		}
		n, err := rd.r.Read(rd.buf)
		rd.sp.write(rd.buf[:n])
		rd.n += int64(n)
		if err != nil {
			if errors.Is(err, io.EOF) && len(rd.sp.buf) > 0 {
				rd.sp.write([]byte{'\n'})
			}
			rd.a.flush()
			rd.err = err
		}
	}
	rec := rd.queue[0]
	rd.queue = rd.queue[1:]
	rec.End = min(rec.End, rd.n) // a last line without newline ends with the input
	return rec, nil
}
