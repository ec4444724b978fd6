package walwatch

import (
	"bytes"
	"encoding/json"
	"os"
	"time"
)

// Telling the format of a log directory by what its files hold, when
// neither the Config nor the data directory says it. Names and times alone
// mislead: a csvlog or jsonlog directory also holds the logging
// collector's small .log files (stray stderr), and a copy gives every
// file the same modification time.

// sniffLen is how much of a file is looked at to tell its format.
const sniffLen = 4 << 10

// structuredGrace: structured files count unless plain ones were written
// this much later (the server was switched to stderr since).
const structuredGrace = time.Hour

// formatByContent looks at the first bytes of every file that could be a
// log: any jsonlog file makes the directory jsonlog, else any csvlog file
// csvlog, unless stderr files were written well after them.
func (w *Watcher) formatByContent() Format {
	cands, _ := w.listMatching(maybeLog)
	var newest = map[Format]time.Time{}
	for _, c := range cands {
		if c.size == 0 {
			continue
		}
		b, err := readHead(c.path, sniffLen)
		if err != nil {
			continue
		}
		f := sniffFormat(b)
		if c.mtime.After(newest[f]) {
			newest[f] = c.mtime
		}
	}
	for _, f := range []Format{FormatJSON, FormatCSV} {
		if t, ok := newest[f]; ok && !newest[FormatStderr].After(t.Add(structuredGrace)) {
			return f
		}
	}
	return FormatStderr
}

// sniffFormat tells the format of a file by its first complete line.
func sniffFormat(b []byte) Format {
	line := b
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		line = b[:i]
	}
	switch {
	case len(line) > 0 && line[0] == '{' && json.Valid(line) && bytes.Contains(line, []byte(`"timestamp":`)):
		return FormatJSON
	case csvStart(line):
		return FormatCSV
	}
	return FormatStderr
}

// csvStart: a csvlog row begins with the time with milliseconds and a comma.
func csvStart(line []byte) bool {
	n := timestampLen(line, true)
	return n > 0 && n < len(line) && line[n] == ','
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}
