package pgtest

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// ListFile reads a golden list: one item per line, blank lines and lines
// starting with # skipped. It fails the test when the file is missing or
// holds no item, so a golden comparison can never pass against nothing.
func ListFile(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var items []string
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			items = append(items, line)
		}
	}
	require.NotEmpty(t, items, "golden list %s holds no item", path)
	return items
}
