package walwatch

import (
	"bytes"
	"strings"
)

// prefix is a compiled log_line_prefix, used to tell where a stderr record
// starts and to pick the time, pid, SQLSTATE and backend type out of it.
type prefix struct {
	src    string
	toks   []ptoken
	budget int // match steps left for the line being matched
}

// matchBudget bounds the backtracking over free-text fields, so that an odd
// prefix cannot make a line cost more than this many steps.
const matchBudget = 4096

type ptoken struct {
	lit string // literal text when esc == 0
	esc byte   // escape letter of a field
	pad bool   // a padded field (%-10u, %10p): may carry extra spaces
	q   bool   // %q: non-session processes stop the prefix here
}

// prefixFields are the parts of a matched prefix the reader keeps.
type prefixFields struct {
	ts, epoch, pid, sqlstate, btype []byte
	msec                            bool // ts is %m (with milliseconds)
}

// compilePrefix parses a log_line_prefix value (without the conf file's
// quoting), following log_line_prefix's escapes in elog.c.
func compilePrefix(s string) *prefix {
	p := &prefix{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			p.toks = append(p.toks, ptoken{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' || i+1 >= len(s) {
			lit.WriteByte(c)
			continue
		}
		i++
		pad := false
		if s[i] == '-' {
			pad = true
			i++
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			pad = true
			i++
		}
		if i >= len(s) {
			break
		}
		switch e := s[i]; e {
		case '%':
			lit.WriteByte('%')
		case 'q':
			flush()
			p.toks = append(p.toks, ptoken{q: true})
		case 'a', 'u', 'd', 'r', 'h', 'b', 'p', 'P', 't', 'm', 'n', 'i', 'e', 'c', 'l', 's', 'v', 'x', 'Q', 'L':
			flush()
			p.toks = append(p.toks, ptoken{esc: e, pad: pad})
		default:
			// PostgreSQL prints nothing for an unknown escape.
		}
	}
	flush()
	return p
}

// match reports whether line starts with the prefix followed by a severity
// ("WORD:  "), filling f; n is the length of the prefix.
func (p *prefix) match(line []byte, f *prefixFields) (n int, ok bool) {
	*f = prefixFields{}
	p.budget = matchBudget
	return p.matchFrom(0, line, 0, f)
}

func (p *prefix) matchFrom(ti int, line []byte, pos int, f *prefixFields) (int, bool) {
	if p.budget--; p.budget < 0 {
		return 0, false
	}
	for ; ti < len(p.toks); ti++ {
		t := p.toks[ti]
		switch {
		case t.q:
			// Processes that are not sessions stop here, sessions print the
			// rest. The first reading wins: free text after %q could
			// otherwise stretch to a severity inside the message
			// ("... WAL stream: FATAL:  terminating ...").
			if severityLen(line[pos:]) > 0 {
				return pos, true
			}
			return p.matchFrom(ti+1, line, pos, f)
		case t.esc == 0:
			if !bytes.HasPrefix(line[pos:], []byte(t.lit)) {
				return 0, false
			}
			pos += len(t.lit)
		default:
			n, ok := p.field(ti, line, pos, f)
			if !ok {
				return 0, false
			}
			return n, true
		}
	}
	return pos, severityLen(line[pos:]) > 0
}

// field matches token ti (a field) at pos and then the rest of the prefix.
func (p *prefix) field(ti int, line []byte, pos int, f *prefixFields) (int, bool) {
	t := p.toks[ti]
	if t.pad && strings.IndexByte("mtsnpPlxecv", t.esc) >= 0 {
		// %10p pads on the left, %-10p on the right: spaces either side of
		// a field of fixed shape (free text takes its spaces itself).
		pos += runLen(line[pos:], func(c byte) bool { return c == ' ' })
	}
	rest := line[pos:]
	w := -1 // width of a fixed-shape field
	switch t.esc {
	case 'm', 't', 's':
		w = timestampLen(rest, t.esc == 'm')
		if w < 0 {
			return 0, false
		}
		if t.esc != 's' {
			f.ts, f.msec = rest[:w], t.esc == 'm'
		}
	case 'n':
		w = runLen(rest, func(c byte) bool { return c >= '0' && c <= '9' || c == '.' })
		f.epoch = rest[:w]
	case 'p', 'P', 'l', 'x':
		w = runLen(rest, isDigit)
		if t.esc == 'p' {
			if w == 0 && !t.pad {
				return 0, false
			}
			f.pid = rest[:w]
		}
	case 'e':
		if len(rest) < 5 || runLen(rest[:5], isAlnum) != 5 {
			return 0, false
		}
		w = 5
		f.sqlstate = rest[:5]
	case 'c':
		w = runLen(rest, func(c byte) bool { return isHex(c) || c == '.' })
	case 'v':
		w = runLen(rest, func(c byte) bool { return isDigit(c) || c == '/' || c == '-' })
	}
	if w >= 0 {
		if t.pad {
			w += runLen(rest[w:], func(c byte) bool { return c == ' ' })
		}
		return p.matchFrom(ti+1, line, pos+w, f)
	}
	// Free text (%a %u %d %r %h %b %i %Q %L): try each end that lets the rest match.
	next := ""
	if ti+1 < len(p.toks) && p.toks[ti+1].esc == 0 && !p.toks[ti+1].q {
		next = p.toks[ti+1].lit
	}
	limit := len(rest)
	if limit > 512 {
		limit = 512
	}
	for end := 0; end <= limit; end++ {
		if next != "" {
			i := bytes.Index(rest[end:limit], []byte(next))
			if i < 0 {
				break
			}
			end += i
		}
		if n, ok := p.matchFrom(ti+1, line, pos+end, f); ok {
			if t.esc == 'b' {
				f.btype = bytes.TrimRight(rest[:end], " ")
			}
			return n, true
		}
	}
	return 0, false
}

// timestampLen returns the length of "2006-01-02 15:04:05[.000] ZONE" at the
// start of b, or -1.
func timestampLen(b []byte, msec bool) int {
	const base = len("2006-01-02 15:04:05")
	n := base
	if msec {
		n += 4
	}
	if len(b) < n+2 {
		return -1
	}
	for i := 0; i < base; i++ {
		c := b[i]
		switch i {
		case 4, 7:
			if c != '-' {
				return -1
			}
		case 10:
			if c != ' ' {
				return -1
			}
		case 13, 16:
			if c != ':' {
				return -1
			}
		default:
			if !isDigit(c) {
				return -1
			}
		}
	}
	if msec && (b[base] != '.' || !isDigit(b[base+1]) || !isDigit(b[base+2]) || !isDigit(b[base+3])) {
		return -1
	}
	if b[n] != ' ' {
		return -1
	}
	// %Z of pg_strftime: an abbreviation (UTC, CEST) or a numeric offset
	// (+03, -0330). Nothing else, so that a prefix may go on right after it
	// ('%t:%r', '[%m]').
	z := runLen(b[n+1:], func(c byte) bool { return isAlnum(c) || c == '+' || c == '-' })
	if z == 0 || z > 32 {
		return -1
	}
	return n + 1 + z
}

// severityLen returns the length of "SEVERITY:  " at the start of b, or 0.
// Severities may be translated, so any short word qualifies.
func severityLen(b []byte) int {
	limit := min(len(b), 40)
	for i := 0; i < limit; i++ {
		switch b[i] {
		case ':':
			if i > 0 && i+2 < len(b) && b[i+1] == ' ' && b[i+2] == ' ' {
				return i + 3
			}
			return 0
		case ' ', '\t', '"', '(', '[', '=':
			return 0
		}
	}
	return 0
}

func runLen(b []byte, ok func(byte) bool) int {
	for i, c := range b {
		if !ok(c) {
			return i
		}
	}
	return len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
func isAlnum(c byte) bool { return isDigit(c) || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
