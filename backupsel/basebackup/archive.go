package basebackup

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Compression is the client-side compression of the archives, as
// pg_basebackup -Z client-<method>[:level] does it.
type Compression int

const (
	// None writes plain .tar files.
	None Compression = iota
	// Gzip writes base.tar.gz, <oid>.tar.gz and pg_wal.tar.gz.
	Gzip
	// LZ4 writes base.tar.lz4 and <oid>.tar.lz4; pg_wal.tar stays plain,
	// as pg_basebackup 15 leaves it.
	LZ4
	// Zstd writes base.tar.zst and <oid>.tar.zst; pg_wal.tar stays plain.
	Zstd
)

func (c Compression) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case LZ4:
		return "lz4"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// compressionRule is what each method does: its file suffix, its level
// range, and whether pg_basebackup compresses pg_wal.tar with it.
type compressionRule struct {
	suffix         string
	minLevel       int
	maxLevel       int
	compressesWAL  bool
	newCompression func(w io.Writer, level int) (io.WriteCloser, error)
}

var compressionRules = map[Compression]compressionRule{
	None: {suffix: ""},
	Gzip: {suffix: ".gz", minLevel: 1, maxLevel: 9, compressesWAL: true, newCompression: func(w io.Writer, level int) (io.WriteCloser, error) {
		if level == 0 {
			level = gzip.DefaultCompression
		}
		return gzip.NewWriterLevel(w, level)
	}},
	LZ4: {suffix: ".lz4", minLevel: 1, maxLevel: 12, newCompression: func(w io.Writer, level int) (io.WriteCloser, error) {
		zw := lz4.NewWriter(w)
		opts := []lz4.Option{lz4.ConcurrencyOption(1), lz4.ChecksumOption(false), lz4.BlockSizeOption(lz4.Block64Kb)}
		if level > 0 {
			// liblz4's levels 1-2 are its fast mode; 3-12 its HC
			// levels, which pierrec/lz4 offers up to 9.
			lv := lz4.Fast
			if level >= 3 {
				lv = lz4.CompressionLevel(1 << (8 + min(level, 9)))
			}
			opts = append(opts, lz4.CompressionLevelOption(lv))
		}
		if err := zw.Apply(opts...); err != nil {
			return nil, err
		}
		return zw, nil
	}},
	Zstd: {suffix: ".zst", minLevel: 1, maxLevel: 22, newCompression: func(w io.Writer, level int) (io.WriteCloser, error) {
		lv := zstd.SpeedDefault
		if level > 0 {
			lv = zstd.EncoderLevelFromZstd(level)
		}
		return zstd.NewWriter(w, zstd.WithEncoderLevel(lv), zstd.WithEncoderConcurrency(1))
	}},
}

// outFile is one file of the backup being written: plain, or through a
// compressor that runs in a goroutine of its own, so that compressing one
// chunk overlaps receiving the next (pg_basebackup does both in turn).
type outFile struct {
	path string
	f    *os.File
	n    int64 // bytes written before compression

	// With compression: chunks fill cur, go to the compressor through
	// full, and come back through free; chunkCount chunks of chunkSize
	// bound the memory.
	buf     *bufio.Writer
	zw      io.WriteCloser
	cur     []byte
	full    chan []byte
	free    chan []byte
	done    chan struct{}
	zerr    error // the compressor's first error, read after done or in Write
	zerrSet chan struct{}
}

const (
	chunkSize  = 1 << 20
	chunkCount = 3
)

// createOut creates name in dir, refusing to replace anything, with mode
// 0600 as pg_basebackup's files have.
func createOut(dir, name string, c Compression, level int) (*outFile, error) {
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	o := &outFile{path: path, f: f}
	rule := compressionRules[c]
	if rule.newCompression == nil {
		return o, nil
	}
	o.buf = bufio.NewWriterSize(f, 256<<10)
	if o.zw, err = rule.newCompression(o.buf, level); err != nil {
		f.Close()
		return nil, err
	}
	o.full, o.free = make(chan []byte, chunkCount), make(chan []byte, chunkCount)
	o.done, o.zerrSet = make(chan struct{}), make(chan struct{})
	for i := 1; i < chunkCount; i++ {
		o.free <- make([]byte, 0, chunkSize)
	}
	o.cur = make([]byte, 0, chunkSize)
	go o.compress()
	return o, nil
}

func (o *outFile) compress() {
	defer close(o.done)
	for chunk := range o.full {
		if o.zerr == nil {
			if _, err := o.zw.Write(chunk); err != nil {
				o.zerr = err
				close(o.zerrSet)
			}
		}
		o.free <- chunk[:0]
	}
}

func (o *outFile) Write(p []byte) (int, error) {
	if o.zw == nil {
		n, err := o.f.Write(p)
		o.n += int64(n)
		if err != nil {
			return n, fmt.Errorf("writing %s: %w", o.path, err)
		}
		return n, nil
	}
	select {
	case <-o.zerrSet:
		return 0, fmt.Errorf("writing %s: %w", o.path, o.zerr)
	default:
	}
	total := len(p)
	for len(p) > 0 {
		k := min(len(p), chunkSize-len(o.cur))
		o.cur = append(o.cur, p[:k]...)
		p = p[k:]
		if len(o.cur) == chunkSize {
			o.full <- o.cur
			o.cur = <-o.free
		}
	}
	o.n += int64(total)
	return total, nil
}

// drain hands the last chunk to the compressor and waits for it to end.
// It may be called again (abort after a failed finish).
func (o *outFile) drain() {
	if o.full == nil {
		return
	}
	if len(o.cur) > 0 {
		o.full <- o.cur
		o.cur = nil
	}
	close(o.full)
	o.full = nil
	<-o.done
}

// finish flushes the compressor, syncs the file unless noSync, and closes it.
func (o *outFile) finish(noSync bool) error {
	err := func() error {
		if o.zw != nil {
			o.drain()
			if o.zerr != nil {
				return o.zerr
			}
			if err := o.zw.Close(); err != nil {
				return err
			}
			if err := o.buf.Flush(); err != nil {
				return err
			}
		}
		if !noSync {
			return o.f.Sync()
		}
		return nil
	}()
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", o.path, err)
	}
	return nil
}

// abort stops the compressor and closes the file without caring for its
// content: the whole partial folder is about to be removed. It may follow a
// failed finish.
func (o *outFile) abort() {
	if o.zw != nil {
		o.drain()
	}
	o.f.Close()
}
