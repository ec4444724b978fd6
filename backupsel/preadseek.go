package backupsel

import (
	"errors"
	"io"
	"os"
)

// preadSeeker reads an uncompressed archive file for archive/tar with
// pread into a buffer of its own, and seeks without a system call.
// archive/tar skips a file's content with two Seeks and a one-byte Read
// (to notice a cut archive), then reads the next header: four system calls
// per file through an *os.File, where here most headers of a run of small
// files come from one pread. The file's own offset is never used.
type preadSeeker struct {
	f     *os.File
	pos   int64  // where the next Read starts
	start int64  // file offset of buf[0]
	buf   []byte // buffered bytes from start; len is what is held
	space []byte
}

func newPreadSeeker(f *os.File, size int) *preadSeeker {
	return &preadSeeker{f: f, space: make([]byte, size)}
}

func (p *preadSeeker) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if p.pos < p.start || p.pos >= p.start+int64(len(p.buf)) {
		if len(b) >= len(p.space) {
			// Large reads skip the buffer.
			n, err := p.f.ReadAt(b, p.pos)
			p.pos += int64(n)
			if n > 0 && errors.Is(err, io.EOF) {
				err = nil
			}
			return n, err
		}
		n, err := p.f.ReadAt(p.space, p.pos)
		p.start, p.buf = p.pos, p.space[:n]
		if n == 0 {
			return 0, err // io.EOF at the end, or the read error
		}
	}
	n := copy(b, p.buf[p.pos-p.start:])
	p.pos += int64(n)
	return n, nil
}

func (p *preadSeeker) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += p.pos
	case io.SeekEnd:
		info, err := p.f.Stat()
		if err != nil {
			return p.pos, err
		}
		off += info.Size()
	default:
		return p.pos, errors.New("preadSeeker: bad whence")
	}
	if off < 0 {
		return p.pos, errors.New("preadSeeker: negative position")
	}
	p.pos = off
	return off, nil
}
