package backupsel

import (
	"cmp"
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// A restore uses both cores: the goroutine that reads the tar stream (with
// the decoder in one of its own, see readAhead) creates the directories and
// hands each file to one of a few writer goroutines, which create, fill and
// close it. Creating a file costs an open, writes and a close whose latency
// (journal, metadata, page-cache copies) dominates a serial restore, and
// files are independent once their headers are read.
//
// Memory is bounded whatever the backup: file contents travel in
// restoreChunks chunks of chunkSize bytes. Files up to a chunk are packed
// into the current chunk, which returns to the pool when its last file is
// written; a larger file streams through whole chunks. An uncompressed
// archive file needs no chunks: writers copy ranges of it in the kernel.
const (
	defaultWriters = 4
	maxWriters     = 64
	restoreChunks  = 8
	chunkSize      = 1 << 20
)

// writeJob is one file for a writer. Its content is one of: data (inside
// a chunk), parts (chunks the reader sends as it reads them), or size
// bytes at off in src.
type writeJob struct {
	path  string
	data  []byte
	chunk *chunk
	parts chan *chunk
	src   *os.File
	srcFD int // src's descriptor, taken once: each Fd() call costs two fcntl
	off   int64
	size  int64
}

// chunk is a buffer of the pool; refs counts the files using it, and the
// reader while it packs files into it.
type chunk struct {
	buf  []byte
	used int
	refs atomic.Int32
}

type writers struct {
	fm      *fileMaker
	jobs    chan writeJob
	free    chan *chunk
	cur     *chunk         // the chunk the reader packs small files into
	pending sync.WaitGroup // jobs handed out and not yet done
	done    sync.WaitGroup // writer goroutines
	once    sync.Once
	files   atomic.Int64
	noRange atomic.Bool // copy_file_range unavailable between these files
	errMu   sync.Mutex
	err     error
}

// startWriters starts the writers; finishWriters stops them.
func (x *extractor) startWriters(ctx context.Context, n int) {
	n = min(cmp.Or(max(n, 0), defaultWriters), maxWriters)
	w := &writers{fm: &x.fm, jobs: make(chan writeJob, n), free: make(chan *chunk, restoreChunks)}
	for range restoreChunks {
		w.free <- &chunk{buf: make([]byte, chunkSize)}
	}
	for range n {
		w.done.Add(1)
		go w.run(ctx)
	}
	x.w = w
}

func (w *writers) run(ctx context.Context) {
	defer w.done.Done()
	for j := range w.jobs {
		// After an error or cancellation, jobs are only drained: their
		// chunks go back and the reader is never left waiting.
		err := ctx.Err()
		if err == nil && w.firstErr() == nil {
			err = w.fm.writeFile(j.path, func(f rawFile) error {
				switch {
				case j.parts != nil:
					return writeParts(f, j.parts, w)
				case j.src != nil:
					return w.copyRange(ctx, f, j.src, j.srcFD, j.off, j.size)
				}
				_, err := f.Write(j.data)
				return err
			})
			if err == nil {
				w.files.Add(1)
			}
		}
		if j.parts != nil {
			for c := range j.parts {
				w.release(c)
			}
		}
		if j.chunk != nil {
			w.release(j.chunk)
		}
		if err != nil {
			w.setErr(err)
		}
		w.pending.Done()
	}
}

// writeParts writes the chunks of a large file as the reader sends them.
func writeParts(f rawFile, parts chan *chunk, w *writers) error {
	for c := range parts {
		_, err := f.Write(c.buf[:c.used])
		w.release(c)
		if err != nil {
			return err
		}
	}
	return nil
}

// copyRange copies size bytes at off in src to f. copy_file_range takes the
// offset itself, so writers share src without seeking it, and the bytes
// never pass through this process; where the kernel cannot (src and f on
// different filesystems, before Linux 5.3 or since 5.19), a plain copy
// through a chunk of the pool (the reader of an uncompressed archive file
// takes none), so memory stays the pool's whatever the writer count.
func (w *writers) copyRange(ctx context.Context, f rawFile, src *os.File, srcFD int, off, size int64) error {
	for size > 0 && !w.noRange.Load() {
		n, err := unix.CopyFileRange(srcFD, &off, f.fd, nil, int(min(size, 1<<30)), 0)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EXDEV), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL):
			// n is -1 here: nothing was copied.
			w.noRange.Store(true)
			continue
		case err != nil:
			return err
		case n == 0:
			return errTruncated
		}
		size -= int64(n)
	}
	if size == 0 {
		return nil
	}
	copyFallbacks.Add(1)
	c, err := w.take(ctx)
	if err != nil {
		return err
	}
	defer w.release(c)
	n, err := io.CopyBuffer(f, io.NewSectionReader(src, off, size), c.buf)
	if err == nil && n != size {
		err = errTruncated
	}
	return err
}

