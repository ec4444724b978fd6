package backupsel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/pierrec/lz4/v4"
)

// lz4Reader decodes the LZ4 frame format (lz4_Frame_format.md): one or
// more frames, and skippable frames between them, with every checksum the
// frames carry verified.
//
// It is ours rather than pierrec/lz4's Reader for memory: pg_basebackup
// writes linked 256 KiB blocks, and that Reader keeps each block's 64 KiB
// dictionary by appending to a slice cut at its end, a new 256 KiB
// allocation per block: a 1 GiB base.tar.lz4 allocated 1 GiB, which
// showed as the restore's peak RSS. Here one window (64 KiB of history and
// a block) and one block of input are allocated per frame size and
// reused; the blocks are decoded by pierrec/lz4's block decoder.
type lz4Reader struct {
	r   io.Reader
	off int64 // compressed bytes consumed, for messages
	err error // sticky

	frames  int // frames begun
	inFrame bool
	linked  bool // blocks may refer to the 64 KiB before them
	blockCk bool
	content *xxh32 // nil without a content checksum
	size    int64  // the content size the header declares; -1 if none
	total   int64  // bytes decoded in this frame

	bmax int    // the frame's block maximum size
	src  []byte // one block of input (at least bmax)
	win  []byte // history (up to 64 KiB) then the block decoded
	hist int    // bytes of win that are history or decoded
	out  []byte // decoded bytes not yet read: a tail of win[:hist]
	hdr  [19]byte
}

const (
	lz4FrameMagic    = 0x184D2204
	lz4SkipMagicMask = 0xFFFFFFF0
	lz4SkipMagic     = 0x184D2A50
	lz4Window        = 64 << 10
)

func newLZ4Reader(r io.Reader) *lz4Reader { return &lz4Reader{r: r} }

func (z *lz4Reader) Read(p []byte) (int, error) {
	for len(z.out) == 0 {
		if z.err != nil {
			return 0, z.err
		}
		z.err = z.next()
	}
	n := copy(p, z.out)
	z.out = z.out[n:]
	return n, nil
}

func (z *lz4Reader) Close() error { return nil }

// fail describes a corrupt or unsupported frame, at its compressed offset.
func (z *lz4Reader) fail(format string, args ...any) error {
	return fmt.Errorf("lz4: %s (at compressed byte %d)", fmt.Sprintf(format, args...), z.off)
}

