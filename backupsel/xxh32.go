package backupsel

import (
	"encoding/binary"
	"math/bits"
)

// xxh32 is the 32-bit xxHash (seed 0) the LZ4 frame format uses for its
// header, block and content checksums, written from the xxHash
// specification (xxhash_spec.md). The pierrec/lz4 module keeps its own
// implementation internal.
type xxh32 struct {
	v     [4]uint32
	total uint64
	buf   [16]byte
	n     int // bytes in buf
}

const (
	xxhP1 uint32 = 0x9E3779B1
	xxhP2 uint32 = 0x85EBCA77
	xxhP3 uint32 = 0xC2B2AE3D
	xxhP4 uint32 = 0x27D4EB2F
	xxhP5 uint32 = 0x165667B1
)

func newXXH32() *xxh32 {
	h := &xxh32{}
	h.reset()
	return h
}

func (h *xxh32) reset() {
	p1, p2 := xxhP1, xxhP2 // wrapping arithmetic, as the spec's
	h.v = [4]uint32{p1 + p2, p2, 0, -p1}
	h.total, h.n = 0, 0
}

func xxhRound(acc, lane uint32) uint32 {
	return bits.RotateLeft32(acc+lane*xxhP2, 13) * xxhP1
}

// stripes consumes whole 16-byte stripes of p and returns what is left.
func (h *xxh32) stripes(p []byte) []byte {
	v0, v1, v2, v3 := h.v[0], h.v[1], h.v[2], h.v[3]
	for ; len(p) >= 16; p = p[16:] {
		v0 = xxhRound(v0, binary.LittleEndian.Uint32(p[0:]))
		v1 = xxhRound(v1, binary.LittleEndian.Uint32(p[4:]))
		v2 = xxhRound(v2, binary.LittleEndian.Uint32(p[8:]))
		v3 = xxhRound(v3, binary.LittleEndian.Uint32(p[12:]))
	}
	h.v = [4]uint32{v0, v1, v2, v3}
	return p
}

func (h *xxh32) Write(p []byte) (int, error) {
	n := len(p)
	h.total += uint64(n)
	if h.n > 0 {
		c := copy(h.buf[h.n:], p)
		h.n += c
		p = p[c:]
		if h.n < 16 {
			return n, nil
		}
		h.stripes(h.buf[:])
		h.n = 0
	}
	rest := h.stripes(p)
	h.n = copy(h.buf[:], rest)
	return n, nil
}

// Sum32 is the hash of everything written so far.
func (h *xxh32) Sum32() uint32 {
	var acc uint32
	if h.total >= 16 {
		acc = bits.RotateLeft32(h.v[0], 1) + bits.RotateLeft32(h.v[1], 7) +
			bits.RotateLeft32(h.v[2], 12) + bits.RotateLeft32(h.v[3], 18)
	} else {
		acc = xxhP5 // the seed, 0, plus P5
	}
	acc += uint32(h.total)
	p := h.buf[:h.n]
	for ; len(p) >= 4; p = p[4:] {
		acc = bits.RotateLeft32(acc+binary.LittleEndian.Uint32(p)*xxhP3, 17) * xxhP4
	}
	for _, b := range p {
		acc = bits.RotateLeft32(acc+uint32(b)*xxhP5, 11) * xxhP1
	}
	acc ^= acc >> 15
	acc *= xxhP2
	acc ^= acc >> 13
	acc *= xxhP3
	acc ^= acc >> 16
	return acc
}

// xxh32Sum is the hash of p.
func xxh32Sum(p []byte) uint32 {
	var h xxh32
	h.reset()
	h.Write(p)
	return h.Sum32()
}
