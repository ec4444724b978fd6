package gucscan

// LineKind is what a line of a configuration file holds.
type LineKind uint8

// Line kinds.
const (
	Blank   LineKind = iota // empty, white space or comment only
	Setting                 // name [=] value (include directives too)
	Invalid                 // a syntax error
)

// Line is the server's reading of one line: spans of the line given to
// ParseLine, so that a caller keeps its bytes and copies nothing.
type Line struct {
	Kind LineKind
	// Name and Value are the spans [Start, End) of a Setting's name and
	// value token; Quoted says the value is a String (see Unquote).
	NameStart, NameEnd   int
	ValueStart, ValueEnd int
	Quoted               bool
	// For Invalid: AtEOL says the line ended where a token was needed;
	// else ErrStart and ErrEnd span the offending token.
	AtEOL            bool
	ErrStart, ErrEnd int
}

// ParseLine reads s, one line without its newline, as guc-file.l's
// per-line rule does. Tokens never span lines, so a file is read line by
// line.
func ParseLine(s []byte) Line {
	var l Line
	fail := func(t Token) Line {
		l.Kind = Invalid
		if t.Kind == End {
			l.AtEOL = true
		} else {
			l.ErrStart, l.ErrEnd = t.Start, t.End
		}
		return l
	}
	t := Scan(s, 0)
	if t.Kind == End {
		return l
	}
	if t.Kind != ID && t.Kind != QualifiedID {
		return fail(t)
	}
	l.NameStart, l.NameEnd = t.Start, t.End
	t = Scan(s, t.End)
	if t.Kind == Equals {
		t = Scan(s, t.End)
	}
	switch t.Kind {
	case ID, String, Integer, Real, Unquoted:
	default:
		return fail(t)
	}
	v := t
	if t = Scan(s, v.End); t.Kind != End {
		return fail(t)
	}
	l.Kind = Setting
	l.ValueStart, l.ValueEnd = v.Start, v.End
	l.Quoted = v.Kind == String
	return l
}

// Value returns the value of a Setting line of s as the server sees it,
// quotes and escapes resolved.
func (l Line) Value(s []byte) string {
	v := s[l.ValueStart:l.ValueEnd]
	if l.Quoted {
		return Unquote(v)
	}
	return string(v)
}
