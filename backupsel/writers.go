package backupsel

import (
	"io"
	"sync"
	"sync/atomic"
)

// Small files are written by a few goroutines while the archive is read on:
// a data directory is mostly small files, and creating one costs an open,
// a write and a close whose latency (journal, metadata) dominates a serial
// restore. Large files are written by the reading goroutine itself, in
// big sequential writes. Memory stays bounded: smallFileBuffers buffers
// of at most smallFileMax bytes each.
const (
	smallFileWriters = 4
	smallFileBuffers = 8
	smallFileMax     = 256 << 10
)

type writeJob struct {
	path string
	buf  []byte // from x.bufs; len is the file's content
}

type writers struct {
	jobs    chan writeJob
	bufs    chan []byte
	pending sync.WaitGroup // jobs queued and not yet written
	done    sync.WaitGroup // worker goroutines
	once    sync.Once
	files   atomic.Int64
	errMu   sync.Mutex
	err     error
}

// startWriters starts the small-file writers; finishWriters stops them.
func (x *extractor) startWriters() {
	w := &writers{jobs: make(chan writeJob), bufs: make(chan []byte, smallFileBuffers)}
	for i := 0; i < smallFileBuffers; i++ {
		w.bufs <- make([]byte, smallFileMax)
	}
	for i := 0; i < smallFileWriters; i++ {
		w.done.Add(1)
		go func() {
			defer w.done.Done()
			for j := range w.jobs {
				if w.firstErr() == nil {
					if err := x.fm.writeBytes(j.path, j.buf); err != nil {
						w.setErr(err)
					} else {
						w.files.Add(1)
					}
				}
				w.bufs <- j.buf[:cap(j.buf)]
				w.pending.Done()
			}
		}()
	}
	x.w = w
}

// finishWriters waits for every queued file and stops the writers; it
// returns the first write error. Safe to call more than once.
func (x *extractor) finishWriters() error {
	if x.w == nil {
		return nil
	}
	x.w.once.Do(func() {
		close(x.w.jobs)
		x.w.done.Wait()
		x.files += int(x.w.files.Load())
	})
	return x.w.firstErr()
}

// flushWriters waits until every queued file is written (before a hard link
// to one of them).
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

// queueFile reads a small file's content from r and hands it to a writer;
// it reports false when the file is too large for that (or no writers run),
// and the caller writes it itself.
func (x *extractor) queueFile(p string, r io.Reader, size int64) (bool, error) {
	if x.w == nil || size > smallFileMax {
		return false, nil
	}
	if err := x.w.firstErr(); err != nil {
		return true, err
	}
	buf := <-x.w.bufs
	buf = buf[:size]
	if _, err := io.ReadFull(r, buf); err != nil {
		x.w.bufs <- buf[:cap(buf)]
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return true, err
	}
	x.prog.add(size)
	x.tree.files[p] = true
	x.w.pending.Add(1)
	x.w.jobs <- writeJob{path: p, buf: buf}
	return true, nil
}
