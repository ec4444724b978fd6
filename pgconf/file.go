package pgconf

import (
	"bytes"
	"errors"

	"github.com/pgstage/pgstage/internal/gucscan"
)

// maxSyntaxErrors is where the server gives up on a file.
const maxSyntaxErrors = 100

// line is one physical line of a file. Tokens never span lines in the
// server's grammar, so a file is parsed line by line. Names and values stay
// spans of raw until asked for: a large file parses without copying.
type line struct {
	raw       []byte // the bytes of the line, newline included
	kind      gucscan.LineKind
	quoted    bool  // the value is a quoted string
	errAtEOL  bool  // syntax error: the line ended where a token was needed
	errPrevNo bool  // error reported on the line before (end of file without newline)
	nameStart int32 // setting: the name
	nameEnd   int32
	valStart  int32 // setting: the value token; syntax error: the offending token
	valEnd    int32
}

func (l *line) content() []byte { return bytes.TrimSuffix(l.raw, []byte("\n")) }

func (l *line) nameBytes() []byte { return l.raw[l.nameStart:l.nameEnd] }

// name is the name as written.
func (l *line) name() string { return string(l.nameBytes()) }

// value is the value as the server sees it, quotes and escapes resolved.
func (l *line) value() string {
	v := l.raw[l.valStart:l.valEnd]
	if l.quoted {
		return gucscan.Unquote(v)
	}
	return string(v)
}

func (l *line) isNamed(name string) bool {
	return l.kind == gucscan.Setting && bytes.EqualFold(l.nameBytes(), []byte(name))
}

// parseLine runs the server's per-line grammar on raw.
func parseLine(raw []byte) line {
	l := line{raw: raw}
	s := l.content()
	g := gucscan.ParseLine(s)
	l.kind = g.Kind
	switch g.Kind {
	case gucscan.Setting:
		l.nameStart, l.nameEnd = int32(g.NameStart), int32(g.NameEnd)
		l.valStart, l.valEnd = int32(g.ValueStart), int32(g.ValueEnd)
		l.quoted = g.Quoted
	case gucscan.Invalid:
		l.errAtEOL = g.AtEOL
		l.errPrevNo = g.AtEOL && len(s) == len(raw) // no newline: end of file
		l.valStart, l.valEnd = int32(g.ErrStart), int32(g.ErrEnd)
	}
	return l
}

// File is one configuration file, kept byte for byte: Bytes gives back
// exactly what Parse was given until an edit changes a line.
type File struct {
	// Path names the file in errors and in [Setting.File].
	Path    string
	lines   []line
	changed bool
}

// Parse reads data with the grammar of the server's guc-file.l. The File is
// returned even when the error (all [SyntaxError]s, joined) is not nil, so
// that a file the server would reject can still be shown or repaired.
func Parse(name string, data []byte) (*File, error) {
	f := &File{Path: name}
	n := bytes.Count(data, []byte("\n")) + 1
	f.lines = make([]line, 0, n)
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			i = len(data) - 1
		}
		f.lines = append(f.lines, parseLine(data[:i+1:i+1]))
		data = data[i+1:]
	}
	return f, f.Err()
}

// Bytes returns the file's contents, edits included.
func (f *File) Bytes() []byte {
	n := 0
	for i := range f.lines {
		n += len(f.lines[i].raw)
	}
	b := make([]byte, 0, n)
	for i := range f.lines {
		b = append(b, f.lines[i].raw...)
	}
	return b
}

// Changed reports whether an edit changed the file since it was parsed or
// last saved.
func (f *File) Changed() bool { return f.changed }

// Err returns the file's syntax errors joined, at most as many as the server
// reports before abandoning a file, or nil.
func (f *File) Err() error {
	var errs []error
	for i := range f.lines {
		if e := f.syntaxError(i); e != nil {
			errs = append(errs, e)
			if len(errs) == maxSyntaxErrors {
				break
			}
		}
	}
	return errors.Join(errs...)
}

func (f *File) syntaxError(i int) *SyntaxError {
	l := &f.lines[i]
	if l.kind != gucscan.Invalid {
		return nil
	}
	e := &SyntaxError{File: f.Path, Line: i + 1, AtEOL: l.errAtEOL}
	if !l.errAtEOL {
		near := l.raw[l.valStart:l.valEnd]
		if k := bytes.IndexByte(near, 0); k >= 0 {
			near = near[:k] // the server prints the token as a C string
		}
		e.Near = string(near)
	}
	if l.errPrevNo {
		e.Line-- // the server counts the line only when it sees its newline
	}
	return e
}

// Settings lists the file's settings in order, include directives
// included, as the file alone says them (no include is followed).
func (f *File) Settings() []Setting {
	var out []Setting
	for i := range f.lines {
		if l := &f.lines[i]; l.kind == gucscan.Setting {
			out = append(out, Setting{Name: l.name(), Value: l.value(), File: f.Path, Line: i + 1})
		}
	}
	return out
}

// directive returns the include directive name is (in lower case), or "".
func directive(name []byte) string {
	for _, d := range []string{"include", "include_if_exists", "include_dir"} {
		if bytes.EqualFold(name, []byte(d)) {
			return d
		}
	}
	return ""
}
