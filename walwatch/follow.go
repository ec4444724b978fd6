package walwatch

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// fileID is a file's identity: a rotated, re-created or renamed file is
// told apart from the one that had its name.
type fileID struct{ dev, ino uint64 }

func identity(fi fs.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}
	}
	return fileID{}
}

// tracked is a log file being followed.
type tracked struct {
	id        fileID
	path      string
	f         *os.File // open while the file may still grow
	sp        *splitter
	asm       assembler
	size      int64
	mtime     time.Time
	head      []byte // the file's first bytes, to spot a truncate-and-refill
	tail      []byte // the last bytes read (up to tailLen), ending at sp.next
	lineKnown bool   // line numbers counted (false for files skipped at start)
	// grew orders files by their last growth (Watcher.growth when it grew).
	grew uint64
	// detached: no entry of the directory that matches names the file any
	// more (moved away or deleted), but the server may still write it
	// through a descriptor it holds (pg_ctl -l): followed through ours
	// until another file grows after it.
	detached bool
	// copyOf is the file this one is a copy of (copytruncate's copy): it is
	// read only once the original is truncated, from where the original
	// was read up to, so that no record is read twice.
	copyOf *tracked
	// fresh: appeared while watching, not yet told apart from a copy.
	fresh bool
	// copied is the size of a copy when last checked against its original.
	copied int64
	// probing: read from its start and no record parsed yet; parsed counts
	// the records that did (see probe).
	probing bool
	parsed  int
}

// candidate is a directory entry that matches the watched format.
type candidate struct {
	path  string
	id    fileID
	size  int64
	mtime time.Time
}

const headLen = 256

// tailLen is how much of what was read last is kept to recognise a file
// (more than a line, so that it holds a timestamp).
const tailLen = 512

// serverFiles live in a data directory and are never logs.
var serverFiles = map[string]bool{
	"current_logfiles": true, "postmaster.pid": true, "postmaster.opts": true, "PG_VERSION": true,
	"postgresql.conf": true, "postgresql.auto.conf": true, "pg_hba.conf": true, "pg_ident.conf": true,
	"backup_label": true, "tablespace_map": true, "standby.signal": true, "recovery.signal": true,
	"recovery.conf": true, "backup_manifest": true,
}

func (w *Watcher) matches(name string) bool {
	if w.cfg.Pattern != "" {
		ok, _ := filepath.Match(w.cfg.Pattern, name)
		return ok
	}
	switch w.format {
	case FormatCSV:
		return strings.HasSuffix(name, ".csv")
	case FormatJSON:
		return strings.HasSuffix(name, ".json")
	}
	return maybeLog(name) && !strings.HasSuffix(name, ".csv") && !strings.HasSuffix(name, ".json")
}

// notLogs end the names of files that are no logs to follow (compressed
// rotations, editors' files).
var notLogs = []string{".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip", ".tmp", ".swp"}

// maybeLog reports whether a file of this name may be a log.
func maybeLog(name string) bool {
	if strings.HasPrefix(name, ".") || serverFiles[name] {
		return false
	}
	for _, ext := range notLogs {
		if strings.HasSuffix(name, ext) {
			return false
		}
	}
	return true
}

// list returns the matching regular files, oldest first (by modification
// time, then name: PostgreSQL never writes an old file again, so reading in
// this order reads an old file to its end before the next).
func (w *Watcher) list() ([]candidate, error) { return w.listMatching(w.matches) }

// listMatching is list for the names match accepts.
func (w *Watcher) listMatching(match func(string) bool) ([]candidate, error) {
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		return nil, err
	}
	var out []candidate
	for _, e := range ents {
		if !e.Type().IsRegular() || !match(e.Name()) {
			continue
		}
		p := filepath.Join(w.dir, e.Name())
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		out = append(out, candidate{path: p, id: identity(fi), size: fi.Size(), mtime: fi.ModTime()})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].mtime.Equal(out[j].mtime) {
			return out[i].mtime.Before(out[j].mtime)
		}
		return out[i].path < out[j].path
	})
	return out, nil
}

