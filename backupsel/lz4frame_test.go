package backupsel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pierrec/lz4/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestXXH32(t *testing.T) {
	// Published values of XXH32 with seed 0.
	for in, want := range map[string]uint32{"": 0x02CC5D05, "a": 0x550D7456, "abc": 0x32D153FF} {
		assert.Equal(t, want, xxh32Sum([]byte(in)), "%q", in)
	}
	// Written in pieces, the same as at once.
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, cut := range []int{0, 1, 15, 16, 17, 100, 999} {
		h := newXXH32()
		h.Write(data[:cut])
		for _, b := range data[cut:] {
			h.Write([]byte{b})
		}
		assert.Equal(t, xxh32Sum(data), h.Sum32(), "cut at %d", cut)
	}
}

// lz4Corpus is what the frames below hold: tar-like runs of text and
// zeros, and random bytes the compressor stores as they are.
func lz4Corpus(size int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for b.Len() < size {
		switch rng.IntN(3) {
		case 0:
			b.WriteString(strings.Repeat("relation page tuple header ", 1+rng.IntN(400)))
		case 1:
			b.Write(make([]byte, rng.IntN(20000)))
		default:
			r := make([]byte, rng.IntN(300000))
			for i := range r {
				r[i] = byte(rng.Uint32())
			}
			b.Write(r)
		}
	}
	return b.Bytes()[:size]
}

// lz4CLI compresses data with the lz4 command and args.
func lz4CLI(t testing.TB, data []byte, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("lz4"); err != nil {
		t.Fatalf("lz4 command missing (scripts/install-postgres installs it): %v", err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	require.NoError(t, os.WriteFile(in, data, 0o600))
	out, err := exec.Command("lz4", append(append([]string{"-q", "-f"}, args...), in, in+".lz4")...).CombinedOutput()
	require.NoError(t, err, "lz4 %v: %s", args, out)
	z, err := os.ReadFile(in + ".lz4")
	require.NoError(t, err)
	return z
}

func decodeLZ4(z []byte) ([]byte, error) {
	return io.ReadAll(newLZ4Reader(bytes.NewReader(z)))
}

// TestLZ4Frames decodes frames the lz4 command writes with each of its
// frame options: block sizes, linked blocks (what pg_basebackup writes:
// 256 KiB, linked, no checksums), block and content checksums, content
// size; concatenated frames and a skippable frame between them.
func TestLZ4Frames(t *testing.T) {
	data := lz4Corpus(3<<20 + 12345)
	cases := [][]string{
		{"-B5", "-BD", "--no-frame-crc"}, // pg_basebackup's frames
		{"-B4", "-BD"},
		{"-B4"},
		{"-B6", "-BX"},
		{"-B7", "-BD", "-BX", "--content-size"},
		{"-9", "-B5", "-BD"},
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			z := lz4CLI(t, data, args...)
			got, err := decodeLZ4(z)
			require.NoError(t, err)
			require.True(t, bytes.Equal(data, got), "decoded %d bytes, want %d", len(got), len(data))
		})
	}
	t.Run("empty", func(t *testing.T) {
		got, err := decodeLZ4(lz4CLI(t, nil))
		require.NoError(t, err)
		require.Empty(t, got)
	})
	t.Run("concatenated, a skippable frame between", func(t *testing.T) {
		a, b := data[:1<<20], data[1<<20:]
		skip := binary.LittleEndian.AppendUint32(nil, lz4SkipMagic+3)
		skip = binary.LittleEndian.AppendUint32(skip, 5)
		skip = append(skip, "hello"...)
		z := append(append(lz4CLI(t, a, "-BD"), skip...), lz4CLI(t, b, "-B4")...)
		got, err := decodeLZ4(z)
		require.NoError(t, err)
		require.True(t, bytes.Equal(data, got))
	})
}

