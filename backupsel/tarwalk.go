package backupsel

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// posReader counts the bytes the tar reader consumes, so walkTar can tell an
// archive that ends with its two zero blocks from one cut at a header boundary
// (archive/tar reports both as io.EOF).
type posReader struct {
	r   io.Reader
	pos int64
}

func (p *posReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.pos += int64(n)
	return n, err
}

// posReadSeeker is posReader for seekable sources: archive/tar seeks over file
// contents it is not asked to read, which makes a structure check of an
// uncompressed tar cost one header read per file.
type posReadSeeker struct {
	posReader
	s io.Seeker
}

func (p *posReadSeeker) Seek(off int64, whence int) (int64, error) {
	n, err := p.s.Seek(off, whence)
	if err == nil {
		p.pos = n
	}
	return n, err
}

// errTruncated marks a tar stream that ends before its end-of-archive blocks.
var errTruncated = errors.New("archive is cut short (no end-of-archive blocks): still being copied or damaged")

// preadBuffer is preadSeeker's buffer: a header and the small files after it.
const preadBuffer = 64 << 10

// walkTar calls fn for each entry of the tar stream r (fn may read the entry's
// content from tr; off is where that content starts in the stream) and checks
// that the stream is whole: every entry complete and the end-of-archive
// marker present. Seekable streams must be at offset 0.
func walkTar(ctx context.Context, r io.Reader, fn func(h *tar.Header, tr *tar.Reader, off int64) error) error {
	var pr interface {
		io.Reader
		position() int64
	}
	if f, ok := r.(*os.File); ok {
		r = newPreadSeeker(f, preadBuffer)
	}
	if s, ok := r.(io.ReadSeeker); ok {
		pr = &posReadSeekerPos{posReadSeeker{posReader{r: r}, s}}
	} else {
		pr = &posReaderPos{posReader{r: r}}
	}
	tr := tar.NewReader(pr)
	var end int64 // offset just past the last entry's padded content
	for i := 0; ; i++ {
		if i&255 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if pr.position()-end < 1024 {
				return errTruncated
			}
			return nil
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return errTruncated
			}
			return err
		}
		if isSparse(h) {
			return fmt.Errorf("entry %q: sparse files are not supported (pg_basebackup never writes them)", h.Name)
		}
		// Where this entry's content ends; archive/tar has consumed the header
		// (and any pax/GNU extension records) by now.
		off := pr.position()
		end = off
		if !headerOnly(h.Typeflag) {
			end += blockPadded(h.Size)
		}
		if err := fn(h, tr, off); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return errTruncated
			}
			return err
		}
	}
}

type posReaderPos struct{ posReader }

func (p *posReaderPos) position() int64 { return p.pos }

type posReadSeekerPos struct{ posReadSeeker }

func (p *posReadSeekerPos) position() int64 { return p.pos }

// headerOnly reports the entry types whose Size field carries no content
// (archive/tar skips nothing for them).
func headerOnly(flag byte) bool {
	switch flag {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return true
	}
	return false
}

func isSparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func blockPadded(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return (n + 511) &^ 511
}

// drain reads r to its end so decoders verify their trailing checksums
// (gzip CRC, zstd/lz4 content checksum, zip CRC-32).
func drain(r io.Reader, buf []byte) error {
	for {
		_, err := r.Read(buf)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("after the tar end: %w", err)
		}
	}
}