// track starts following c from offset (0: from the start).
func (w *Watcher) track(c candidate, offset int64, line int, lineKnown bool) *tracked {
	t := &tracked{id: c.id, path: c.path, size: offset, mtime: c.mtime, lineKnown: lineKnown}
	t.reset(w, offset, line)
	if offset > 0 {
		// Fingerprinted from the start, for truncations and copies.
		t.head, _ = readHead(c.path, int(min(offset, headLen)))
	}
	w.files[c.id] = t
	w.byPath[c.path] = c.id
	return t
}

func (t *tracked) reset(w *Watcher, offset int64, line int) {
	t.asm = newAssembler(w.format, w.prefix, true, func(r *rawRecord) { w.record(t, r) })
	t.sp = newSplitter(t.asm, offset, line)
	t.probing, t.parsed = offset == 0, 0
	t.tail = t.tail[:0] // ends at the old offset
	if offset == 0 {
		t.head = nil
		t.lineKnown = true
		t.setFast(false) // every record counted while probing
	}
}

// setFast turns the stderr fast path on (if the prefix allows) or off.
func (t *tracked) setFast(on bool) {
	if a, ok := t.asm.(*stderrAsm); ok {
		a.fast = on && fastPrefix(a.p)
	}
}

// Probing a file read from its start: if no record parses in its first
// probeBytes or probeLines (probeLinesAtEnd at the end of a replay), the
// format or prefix in use is wrong for it and the watcher would be blind.
const (
	probeBytes      = 64 << 10
	probeLines      = 16
	probeLinesAtEnd = 4
)

// probe reports a file whose records cannot be read (ErrUnreadable).
func (w *Watcher) probe(t *tracked, atEnd bool) {
	if !t.probing {
		return
	}
	off, next := t.sp.boundary()
	lines := next - 1
	switch {
	case t.parsed > 0:
	case off >= probeBytes || lines >= probeLines || atEnd && lines >= probeLinesAtEnd:
		err := &unreadableError{file: t.path, format: w.format, bytes: off}
		if w.prefix != nil {
			err.prefix, err.given = w.prefix.src, !w.inferPending && !w.inferred
		}
		w.fail(err)
	default:
		return
	}
	t.probing = false
	t.setFast(true)
}

// scan lists the directory and reads every file that changed.
func (w *Watcher) scan() {
	cands, err := w.list()
	if err != nil {
		w.fail(&fileError{file: w.dir, op: "list", err: err})
		return
	}
	// New files first, before any known file is read: a copy is told
	// apart while its original still has the bytes it was copied from.
	for _, c := range cands {
		t := w.files[c.id]
		if t != nil && t.path != c.path && t.f == nil && !w.sameContent(t, c.path) {
			// The inode of a deleted file, reused by a new one (an open
			// descriptor would have kept it from reuse).
			w.drop(t)
			t = nil
		}
		if t == nil {
			t = w.track(c, 0, 1, true)
			t.fresh = true
		}
		if t.fresh {
			t.fresh = !w.spotCopy(t)
		}
	}
	seen := make(map[fileID]bool, len(cands))
	for _, c := range cands {
		seen[c.id] = true
		t := w.files[c.id]
		if t.path != c.path || t.detached {
			if w.byPath[t.path] == t.id {
				delete(w.byPath, t.path)
			}
			t.path, t.detached = c.path, false
		}
		w.byPath[c.path] = c.id
		w.follow(t, c.size, c.mtime)
	}
	for id, t := range w.files {
		if !seen[id] {
			w.followDetached(t)
		}
	}
	w.closeIdle(cands)
}

// follow reads t if its size or time changed since the last read.
func (w *Watcher) follow(t *tracked, size int64, mtime time.Time) {
	if t.fresh {
		if !w.spotCopy(t) {
			return
		}
		t.fresh = false
	}
	if t.copyOf != nil && size > t.copied && !w.sameAsOriginal(t, t.copyOf) {
		// Grew with bytes the original does not hold: no copy after all.
		t.copyOf = nil
	}
	if t.copyOf != nil {
		if w.files[t.copyOf.id] == t.copyOf {
			t.mtime = mtime // the original still holds all the copy does
			return
		}
		// The original is gone, read to its end: a copy no longer than
		// what was read of it has nothing new; a longer file is no copy.
		orig := t.copyOf
		t.copyOf = nil
		if size <= orig.sp.next {
			t.reset(w, size, 1)
			t.lineKnown = false
			return
		}
	}
	off, _ := t.sp.boundary()
	if size == t.size && mtime.Equal(t.mtime) && t.sp.next >= size {
		return
	}
	t.mtime = mtime
	if size < t.sp.next {
		w.truncated(t)
	} else if len(t.head) > 0 && off > 0 && !w.sameHead(t) {
		// Truncated and written past the old offset between two looks.
		w.truncated(t)
	}
	w.read(t)
}