// TestLZ4Corrupt: every damaged frame is an error naming lz4, and a cut
// one io.ErrUnexpectedEOF; never a panic.
func TestLZ4Corrupt(t *testing.T) {
	data := lz4Corpus(1 << 20)
	z := lz4CLI(t, data, "-B5", "-BD", "-BX") // every byte of it is covered by a checksum
	for _, at := range []int{0, 4, 5, 6, 7, 11, 100, len(z) / 2, len(z) - 5, len(z) - 1} {
		bad := bytes.Clone(z)
		bad[at] ^= 0x10
		_, err := decodeLZ4(bad)
		require.Error(t, err, "flipped byte %d", at)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			assert.Contains(t, err.Error(), "lz4: ", "flipped byte %d", at)
		}
	}
	for _, n := range []int{1, 4, 6, 7, 100, len(z) / 2, len(z) - 4, len(z) - 1} {
		_, err := decodeLZ4(z[:n])
		require.ErrorIs(t, err, io.ErrUnexpectedEOF, "cut at %d of %d", n, len(z))
	}
	_, err := decodeLZ4(append(bytes.Clone(z), "junk"...))
	require.ErrorContains(t, err, "data after the last frame")
	_, err = decodeLZ4(append(bytes.Clone(z), "ju"...))
	require.ErrorContains(t, err, "after the last frame")
	_, err = decodeLZ4(nil)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	skip := binary.LittleEndian.AppendUint32(nil, lz4SkipMagic)
	_, err = decodeLZ4(binary.LittleEndian.AppendUint32(skip, 0))
	require.ErrorContains(t, err, "only skippable frames")

	// A block that decodes to more than the frame's block maximum (64
	// KiB here): a run of zeros (one literal, then a match to its end).
	frame := []byte{0x04, 0x22, 0x4d, 0x18, 0x60, 0x40} // independent blocks, 64 KiB
	frame = append(frame, byte(xxh32Sum(frame[4:6])>>8))
	block := []byte{0x1F, 0} // 1 literal, match length 15 + extra
	block = append(block, 1, 0)
	for extra := 100000 - 19; extra > 0; extra -= 255 {
		block = append(block, byte(min(extra, 255)))
		if extra == 255 {
			block = append(block, 0)
		}
	}
	block = append(block, 0x50, 0, 0, 0, 0, 0) // last sequence: 5 literals
	frame = binary.LittleEndian.AppendUint32(frame, uint32(len(block)))
	frame = append(append(frame, block...), 0, 0, 0, 0)
	_, err = decodeLZ4(frame)
	require.ErrorContains(t, err, "corrupt block")
}

// FuzzLZ4Reader feeds arbitrary bytes to the frame decoder: no panic, and
// where pierrec/lz4's own Reader accepts the input too, the same bytes.
func FuzzLZ4Reader(f *testing.F) {
	var w bytes.Buffer
	zw := lz4.NewWriter(&w)
	zw.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(true))
	zw.Write(lz4Corpus(3000)) // small: the fuzzer minimises what it finds
	zw.Close()
	f.Add(w.Bytes())
	f.Add([]byte{0x04, 0x22, 0x4d, 0x18, 0x40, 0x50, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := io.ReadAll(io.LimitReader(newLZ4Reader(bytes.NewReader(in)), 64<<20))
		if err != nil {
			return
		}
		want, werr := io.ReadAll(io.LimitReader(lz4.NewReader(bytes.NewReader(in)), 64<<20))
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("decoded %d bytes, pierrec/lz4 %d", len(got), len(want))
		}
	})
}

// BenchmarkLZ4Decode decodes 64 MiB in pg_basebackup's frames (256 KiB
// linked blocks, no checksums, as the lz4 command writes with -B5 -BD
// --no-frame-crc) and with a content checksum, with this decoder and with
// pierrec/lz4's Reader.
func BenchmarkLZ4Decode(b *testing.B) {
	data := lz4Corpus(64 << 20)
	frames := map[string][]byte{
		"pg_basebackup": lz4CLI(b, data, "-B5", "-BD", "--no-frame-crc"),
		"checksummed":   lz4CLI(b, data, "-B5", "-BD"),
	}
	buf := make([]byte, 1<<20)
	for _, frame := range []string{"pg_basebackup", "checksummed"} {
		z := frames[frame]
		for _, c := range []struct {
			name string
			open func(io.Reader) io.Reader
		}{
			{"ours", func(r io.Reader) io.Reader { return newLZ4Reader(r) }},
			{"pierrec", func(r io.Reader) io.Reader { return lz4.NewReader(r) }},
		} {
			b.Run(frame+"/"+c.name, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := io.CopyBuffer(io.Discard, c.open(bytes.NewReader(z)), buf); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
