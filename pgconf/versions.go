package pgconf

import (
	"path/filepath"
	"strings"

	"github.com/pgstage/pgstage/internal/pgver"
)

// pathRules are how the server canonicalizes the paths of include
// directives in a major.
type pathRules struct {
	// trailingDotsOnly: canonicalize_path removed "." and ".." only at the
	// end of a path before 15; from 15 anywhere (include paths then read as
	// clean).
	trailingDotsOnly bool
}

// pathRuleTable keys the path rules by major. A Config whose major is
// unknown (no PG_VERSION) follows the current rules.
var pathRuleTable = pgver.Table[pathRules]{
	{Range: pgver.Before(pgver.V15), Rules: pathRules{trailingDotsOnly: true}},
	{Range: pgver.Since(pgver.V15), Rules: pathRules{}},
}

// rulesFor returns the path rules of major (0: unknown, the current ones).
func rulesFor(major pgver.Major) pathRules {
	if major == 0 {
		major = pgver.Newest
	}
	r, _ := pathRuleTable.For(major)
	return r
}

// readMajor returns the major in dataDir's PG_VERSION, or 0.
func readMajor(dataDir string) pgver.Major {
	m, err := pgver.ReadDataDir(dataDir)
	if err != nil {
		return 0
	}
	return m
}

// absLocation resolves a path named in the file calling, as the server's
// AbsoluteConfigLocation does: an absolute path as written, else joined to
// the calling file's directory and canonicalized.
func absLocation(location, calling string, major pgver.Major) string {
	if filepath.IsAbs(location) {
		return location
	}
	return joinPath(parentDir(calling), location, major)
}

// joinPath joins as join_path_components then canonicalize_path do.
func joinPath(head, tail string, major pgver.Major) string {
	for len(tail) >= 2 && tail[0] == '.' && tail[1] == '/' {
		tail = tail[2:] // join_path_components drops leading "./"
	}
	p := head
	if tail != "" {
		p = head + "/" + tail
	}
	return canonicalize(p, major)
}

// parentDir is get_parent_directory: the path without its last component.
func parentDir(p string) string {
	return trimTrailingSep(trimDirectory(p))
}

// canonicalize is the server's canonicalize_path for an absolute path.
func canonicalize(p string, major pgver.Major) string {
	if !rulesFor(major).trailingDotsOnly {
		return filepath.Clean(p)
	}
	p = trimTrailingSep(p)
	var b strings.Builder
	wasSep := false
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && wasSep {
			continue
		}
		wasSep = p[i] == '/'
		b.WriteByte(p[i])
	}
	p = b.String()
	pending := 0
	for {
		switch {
		case strings.HasSuffix(p, "/."):
			p = trimDirectory(p)
		case strings.HasSuffix(p, "/.."):
			p = trimDirectory(p)
			pending++
		case pending > 0 && p != "":
			p = trimDirectory(p)
			pending--
		default:
			if p == "" {
				return "/"
			}
			return p
		}
	}
}

// trimDirectory drops the last component and the separators before it.
func trimDirectory(p string) string {
	if p == "" {
		return p
	}
	i := len(p) - 1
	for i > 0 && p[i] == '/' {
		i--
	}
	for i > 0 && p[i] != '/' {
		i--
	}
	return p[:i]
}

func trimTrailingSep(p string) string {
	for len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}
