package pgstage_test

import (
	"archive/tar"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/stretchr/testify/require"
)

// listCompressed lists the entries of a compressed tar, by its name's suffix.
func listCompressed(t *testing.T, name string, r io.Reader) []string {
	t.Helper()
	var dr io.Reader
	switch {
	case strings.HasSuffix(name, ".gz"):
		zr, err := gzip.NewReader(r)
		require.NoError(t, err, name)
		dr = zr
	case strings.HasSuffix(name, ".lz4"):
		dr = lz4.NewReader(r)
	case strings.HasSuffix(name, ".zst"):
		zr, err := zstd.NewReader(r)
		require.NoError(t, err, name)
		defer zr.Close()
		dr = zr
	default:
		t.Fatalf("unexpected backup file %s", name)
	}
	var names []string
	tr := tar.NewReader(dr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		require.NoError(t, err, name)
		names = append(names, h.Name)
	}
}
