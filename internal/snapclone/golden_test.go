package snapclone_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgver"
	"github.com/pgstage/pgstage/internal/snapclone"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestVersionsGolden pins, per major 9.4 to 18, the base backup calls, the
// refusal on 9.4 and 9.5 and how clones are opened: 9.x cannot be run here,
// so these files are what reviews them.
func TestVersionsGolden(t *testing.T) {
	for _, m := range []pgver.Major{pgver.V9_4, pgver.V9_5, pgver.V9_6, pgver.V10, pgver.V11, pgver.V12,
		pgver.V13, pgver.V14, pgver.V15, pgver.V16, pgver.V17, pgver.V18} {
		t.Run(m.String(), func(t *testing.T) {
			got := snapclone.DescribeVersion(m)
			path := filepath.Join("testdata", "versions", m.String()+".golden")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test -update to make it")
			assert.Equal(t, string(want), got)
		})
	}
	assert.True(t, strings.Contains(snapclone.DescribeVersion(pgver.Major(903)), "not supported"))
}