// copyFallbacks counts files copied without copy_file_range, for tests.
var copyFallbacks atomic.Int64

func (w *writers) release(c *chunk) {
	if c.refs.Add(-1) == 0 {
		w.free <- c
	}
}

// take gets a free chunk for the reader, or the reason to stop.
func (w *writers) take(ctx context.Context) (*chunk, error) {
	select {
	case c := <-w.free:
		c.used = 0
		c.refs.Store(1)
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// hand gives j to a writer.
func (w *writers) hand(j writeJob) {
	w.pending.Add(1)
	w.jobs <- j
}

// queueFile hands the file p, whose size bytes r holds, to a writer.
func (x *extractor) queueFile(ctx context.Context, p string, r io.Reader, size int64) error {
	w := x.w
	if err := w.firstErr(); err != nil {
		return err
	}
	if size > chunkSize {
		return x.queueLarge(ctx, p, r, size)
	}
	if w.cur == nil || len(w.cur.buf)-w.cur.used < int(size) {
		if w.cur != nil {
			w.release(w.cur)
			w.cur = nil
		}
		c, err := w.take(ctx)
		if err != nil {
			return err
		}
		w.cur = c
	}
	c := w.cur
	data := c.buf[c.used : c.used+int(size)]
	if _, err := io.ReadFull(r, data); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	c.used += int(size)
	c.refs.Add(1)
	x.prog.add(size)
	w.hand(writeJob{path: p, data: data, chunk: c})
	return nil
}

// queueLarge streams a file larger than a chunk to a writer, chunk by chunk.
func (x *extractor) queueLarge(ctx context.Context, p string, r io.Reader, size int64) error {
	w := x.w
	parts := make(chan *chunk, 2)
	w.hand(writeJob{path: p, parts: parts})
	defer close(parts)
	for size > 0 {
		c, err := w.take(ctx)
		if err != nil {
			return err
		}
		n, err := io.ReadFull(r, c.buf[:min(size, chunkSize)])
		c.used = n
		size -= int64(n)
		x.prog.add(int64(n))
		parts <- c
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if err := w.firstErr(); err != nil {
			return err
		}
	}
	return nil
}

// queueRange hands a writer the file p, size bytes at off in src (whose
// descriptor is srcFD).
func (x *extractor) queueRange(p string, src *os.File, srcFD int, off, size int64) error {
	if err := x.w.firstErr(); err != nil {
		return err
	}
	x.prog.add(size)
	x.w.hand(writeJob{path: p, src: src, srcFD: srcFD, off: off, size: size})
	return nil
}

// finishWriters waits for every file handed out and stops the writers; it
// returns the first write error. Safe to call more than once.
func (x *extractor) finishWriters() error {
	if x.w == nil {
		return nil
	}
	x.w.once.Do(func() {
		if x.w.cur != nil {
			x.w.release(x.w.cur)
			x.w.cur = nil
		}
		close(x.w.jobs)
		x.w.done.Wait()
		x.files += int(x.w.files.Load())
	})
	return x.w.firstErr()
}

// flushWriters waits until every file handed out is written (before a hard
// link to one of them, or a name written again).
func (x *extractor) flushWriters() error {
	if x.w == nil {
		return nil
	}
	x.w.pending.Wait()
	return x.w.firstErr()
}

func (w *writers) setErr(err error) {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *writers) firstErr() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}
