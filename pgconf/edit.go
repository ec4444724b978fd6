package pgconf

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/pgstage/pgstage/internal/gucscan"
)

const (
	// CommentMark starts a line that Comment commented out; Uncomment
	// removes exactly this prefix.
	CommentMark = "#pgconf:off# "
	// BlockBegin and BlockEnd enclose the settings Set appends to the main
	// file when it has no line for them.
	BlockBegin = "# BEGIN settings added by pgconf"
	BlockEnd   = "# END settings added by pgconf"
)

// Quote returns value as a quoted string of the configuration file
// grammar: ' doubled, \ doubled, control characters as backslash escapes.
// (Not SQL E-string quoting.) The file grammar cannot carry a zero byte.
func Quote(value string) string {
	var b strings.Builder
	b.Grow(len(value) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if c < 0x20 || c == 0x7f {
				b.WriteByte('\\')
				b.WriteByte('0' + c>>6)
				b.WriteByte('0' + c>>3&7)
				b.WriteByte('0' + c&7)
				continue
			}
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// formatValue writes value unquoted when it reads back as one bare token
// of the same text (on, 128MB, 0.5, replica), else quoted.
func formatValue(value string, forceQuote bool) string {
	if !forceQuote && value != "" {
		t := gucscan.Scan([]byte(value), 0)
		if t.Start == 0 && t.End == len(value) {
			switch t.Kind {
			case gucscan.ID, gucscan.Integer, gucscan.Real:
				return value
			}
		}
	}
	return Quote(value)
}

func checkName(name string) error {
	t := gucscan.Scan([]byte(name), 0)
	if t.Start != 0 || t.End != len(name) || (t.Kind != gucscan.ID && t.Kind != gucscan.QualifiedID) {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	if directive([]byte(name)) != "" {
		return fmt.Errorf("%w: %q is an include directive", ErrInvalidName, name)
	}
	return nil
}

func checkValue(value string) error {
	if strings.IndexByte(value, 0) >= 0 {
		return fmt.Errorf("%w: %q holds a zero byte", ErrInvalidValue, value)
	}
	return nil
}

// setLine rewrites the value of line i in place, keeping the spacing and
// the trailing comment around it.
func (f *File) setLine(i int, value string) error {
	l := &f.lines[i]
	content := l.content()
	nl := l.raw[len(content):]
	v := formatValue(value, l.quoted)
	for _, cand := range []string{v, " " + v, " " + Quote(value)} {
		raw := make([]byte, 0, len(l.raw)+len(cand))
		raw = append(raw, content[:l.valStart]...)
		raw = append(raw, cand...)
		raw = append(raw, content[l.valEnd:]...)
		raw = append(raw, nl...)
		nl := parseLine(raw)
		if nl.kind == gucscan.Setting && bytes.Equal(nl.nameBytes(), l.nameBytes()) && nl.value() == value {
			f.lines[i] = nl
			f.changed = true
			return nil
		}
	}
	return fmt.Errorf("pgconf: cannot write %s = %q on line %d of %s", l.name(), value, i+1, f.Path)
}

// replaceLine puts raw in place of line i.
func (f *File) replaceLine(i int, raw []byte) {
	f.lines[i] = parseLine(raw)
	f.changed = true
}

// insertLines puts raws before line i.
func (f *File) insertLines(i int, raws ...[]byte) {
	nls := make([]line, len(raws))
	for k, r := range raws {
		nls[k] = parseLine(r)
	}
	f.lines = append(f.lines[:i], append(nls, f.lines[i:]...)...)
	f.changed = true
}

// commentedSetting returns, for a line that is a comment whose text after
// '#' is a setting (the templates of postgresql.conf.sample), the line
// without its comment sign.
func commentedSetting(raw []byte) (line, bool) {
	s := bytes.TrimLeft(raw, " \t")
	if len(s) < 2 || s[0] != '#' {
		return line{}, false
	}
	indent := raw[:len(raw)-len(s)]
	rest := s[1:]
	if rest[0] == '#' {
		return line{}, false
	}
	r := make([]byte, 0, len(indent)+len(rest))
	r = append(append(r, indent...), rest...)
	l := parseLine(r)
	return l, l.kind == gucscan.Setting
}

// Set makes name = value the setting in effect, and reports whether a file
// changed. value is raw: Set quotes it when the grammar needs it.
//
// The line in effect is edited in place; if it lives outside the main
// file, Overrides decides. If no file sets name, a commented line for it in
// the main file (such as "#port = 5432" of the sample file) is replaced;
// else the setting is appended to a marked block at the end of the main
// file.
func (c *Config) Set(name, value string) (bool, error) {
	if err := checkName(name); err != nil {
		return false, err
	}
	if err := checkValue(value); err != nil {
		return false, err
	}
	if i := c.effective(name); i >= 0 {
		e := &c.entries[i]
		if e.file.lines[e.line].value() == value {
			return false, nil
		}
		if e.file != c.main && c.Overrides == RefuseOverridden {
			return false, &OverriddenError{Name: name, File: e.path, Line: e.line + 1}
		}
		// The line keeps its name and kind: the server's reading keeps its
		// shape, so there is nothing to recompute.
		if err := e.file.setLine(e.line, value); err != nil {
			return false, err
		}
		return true, nil
	}
	// A line Comment marked is where the setting was in effect: the last
	// one in the order the server reads the files is restored.
	if f, i := c.lastMarked(name); f != nil {
		f.replaceLine(i, f.lines[i].raw[len(CommentMark):])
		c.stale = true
		return true, f.setLine(i, value)
	}
	f := c.main
	for i := range f.lines {
		if f.lines[i].kind != gucscan.Blank {
			continue
		}
		if l, ok := commentedSetting(f.lines[i].raw); ok && l.isNamed(name) {
			f.lines[i] = l
			f.changed = true
			c.stale = true
			return true, f.setLine(i, value)
		}
	}
	eol := "\n"
	if len(f.lines) > 0 && bytes.HasSuffix(f.lines[0].raw, []byte("\r\n")) {
		eol = "\r\n" // keep a CRLF file CRLF
	}
	newLine := []byte(name + " = " + formatValue(value, false) + eol)
	end := -1
	for i := len(f.lines) - 1; i >= 0; i-- {
		if string(bytes.TrimRight(f.lines[i].raw, "\r\n")) == BlockEnd {
			end = i
			break
		}
	}
	if end >= 0 {
		f.insertLines(end, newLine)
	} else {
		if n := len(f.lines); n > 0 && !bytes.HasSuffix(f.lines[n-1].raw, []byte("\n")) {
			f.replaceLine(n-1, append(append([]byte{}, f.lines[n-1].raw...), eol...))
		}
		f.insertLines(len(f.lines), []byte(BlockBegin+eol), newLine, []byte(BlockEnd+eol))
	}
	c.stale = true
	return true, nil
}

// Comment comments out every line that sets name in every file the server
// reads, marking each with [CommentMark] so that Uncomment can restore it
// exactly, and reports whether anything changed. The server then falls
// back to the parameter's default.
func (c *Config) Comment(name string) (bool, error) {
	if err := checkName(name); err != nil {
		return false, err
	}
	c.ensure()
	changed := false
	for _, e := range c.entries {
		if !e.isSetting() {
			continue
		}
		l := &e.file.lines[e.line]
		if !l.isNamed(name) { // or already commented: a file read twice
			continue
		}
		e.file.replaceLine(e.line, append([]byte(CommentMark), l.raw...))
		changed = true
	}
	if changed {
		c.stale = true
	}
	return changed, nil
}

// lastMarked finds the line marked by Comment for name that comes last in
// the order the server reads the files (only in the main file under
// RefuseOverridden).
func (c *Config) lastMarked(name string) (*File, int) {
	c.ensure()
	for k := len(c.visits) - 1; k >= 0; k-- {
		f := c.visits[k]
		if f != c.main && c.Overrides == RefuseOverridden {
			continue
		}
		for i := len(f.lines) - 1; i >= 0; i-- {
			raw := f.lines[i].raw
			if f.lines[i].kind == gucscan.Blank && bytes.HasPrefix(raw, []byte(CommentMark)) {
				if l := parseLine(raw[len(CommentMark):]); l.isNamed(name) {
					return f, i
				}
			}
		}
	}
	return nil, -1
}

// Uncomment restores the lines for name that Comment marked, in every file
// read, and reports whether anything changed.
func (c *Config) Uncomment(name string) (bool, error) {
	if err := checkName(name); err != nil {
		return false, err
	}
	changed := false
	for _, f := range c.files {
		for i := range f.lines {
			raw := f.lines[i].raw
			if !bytes.HasPrefix(raw, []byte(CommentMark)) {
				continue
			}
			if l := parseLine(raw[len(CommentMark):]); l.isNamed(name) {
				f.replaceLine(i, raw[len(CommentMark):])
				changed = true
			}
		}
	}
	if changed {
		c.stale = true
	}
	return changed, nil
}
