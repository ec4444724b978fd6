package backupsel

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression of an archive, recognised by its first bytes.
type Compression int

// Compressions pg_basebackup writes.
const (
	CompressionNone Compression = iota
	CompressionGzip
	CompressionLZ4
	CompressionZstd
)

func (c Compression) String() string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionGzip:
		return "gzip"
	case CompressionLZ4:
		return "lz4"
	case CompressionZstd:
		return "zstd"
	}
	return "unknown"
}

var (
	magicGzip = []byte{0x1f, 0x8b}
	magicLZ4  = []byte{0x04, 0x22, 0x4d, 0x18} // lz4 frame format
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// errNotTar is wrapped when a stream is neither a known compression nor a tar.
var errNotTar = errors.New("not a tar archive (no ustar header) nor gzip, lz4 or zstd")

// sniffCompression looks at the first bytes of an archive.
func sniffCompression(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return CompressionGzip
	case bytes.HasPrefix(head, magicLZ4):
		return CompressionLZ4
	case bytes.HasPrefix(head, magicZstd):
		return CompressionZstd
	}
	return CompressionNone
}

// isTarHeader reports whether block starts with a ustar or GNU tar header, or
// is an all-zero block (an empty archive holds only its end blocks).
func isTarHeader(block []byte) bool {
	if len(block) < 263 {
		return len(block) == 0 || allZero(block)
	}
	return bytes.Equal(block[257:262], []byte("ustar")) || allZero(block[:512])
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// decompressor wraps r (whose first bytes say c) in the matching decoder.
// Concurrency is kept low: a restore runs beside PostgreSQL and other work,
// and memory must stay small whatever the backup size.
func decompressor(r io.Reader, c Compression) (io.ReadCloser, error) {
	switch c {
	case CompressionNone:
		return io.NopCloser(r), nil
	case CompressionGzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case CompressionLZ4:
		return newLZ4Reader(r), nil
	case CompressionZstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zstdCloser{zr}, nil
	}
	return nil, fmt.Errorf("unknown compression %d", c)
}

type zstdCloser struct{ *zstd.Decoder }

func (z zstdCloser) Close() error { z.Decoder.Close(); return nil }

// tarStream opens the tar stream inside r: it sniffs the compression, wraps the
// decoder, and checks that a tar header follows. The returned reader is r itself
// (so seeks work) when r is seekable and not compressed and seekable is set.
func tarStream(r io.Reader, bufSize int, seekable bool) (io.Reader, Compression, io.Closer, error) {
	br := bufio.NewReaderSize(r, bufSize)
	head, err := br.Peek(4)
	if err != nil && len(head) == 0 {
		if errors.Is(err, io.EOF) {
			return nil, CompressionNone, nil, fmt.Errorf("empty file: %w", io.ErrUnexpectedEOF)
		}
		return nil, CompressionNone, nil, err
	}
	c := sniffCompression(head)
	if c == CompressionNone {
		block, _ := br.Peek(512)
		if !isTarHeader(block) {
			return nil, c, nil, errNotTar
		}
		if seekable {
			// Nothing consumed yet: let the caller use r directly so the tar
			// reader can seek over file contents.
			if rs, ok := r.(io.ReadSeeker); ok {
				if _, err := rs.Seek(0, io.SeekStart); err == nil {
					return rs, c, nopCloser{}, nil
				}
			}
		}
		return br, c, nopCloser{}, nil
	}
	dr, err := decompressor(br, c)
	if err != nil {
		return nil, c, nil, err
	}
	dbr := bufio.NewReaderSize(dr, bufSize)
	block, err := dbr.Peek(512)
	if err != nil && len(block) < 512 && !errors.Is(err, io.EOF) {
		dr.Close()
		return nil, c, nil, fmt.Errorf("%s: %w", c, err)
	}
	if !isTarHeader(block) {
		dr.Close()
		return nil, c, nil, fmt.Errorf("%s stream: %w", c, errNotTar)
	}
	return dbr, c, dr, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
