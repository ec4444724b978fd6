package walwatch

import (
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
)

// begin positions the watcher per the start mode and reads what must be
// read first. It returns false if the watcher was closed meanwhile.
func (w *Watcher) begin() bool {
	cands, err := w.list()
	if err != nil {
		w.fail(&fileError{file: w.dir, op: "list", err: err})
	}
	switch w.cfg.Start {
	case StartReplay:
		for _, c := range cands {
			t := w.track(c, 0, 1, true)
			w.read(t)
			w.probe(t, true)
			if w.closed() {
				return false
			}
		}
		return true
	case StartResume:
		w.resume(cands)
	default:
		w.live(cands)
	}
	w.scan()
	return !w.closed()
}

func (w *Watcher) live(cands []candidate) {
	cur := -1
	if w.ctlDir != "" {
		if p, _ := currentLogfile(w.ctlDir, w.format); p != "" {
			if !filepath.IsAbs(p) {
				p = filepath.Join(w.ctlDir, p)
			}
			for i, c := range cands {
				if sameFile(c.path, p) {
					cur = i
				}
			}
		}
	}
	if cur < 0 {
		cur = len(cands) - 1
	}
	for i, c := range cands {
		if i != cur {
			w.track(c, c.size, 1, false)
		}
	}
	if cur >= 0 {
		// Read back the current file; if it tells nothing (a rotation just
		// happened), also the few before it, oldest first.
		w.silent = true
		for start := cur; ; start-- {
			w.m = newMachine(State{}, w.cfg.Grace, w.cfg.TimelineSwitchWait)
			for i := start; i <= cur; i++ {
				w.read(w.track(cands[i], 0, 1, true))
			}
			if w.m.st.Phase != PhaseUnknown || start == 0 || cur-start+1 >= maxReadBack {
				break
			}
		}
		w.silent = false
		if ev, ok := w.m.current(); ok {
			w.out = append(w.out[:0], ev)
			w.emit()
		}
	}
	if w.cfg.ConnString != "" && w.m.st.Phase == PhaseUnknown {
		w.initialBySQL()
	}
}

// maxReadBack bounds how many files a live start reads back to learn the
// present state.
const maxReadBack = 4

func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

func (w *Watcher) resume(cands []candidate) {
	p := w.cfg.Resume
	id := fileID{dev: p.Dev, ino: p.Ino}
	at := -1
	for i, c := range cands {
		if c.id == id && w.sameStart(c.path, p) {
			at = i
		}
	}
	for i, c := range cands {
		switch {
		case i == at && c.size >= p.Offset:
			t := w.track(c, p.Offset, p.Line, p.Line > 0)
			// Keep fingerprinting the file, for truncation and later resumes.
			t.head, _ = readHead(c.path, int(min(p.Offset, headLen)))
		case i == at:
			w.track(c, 0, 1, true) // truncated since
		case at >= 0 && i < at, at < 0 && !c.mtime.After(p.ModTime):
			w.track(c, c.size, 1, false)
		default:
			w.track(c, 0, 1, true) // written after the position
		}
	}
	if at < 0 {
		w.fail(fmt.Errorf("%w: %s (dev %d inode %d) is gone; reading the files written after it", ErrResumeNotFound, p.File, p.Dev, p.Ino))
	}
}

// sameStart checks a resume candidate's first bytes against the position's
// fingerprint (inode numbers are reused).
func (w *Watcher) sameStart(path string, p Position) bool {
	if p.HeadLen == 0 {
		return true
	}
	b, err := readHead(path, p.HeadLen)
	return err == nil && len(b) == p.HeadLen && headSum(b) == p.HeadSum
}

func headSum(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}
