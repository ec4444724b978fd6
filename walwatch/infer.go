package walwatch

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
)

// Inferring log_line_prefix from the lines themselves, when neither the
// Config nor a data directory says it. No list of known prefixes: every
// line that carries a severity ("LOG:  ", "FATAL:  ", ...) shows its
// prefix as the text before it; each prefix is cut into the shapes the
// server's escapes print (timestamps, epochs, numbers, session IDs,
// SQLSTATEs) and literal bytes, and the prefixes of all lines are aligned.
// What all lines share is kept; where they differ (a user name, an empty
// field of a process that is not a session) becomes free text. The result
// is a log_line_prefix compiled as any other, checked to start most of the
// lines it came from.

// severities are the English severity words a record line carries.
var severities = [][]byte{
	[]byte("LOG"), []byte("FATAL"), []byte("ERROR"), []byte("WARNING"), []byte("PANIC"),
	[]byte("NOTICE"), []byte("INFO"), []byte("DEBUG"), []byte("DEBUG1"), []byte("DEBUG2"),
	[]byte("DEBUG3"), []byte("DEBUG4"), []byte("DEBUG5"), []byte("DETAIL"), []byte("HINT"),
	[]byte("CONTEXT"), []byte("STATEMENT"), []byte("QUERY"), []byte("LOCATION"),
}

// maxPrefixLen bounds where a severity is looked for in a line, and
// maxShapes how many distinct prefix shapes are aligned: inference costs
// at most maxShapes alignments of maxPrefixLen squared steps.
const (
	maxPrefixLen = 256
	maxShapes    = 32
)

// severityAt returns where the first English "SEVERITY:  " of l starts,
// or -1.
func severityAt(l []byte) int {
	lim := min(len(l), maxPrefixLen)
	for i := 0; i < lim; i++ {
		if i > 0 && isAlnum(l[i-1]) || l[i] < 'A' || l[i] > 'Z' {
			continue
		}
		for _, s := range severities {
			if bytes.HasPrefix(l[i:], s) && bytes.HasPrefix(l[i+len(s):], []byte(":  ")) {
				return i
			}
		}
	}
	return -1
}

// itok is one piece of an observed prefix: a field shape (kind 'm' 't'
// 'n' 'c' 'e' '#'), free text ('*', only after alignment) or a literal
// byte (kind 0).
type itok struct {
	kind byte
	lit  byte
}

// tokenizePrefix cuts an observed prefix into field shapes and literal
// bytes.
func tokenizePrefix(b []byte) []itok {
	var out []itok
	for i := 0; i < len(b); {
		if w := timestampLen(b[i:], true); w > 0 {
			out, i = append(out, itok{kind: 'm'}), i+w
			continue
		}
		if w := timestampLen(b[i:], false); w > 0 {
			out, i = append(out, itok{kind: 't'}), i+w
			continue
		}
		if i == 0 || !isAlnum(b[i-1]) {
			if w := epochLen(b[i:]); w > 0 {
				out, i = append(out, itok{kind: 'n'}), i+w
				continue
			}
			if w := sessionIDLen(b[i:]); w > 0 {
				out, i = append(out, itok{kind: 'c'}), i+w
				continue
			}
			if w := sqlstateLen(b[i:]); w > 0 {
				out, i = append(out, itok{kind: 'e'}), i+w
				continue
			}
		}
		if isDigit(b[i]) {
			out, i = append(out, itok{kind: '#'}), i+runLen(b[i:], isDigit)
			continue
		}
		out, i = append(out, itok{lit: b[i]}), i+1
	}
	return out
}

// epochLen: %n, seconds since the epoch with milliseconds.
func epochLen(b []byte) int {
	n := runLen(b, isDigit)
	if n < 9 || n+4 > len(b) || b[n] != '.' || runLen(b[n+1:], isDigit) != 3 {
		return 0
	}
	return n + 4
}

// sessionIDLen: %c, the hex start time and hex PID joined by a dot.
func sessionIDLen(b []byte) int {
	n := runLen(b, isHex)
	if n < 8 || n >= len(b) || b[n] != '.' {
		return 0
	}
	m := runLen(b[n+1:], isHex)
	if m == 0 || n+1+m < len(b) && isAlnum(b[n+1+m]) {
		return 0
	}
	return n + 1 + m
}

// sqlstateLen: %e, five digits and capitals with at least one of each
// (all-digit codes read as numbers, which match them as well).
func sqlstateLen(b []byte) int {
	if len(b) < 5 || len(b) > 5 && isAlnum(b[5]) {
		return 0
	}
	letter, digit := false, false
	for _, c := range b[:5] {
		switch {
		case isDigit(c):
			digit = true
		case c >= 'A' && c <= 'Z':
			letter = true
		default:
			return 0
		}
	}
	if !letter || !digit {
		return 0
	}
	return 5
}

// weight ranks a match in the alignment: fields anchor more than bytes.
func (t itok) weight() int {
	if t.kind != 0 {
		return 8
	}
	return 1
}

func (t itok) same(u itok) bool { return t == u && t.kind != '*' }

