package backupsel

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
)

// listZip reads the zip's central directory, which zip writes last: a zip
// still being copied has none and is reported as incomplete.
func listZip(zipPath string) ([]candidateFile, error) {
	zr, err := openZip(zipPath)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	var out []candidateFile
	var nested []string
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		base := path.Base(f.Name)
		if !archiveRe.MatchString(base) && base != "backup_manifest" {
			continue
		}
		if base != f.Name {
			nested = append(nested, f.Name)
			continue
		}
		out = append(out, candidateFile{name: f.Name, path: f.Name, size: int64(f.CompressedSize64), usize: int64(f.UncompressedSize64), modTime: f.Modified})
	}
	if len(out) == 0 && len(nested) > 0 {
		return nil, reasonf("backup files are not at the zip's root (found %s)", strings.Join(nested, ", "))
	}
	return out, nil
}

func openZip(zipPath string) (*zip.ReadCloser, error) {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, &PermissionError{Path: zipPath, Need: "read", Err: err}
		}
		if errors.Is(err, zip.ErrFormat) {
			return nil, reasonf("incomplete zip: no central directory (still being copied, or not a zip): %w", err)
		}
		return nil, reasonf("unreadable zip: %w", err)
	}
	// klauspost's inflate is faster than the standard library's.
	zr.RegisterDecompressor(zip.Deflate, func(r io.Reader) io.ReadCloser { return flate.NewReader(r) })
	return zr, nil
}

// openRaw opens an archive's stored bytes (still compressed, if it is): the
// file itself, or the zip entry read in place (inflated on the fly, never
// copied to a temporary file).
func (b *Backup) openRaw(a *Archive) (io.ReadCloser, error) {
	if b.Layout != LayoutZip {
		f, err := os.Open(a.path)
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return nil, &PermissionError{Path: a.path, Need: "read", Err: err}
			}
			return nil, fmt.Errorf("backupsel: %w", err)
		}
		return f, nil
	}
	return openZipEntry(b.Location, a.path)
}

func openZipEntry(zipPath, name string) (io.ReadCloser, error) {
	zr, err := openZip(zipPath)
	if err != nil {
		return nil, err
	}
	for _, f := range zr.File {
		if f.Name != name {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			zr.Close()
			return nil, &ArchiveError{Archive: zipPath + ":" + name, Err: err}
		}
		return zipEntry{rc, zr}, nil
	}
	zr.Close()
	return nil, &ArchiveError{Archive: zipPath + ":" + name, Err: fs.ErrNotExist}
}

type zipEntry struct {
	io.ReadCloser
	zr *zip.ReadCloser
}

func (z zipEntry) Close() error {
	err := z.ReadCloser.Close()
	if err2 := z.zr.Close(); err == nil {
		err = err2
	}
	return err
}

// readWhole reads a small file of the backup (backup_manifest).
func readWhole(b *Backup, p string, limit int64) ([]byte, error) {
	a := &Archive{Name: path.Base(p), path: p}
	rc, err := b.openRaw(a)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, &ArchiveError{Archive: b.archiveName(a), Err: err}
	}
	if int64(len(data)) > limit {
		return nil, reasonf("%s is larger than %d bytes", a.Name, limit)
	}
	return data, nil
}

// entryPath checks an archive entry name and returns it cleaned and relative
// ("." for the archive's root directory).
func entryPath(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty name")
	}
	if strings.HasPrefix(name, "/") {
		return "", errors.New("absolute path")
	}
	if strings.ContainsRune(name, 0) {
		return "", errors.New("NUL in name")
	}
	for _, elem := range strings.Split(name, "/") {
		if elem == ".." {
			return "", errors.New(`".." in path`)
		}
	}
	return path.Clean(name), nil
}

// readAhead decodes in its own goroutine, so decompression overlaps with
// writing files (as `tar -xzf` overlaps gzip and tar in two processes).
// Memory: four buffers.
type readAhead struct {
	ch      chan chunk
	free    chan []byte
	done    chan struct{}
	exited  chan struct{}
	cur     []byte
	curBuf  []byte
	err     error
	closeMu sync.Once
}

type chunk struct {
	data []byte
	err  error
}

const readAheadBuffers = 4

func newReadAhead(r io.Reader, size int) io.ReadCloser {
	ra := &readAhead{
		ch:     make(chan chunk, readAheadBuffers),
		free:   make(chan []byte, readAheadBuffers),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	for i := 0; i < readAheadBuffers; i++ {
		ra.free <- make([]byte, size)
	}
	go ra.fill(r)
	return ra
}

func (ra *readAhead) fill(r io.Reader) {
	defer close(ra.exited)
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		case <-ra.done:
			return
		}
		// Fill the buffer, keeping the reader's own error: a decoder's
		// io.ErrUnexpectedEOF means a cut stream, not a short read.
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = r.Read(buf[n:])
			n += m
		}
		if n > 0 {
			select {
			case ra.ch <- chunk{data: buf[:n]}:
			case <-ra.done:
				return
			}
		}
		if err != nil {
			select {
			case ra.ch <- chunk{err: err}:
			case <-ra.done:
			}
			return
		}
	}
}

func (ra *readAhead) Read(p []byte) (int, error) {
	if ra.err != nil {
		return 0, ra.err
	}
	if len(ra.cur) == 0 {
		if ra.curBuf != nil {
			ra.free <- ra.curBuf[:cap(ra.curBuf)]
			ra.curBuf = nil
		}
		c := <-ra.ch
		if c.err != nil {
			ra.err = c.err
			return 0, c.err
		}
		ra.cur, ra.curBuf = c.data, c.data
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// Close stops the goroutine and waits for it, so the decoder under it can be
// closed safely afterwards.
func (ra *readAhead) Close() error {
	ra.closeMu.Do(func() { close(ra.done) })
	<-ra.exited
	return nil
}

// archiveName names an archive for messages: the file, or zip:entry.
func (b *Backup) archiveName(a *Archive) string {
	if b.Layout == LayoutZip {
		return b.Location + ":" + a.path
	}
	return a.path
}
