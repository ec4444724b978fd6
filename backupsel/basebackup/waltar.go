package basebackup

import (
	"fmt"
	"io"
	"strconv"
	"time"
)

const tarBlock = 512

// walTar writes pg_wal.tar as pg_basebackup's tar WAL method does: each
// segment a member of the full segment size (the last one padded with
// zeros), an empty archive_status/<segment>.done member after each
// complete segment and timeline history file, and two zero blocks at the
// end. Headers are ustar with mode 0600, uid and gid 0, owner names
// "postgres", as PostgreSQL's tarCreateHeader writes them.
type walTar struct {
	w       io.Writer
	segSize int64
	cur     string // member being written, "" between members
	curSize int64
	written int64 // bytes of the current member written so far
	now     func() time.Time
}

// writeFile writes a whole member (a history file, a .done marker).
func (t *walTar) writeFile(name string, data []byte) error {
	if err := t.header(name, int64(len(data))); err != nil {
		return err
	}
	if _, err := t.w.Write(data); err != nil {
		return err
	}
	return t.pad(int64(len(data)))
}

// startSegment begins the member of a WAL segment.
func (t *walTar) startSegment(name string) error {
	if err := t.header(name, t.segSize); err != nil {
		return err
	}
	t.cur, t.curSize, t.written = name, t.segSize, 0
	return nil
}

// write appends WAL to the current segment; it never crosses its end.
func (t *walTar) write(p []byte) error {
	if t.written+int64(len(p)) > t.curSize {
		return fmt.Errorf("WAL for %s runs past the segment's end", t.cur)
	}
	n, err := t.w.Write(p)
	t.written += int64(n)
	return err
}

// endSegment ends the current member, padding it with zeros to the
// segment size (pg_basebackup pads the last, partial, segment too), and
// marks a complete one archived.
func (t *walTar) endSegment() error {
	if t.cur == "" {
		return nil
	}
	complete := t.written == t.curSize
	if err := t.zeros(t.curSize - t.written); err != nil {
		return err
	}
	name := t.cur
	t.cur = ""
	if complete {
		return t.writeFile("archive_status/"+name+".done", nil)
	}
	return nil
}

// close ends the current segment and the archive.
func (t *walTar) close() error {
	if err := t.endSegment(); err != nil {
		return err
	}
	return t.zeros(2 * tarBlock)
}

func (t *walTar) pad(n int64) error {
	if r := n % tarBlock; r != 0 {
		return t.zeros(tarBlock - r)
	}
	return nil
}

var zeroBlock [64 << 10]byte

func (t *walTar) zeros(n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeroBlock)))
		if _, err := t.w.Write(zeroBlock[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// header writes a ustar header as PostgreSQL's tarCreateHeader does for a
// regular file.
func (t *walTar) header(name string, size int64) error {
	if len(name) > 99 {
		return fmt.Errorf("WAL file name %q too long for a tar header", name)
	}
	var h [tarBlock]byte
	copy(h[0:], name)
	octal(h[100:108], 0o600)
	octal(h[108:116], 0) // uid
	octal(h[116:124], 0) // gid
	octal(h[124:136], size)
	octal(h[136:148], t.now().Unix())
	copy(h[148:156], "        ") // checksum field counts as spaces
	h[156] = '0'
	copy(h[257:263], "ustar\x00")
	copy(h[263:265], "00")
	copy(h[265:297], "postgres")
	copy(h[297:329], "postgres")
	octal(h[329:337], 0) // devmajor
	octal(h[337:345], 0) // devminor
	var sum int64
	for _, b := range h {
		sum += int64(b)
	}
	// Six octal digits, a NUL and a space, as tar writes it.
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	_, err := t.w.Write(h[:])
	return err
}

// octal fills field with n in octal, zero-padded, ending in a space as
// PostgreSQL's print_tar_number does.
func octal(field []byte, n int64) {
	s := strconv.FormatInt(n, 8)
	width := len(field) - 1
	for len(s) < width {
		s = "0" + s
	}
	copy(field, s[len(s)-width:])
	field[width] = ' '
}