// align merges two prefix shapes: the heaviest common subsequence is kept
// and every stretch where they differ becomes free text.
func align(a, b []itok) []itok {
	n, m := len(a), len(b)
	score := make([][]int, n+1)
	for i := range score {
		score[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			best := max(score[i+1][j], score[i][j+1])
			if a[i].same(b[j]) {
				best = max(best, score[i+1][j+1]+a[i].weight())
			}
			score[i][j] = best
		}
	}
	var out []itok
	free := func() {
		if len(out) == 0 || out[len(out)-1].kind != '*' {
			out = append(out, itok{kind: '*'})
		}
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i].same(b[j]) && score[i][j] == score[i+1][j+1]+a[i].weight():
			out = append(out, a[i])
			i, j = i+1, j+1
		case i < n && (j == m || score[i][j] == score[i+1][j]):
			free()
			i++
		default:
			free()
			j++
		}
	}
	return out
}

// absorb widens free text over the letters and digits next to it: values
// are words, so a letter two values happen to share is no literal.
func absorb(ts []itok) []itok {
	for changed := true; changed; {
		changed = false
		for i := range ts {
			if ts[i].kind != 0 || !isAlnum(ts[i].lit) {
				continue
			}
			if i > 0 && ts[i-1].kind == '*' || i+1 < len(ts) && ts[i+1].kind == '*' {
				ts[i] = itok{kind: '*'}
				changed = true
			}
		}
	}
	out := ts[:0]
	for _, t := range ts {
		if t.kind == '*' && len(out) > 0 && out[len(out)-1].kind == '*' {
			continue
		}
		out = append(out, t)
	}
	return out
}

// inferPrefix infers log_line_prefix from sample (whole lines); ok is
// false when the sample has no line with a severity, or the inferred
// prefix starts too few of them.
func inferPrefix(sample []byte) (*prefix, bool) {
	var prefixes [][]byte
	empty := 0
	for rest := sample; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			break // a partial last line
		}
		if len(line) == 0 || line[0] == '\t' || line[0] == ' ' {
			continue
		}
		at := severityAt(line)
		if at < 0 {
			continue
		}
		if at == 0 {
			empty++
		}
		prefixes = append(prefixes, line[:at])
	}
	if len(prefixes) == 0 {
		return nil, false
	}
	if empty*2 >= len(prefixes) {
		// Most lines start with their severity: the empty prefix (9.x's
		// default); the others are relayed text seen as records anyway.
		return compilePrefix(""), true
	}
	// Unprefixed lines (text relayed from libpq) say nothing of the
	// prefix; lines that begin otherwise than most do are left out too.
	first := map[itok]int{}
	shapes := map[string][]itok{}
	for _, p := range prefixes {
		if len(p) == 0 {
			continue
		}
		ts := tokenizePrefix(p)
		first[ts[0]]++
		if len(shapes) < maxShapes {
			shapes[shapeKey(ts)] = ts
		}
	}
	var lead itok
	for t, n := range first {
		if n > first[lead] {
			lead = t
		}
	}
	var merged []itok
	for _, ts := range sortedShapes(shapes) {
		if ts[0] != lead {
			continue
		}
		if merged == nil {
			merged = ts
			continue
		}
		merged = align(merged, ts)
	}
	merged = absorb(merged)
	p := bestPID(merged, prefixes)
	return p, p != nil
}

func shapeKey(ts []itok) string {
	var b strings.Builder
	for _, t := range ts {
		b.WriteByte(t.kind)
		b.WriteByte(t.lit)
	}
	return b.String()
}

// sortedShapes orders the shapes so that the result does not depend on
// map order.
func sortedShapes(m map[string][]itok) [][]itok {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([][]itok, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

// prefixString writes an aligned shape as log_line_prefix, the number
// field pid as %p and the others as %l (a number, kept nowhere).
func prefixString(ts []itok, pid int) string {
	var b strings.Builder
	num := 0
	for _, t := range ts {
		switch t.kind {
		case 0:
			if t.lit == '%' {
				b.WriteByte('%')
			}
			b.WriteByte(t.lit)
		case '*':
			b.WriteString("%a")
		case '#':
			if num == pid {
				b.WriteString("%p")
			} else {
				b.WriteString("%l")
			}
			num++
		default:
			b.WriteByte('%')
			b.WriteByte(t.kind)
		}
	}
	return b.String()
}

// bestPID picks which number is the PID (the one with the largest values:
// %l counts lines from 1), and checks that the prefix starts at least
// half the lines it was inferred from; nil if it does not.
func bestPID(ts []itok, prefixes [][]byte) *prefix {
	nums := 0
	for _, t := range ts {
		if t.kind == '#' {
			nums++
		}
	}
	var best *prefix
	bestMatched, bestMax := 0, int64(-1)
	var f prefixFields
	for pid := 0; pid < max(nums, 1); pid++ {
		p := compilePrefix(prefixString(ts, pid))
		matched, top := 0, int64(-1)
		for _, pre := range prefixes {
			line := append(append([]byte{}, pre...), "LOG:  x"...)
			if _, ok := p.match(line, &f); ok {
				matched++
				if v, err := strconv.ParseInt(string(f.pid), 10, 64); err == nil && v > top {
					top = v
				}
			}
		}
		if matched > bestMatched || matched == bestMatched && top > bestMax {
			best, bestMatched, bestMax = p, matched, top
		}
	}
	if bestMatched*2 < len(prefixes) {
		return nil
	}
	return best
}