// read fills p from the input; a stream that ends inside it is cut.
func (z *lz4Reader) read(p []byte) error {
	n, err := io.ReadFull(z.r, p)
	z.off += int64(n)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// next decodes the next block into z.out, reading frame headers and end
// marks on the way; io.EOF after the last frame.
func (z *lz4Reader) next() error {
	for {
		if !z.inFrame {
			if err := z.header(); err != nil {
				return err
			}
			continue
		}
		if err := z.read(z.hdr[:4]); err != nil {
			return err
		}
		bsize := binary.LittleEndian.Uint32(z.hdr[:4])
		if bsize == 0 {
			return z.endFrame()
		}
		stored := bsize&(1<<31) != 0
		bsize &^= 1 << 31
		if int(bsize) > z.bmax {
			return z.fail("block of %d bytes, over the frame's maximum %d", bsize, z.bmax)
		}
		src := z.src[:bsize]
		if err := z.read(src); err != nil {
			return err
		}
		if z.blockCk {
			if err := z.read(z.hdr[:4]); err != nil {
				return err
			}
			if binary.LittleEndian.Uint32(z.hdr[:4]) != xxh32Sum(src) {
				return z.fail("block checksum mismatch")
			}
		}
		// Keep the last 64 KiB of output as the next block's dictionary.
		switch {
		case !z.linked:
			z.hist = 0
		case z.hist > lz4Window:
			copy(z.win, z.win[z.hist-lz4Window:z.hist])
			z.hist = lz4Window
		}
		dst := z.win[z.hist : z.hist+z.bmax] // a block decodes to at most the frame's maximum
		var n int
		if stored {
			n = copy(dst, src)
		} else {
			var err error
			if n, err = lz4.UncompressBlockWithDict(src, dst, z.win[:z.hist]); err != nil {
				return z.fail("corrupt block: %v", err)
			}
		}
		if z.content != nil {
			z.content.Write(dst[:n])
		}
		z.total += int64(n)
		z.out = dst[:n]
		z.hist += n
		if n > 0 {
			return nil
		}
	}
}

// header reads a frame header, skipping skippable frames; io.EOF where a
// frame could begin but the input ends, after at least one frame.
func (z *lz4Reader) header() error {
	n, err := io.ReadFull(z.r, z.hdr[:4])
	z.off += int64(n)
	switch {
	case n == 0 && errors.Is(err, io.EOF) && z.frames > 0:
		return io.EOF
	case n == 0 && errors.Is(err, io.EOF) && z.off > 0:
		return z.fail("no LZ4 frame, only skippable frames")
	case n > 0 && z.frames > 0 && errors.Is(err, io.ErrUnexpectedEOF):
		return z.fail("%d bytes after the last frame that are not a frame", n)
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	magic := binary.LittleEndian.Uint32(z.hdr[:4])
	if magic&lz4SkipMagicMask == lz4SkipMagic {
		if err := z.read(z.hdr[:4]); err != nil {
			return err
		}
		skip := int64(binary.LittleEndian.Uint32(z.hdr[:4]))
		m, err := io.CopyN(io.Discard, z.r, skip)
		z.off += m
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		return nil
	}
	if magic != lz4FrameMagic {
		if z.frames == 0 {
			return z.fail("not an LZ4 frame (magic %#08x)", magic)
		}
		return z.fail("data after the last frame that is not a frame (magic %#08x)", magic)
	}
	// FLG, BD, then the optional content size and dictionary ID, then
	// the header checksum.
	d := z.hdr[:2]
	if err := z.read(d); err != nil {
		return err
	}
	flg, bd := d[0], d[1]
	if flg>>6 != 1 {
		return z.fail("frame version %d, not 1", flg>>6)
	}
	if flg&0x02 != 0 || bd&0x8F != 0 {
		return z.fail("reserved bits set in the frame descriptor")
	}
	if flg&0x01 != 0 {
		return z.fail("frame needs a dictionary (dictionary ID set), which pg_basebackup never writes")
	}
	l := 2
	if flg&0x08 != 0 {
		l += 8
	}
	if err := z.read(z.hdr[2 : l+1]); err != nil {
		return err
	}
	if hc := byte(xxh32Sum(z.hdr[:l]) >> 8); hc != z.hdr[l] {
		return z.fail("frame header checksum mismatch")
	}
	z.size = -1
	if flg&0x08 != 0 {
		z.size = int64(binary.LittleEndian.Uint64(z.hdr[2:10]))
	}
	var bmax int
	switch bd >> 4 {
	case 4:
		bmax = 64 << 10
	case 5:
		bmax = 256 << 10
	case 6:
		bmax = 1 << 20
	case 7:
		bmax = 4 << 20
	default:
		return z.fail("block maximum size code %d, not 4-7", bd>>4)
	}
	if len(z.src) < bmax { // kept for later frames: input could alternate sizes
		z.src = make([]byte, bmax)
		z.win = make([]byte, lz4Window+bmax)
	}
	z.bmax = bmax
	z.linked = flg&0x20 == 0
	z.blockCk = flg&0x10 != 0
	z.content = nil
	if flg&0x04 != 0 {
		z.content = newXXH32()
	}
	z.hist, z.total = 0, 0
	z.inFrame = true
	z.frames++
	return nil
}

// endFrame checks the end of a frame: its content size and checksum.
func (z *lz4Reader) endFrame() error {
	z.inFrame = false
	if z.size >= 0 && z.size != z.total {
		return z.fail("frame holds %d bytes, its header says %d", z.total, z.size)
	}
	if z.content != nil {
		if err := z.read(z.hdr[:4]); err != nil {
			return err
		}
		if binary.LittleEndian.Uint32(z.hdr[:4]) != z.content.Sum32() {
			return z.fail("content checksum mismatch")
		}
	}
	return nil
}
