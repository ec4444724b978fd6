package walwatch

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// Rotation done by tools other than the server: a file moved away or
// deleted while the server still writes it (mv rotation), and a copy made
// before the original is truncated (copytruncate).

// followDetached follows a file no matching name leads to any more (mv
// rotation, deletion) through its descriptor: the server may hold the same
// file open and go on writing it (pg_ctl -l never reopens its log). It is
// dropped once another file grew after it: the server writes elsewhere.
func (w *Watcher) followDetached(t *tracked) {
	if t.f == nil {
		w.drop(t) // closed as idle: nothing writes it
		return
	}
	if !t.detached {
		t.detached = true
		if w.byPath[t.path] == t.id {
			delete(w.byPath, t.path)
		}
		if p, err := os.Readlink(fdPath(t.f)); err == nil {
			t.path = strings.TrimSuffix(p, " (deleted)")
		}
		w.log.Info("walwatch: log file moved away or deleted; following it while the server writes it", "file", t.path)
	}
	if fi, err := t.f.Stat(); err == nil {
		w.follow(t, fi.Size(), fi.ModTime())
	}
	for _, u := range w.files {
		if u != t && !u.detached && u.grew > t.grew {
			w.drop(t)
			return
		}
	}
}

// fdPath names an open file in /proc, whose link gives its present name.
func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// followDetachedAll follows every detached file (after events naming files
// that do not match: a detached file may have been renamed to one).
func (w *Watcher) followDetachedAll() {
	for _, t := range w.files {
		if t.detached {
			w.followDetached(t)
		}
	}
}

// minCopyHead is the shortest fingerprint a copy is recognised by.
const minCopyHead = 48

// maxRetired bounds the fingerprints kept of truncated files.
const maxRetired = 4

// retiredHead is what was read of a file before it was truncated: a copy
// of it found later carries on from there.
type retiredHead struct {
	head []byte
	off  int64
	line int
}

// spotCopy recognises a new file t as a copy of a followed file (the first
// step of copytruncate) by its first bytes, and reports whether that is
// settled: a file whose bytes so far begin another's fingerprint may be a
// copy still being written, and is not read yet. While the original is
// intact a copy holds nothing new and is not read; see truncated.
func (w *Watcher) spotCopy(t *tracked) (settled bool) {
	head, err := readHead(t.path, headLen)
	if err != nil || len(head) == 0 {
		return false
	}
	isCopy := func(h []byte) bool { return len(h) >= minCopyHead && bytes.HasPrefix(head, h) }
	mayBe := func(h []byte) bool { return len(h) >= minCopyHead && len(head) < len(h) && bytes.HasPrefix(h, head) }
	for _, u := range w.files {
		if u != t && u.copyOf == nil && !u.fresh && isCopy(u.head) && w.sameAsOriginal(t, u) {
			t.copyOf = u
			return true
		}
	}
	for _, r := range w.retired {
		if isCopy(r.head) {
			// The original was truncated before the copy was seen.
			t.reset(w, r.off, r.line)
			t.head = head[:min(int64(len(head)), r.off)]
			return true
		}
	}
	for _, u := range w.files {
		if u != t && !u.fresh && mayBe(u.head) {
			return false
		}
	}
	for _, r := range w.retired {
		if mayBe(r.head) {
			return false
		}
	}
	return true
}

// copyCheck is how many bytes at the end of a copy are compared with the
// original at the same offset.
const copyCheck = 4 << 10

// sameAsOriginal checks that what c holds so far ends as u does at the same
// offset (a file that merely begins like u is no copy). A u now shorter
// (truncated since the copy) cannot say otherwise: c counts as a copy; a u
// gone counts if c is no longer than what was read of u.
func (w *Watcher) sameAsOriginal(c, u *tracked) bool {
	cf, err := os.Open(c.path)
	if err != nil {
		return false
	}
	defer cf.Close()
	fi, err := cf.Stat()
	if err != nil {
		return false
	}
	c.copied = fi.Size()
	if w.open(u) != nil {
		return c.copied <= u.sp.next // gone: no longer than what was read of it
	}
	k := min(c.copied, copyCheck)
	a, b := make([]byte, k), make([]byte, k)
	if n, _ := cf.ReadAt(a, c.copied-k); int64(n) != k {
		return false
	}
	if n, _ := u.f.ReadAt(b, c.copied-k); int64(n) != k {
		return true
	}
	return bytes.Equal(a, b)
}

func (w *Watcher) truncated(t *tracked) {
	w.log.Info("walwatch: log file truncated, reading it from the start", "file", t.path)
	t.asm.flush()
	off, line := t.sp.boundary()
	// What the original got after it was last read is in its copy, if
	// there is one: read that first, to keep the records in order.
	for _, c := range w.files {
		if c.copyOf == t {
			c.copyOf = nil
			c.reset(w, off, line)
			c.head, _ = readHead(c.path, int(min(off, headLen)))
			w.read(c)
		}
	}
	if len(t.head) >= minCopyHead {
		w.retired = append(w.retired, retiredHead{head: t.head, off: off, line: line})
		if len(w.retired) > maxRetired {
			w.retired = w.retired[1:]
		}
	}
	t.reset(w, 0, 1)
}

// sameContent reports whether the file at path holds what t was read to
// hold: its first bytes, and the last bytes read where they were read.
func (w *Watcher) sameContent(t *tracked, path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, max(len(t.head), len(t.tail)))
	if n, _ := f.ReadAt(b[:len(t.head)], 0); !bytes.Equal(b[:n], t.head) {
		return false
	}
	n, _ := f.ReadAt(b[:len(t.tail)], t.sp.next-int64(len(t.tail)))
	return bytes.Equal(b[:n], t.tail)
}