func (w *Watcher) sameHead(t *tracked) bool {
	if err := w.open(t); err != nil {
		return true
	}
	b := make([]byte, len(t.head))
	n, _ := t.f.ReadAt(b, 0)
	return bytes.Equal(b[:n], t.head)
}

func (w *Watcher) open(t *tracked) error {
	if t.f != nil {
		return nil
	}
	f, err := os.Open(t.path)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil || identity(fi) != t.id {
		f.Close()
		return errors.New("file replaced")
	}
	t.f = f
	return nil
}

// read reads t from where it stopped to its end.
func (w *Watcher) read(t *tracked) {
	if err := w.open(t); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			w.fail(&fileError{file: t.path, op: "open", err: err})
		}
		return
	}
	if !t.lineKnown {
		w.countLines(t)
	}
	if w.inferPending && w.format == FormatStderr {
		w.inferLate(t.path)
	}
	for {
		n, err := t.f.ReadAt(w.buf, t.sp.next)
		if n > 0 {
			if len(t.head) < headLen && int64(len(t.head)) == t.sp.next {
				t.head = append(t.head, w.buf[:min(n, headLen-len(t.head))]...)
			}
			t.sp.write(w.buf[:n])
			t.tail = append(t.tail[:0], w.buf[max(0, n-tailLen):n]...)
			w.probe(t, false) // per chunk: the fast path comes back once a record parsed
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				w.fail(&fileError{file: t.path, op: "read", err: err})
			}
			break
		}
	}
	if t.sp.next > t.size {
		w.growth++
		t.grew = w.growth
	}
	t.size = t.sp.next
	// PostgreSQL writes a record in one write: at the end of what is there,
	// the record held open for continuation lines is complete.
	t.asm.flush()
	w.probe(t, false)
	off, line := t.sp.boundary()
	w.last = lastRecord{t: t, end: off, line: line}
	w.publish()
}

// countLines counts the lines before the offset of a file that was skipped
// at start and has grown since, so that its events carry line numbers.
func (w *Watcher) countLines(t *tracked) {
	end, _ := t.sp.boundary()
	line := 1
	for off := int64(0); off < end; {
		n, err := t.f.ReadAt(w.buf[:min(int64(len(w.buf)), end-off)], off)
		line += bytes.Count(w.buf[:n], []byte{'\n'})
		off += int64(n)
		if err != nil {
			break
		}
	}
	t.sp.line = line
	t.lineKnown = true
}

// drop reads the rest of a file that is gone from the directory and stops
// following it.
func (w *Watcher) drop(t *tracked) {
	if t.f != nil {
		w.read(t)
		t.f.Close()
		t.f = nil
	}
	delete(w.files, t.id)
	if w.byPath[t.path] == t.id {
		delete(w.byPath, t.path)
	}
}

// closeIdle closes the descriptors of files that are neither the newest
// nor the last that grew nor detached: they are reopened (by name and
// identity) if they ever change. The last that grew stays open because
// the server may be writing it under a name it no longer has.
func (w *Watcher) closeIdle(cands []candidate) {
	var newest fileID
	if len(cands) > 0 {
		newest = cands[len(cands)-1].id
	}
	var last *tracked
	for _, t := range w.files {
		if last == nil || t.grew > last.grew {
			last = t
		}
	}
	for id, t := range w.files {
		if id != newest && t != last && !t.detached && t.f != nil {
			t.f.Close()
			t.f = nil
		}
	}
}

// readPaths reads the files named by write events; false if one is not
// known (a full scan is needed).
func (w *Watcher) readPaths(paths map[string]bool) bool {
	for p := range paths {
		id, ok := w.byPath[p]
		if !ok {
			return false
		}
		fi, err := os.Stat(p)
		if err != nil || identity(fi) != id {
			return false
		}
		w.follow(w.files[id], fi.Size(), fi.ModTime())
	}
	return true
}
