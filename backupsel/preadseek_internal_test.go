package backupsel

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// preadSeeker must read and seek as the file itself would (bytes.Reader
// stands for it), across and inside its buffer, to the end and past it.
func TestPreadSeekerMatchesFile(t *testing.T) {
	data := make([]byte, 10_000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	p := filepath.Join(t.TempDir(), "a.tar")
	require.NoError(t, os.WriteFile(p, data, 0o600))
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	for _, bufSize := range []int{1, 512, 4096, 20_000} {
		got, want := newPreadSeeker(f, bufSize), bytes.NewReader(data)
		for i := range 2000 {
			if rng.IntN(3) == 0 {
				off, whence := int64(rng.IntN(3000)), rng.IntN(3)
				if whence == io.SeekEnd {
					off = -off
				}
				g, gerr := got.Seek(off, whence)
				w, werr := want.Seek(off, whence)
				require.Equal(t, w, g, "seek %d: buffer %d", i, bufSize)
				require.Equal(t, werr, gerr)
				continue
			}
			n := rng.IntN(3000)
			gb, wb := make([]byte, n), make([]byte, n)
			gn, gerr := io.ReadFull(got, gb)
			wn, werr := io.ReadFull(want, wb)
			require.Equal(t, wn, gn, "read %d: buffer %d", i, bufSize)
			require.Equal(t, werr, gerr, "read %d: buffer %d", i, bufSize)
			require.Equal(t, wb[:wn], gb[:gn])
		}
	}
}
