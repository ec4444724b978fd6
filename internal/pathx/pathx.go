// Package pathx holds pgstage's one answer to "is this path inside that
// directory", used wherever a path from a backup, a configuration or a user
// must stay within a root.
package pathx

import (
	"path/filepath"
	"strings"
)

// Within reports whether path is dir or lies below it. Both are cleaned
// first; both must be absolute, or both relative to the same directory
// (an absolute path is never within a relative directory).
// It looks at names only: callers that must not follow symbolic links
// out of dir resolve them first (filepath.EvalSymlinks) or open
// components one by one.
func Within(path, dir string) bool {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
