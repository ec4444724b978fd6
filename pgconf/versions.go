package pgconf

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// majorRange is a half-open range [From, To) of server major versions;
// To 0 means still current.
type majorRange struct{ From, To int }

func (r majorRange) has(major int) bool {
	return major >= r.From && (r.To == 0 || major < r.To)
}

// Behaviour that changed between majors. A Config whose major is unknown
// (no PG_VERSION) follows the current rules.
var (
	// canonicalize_path removed "." and ".." only at the end of a path
	// before 15; from 15 anywhere (and include paths then read as clean).
	trailingDotsOnly = majorRange{0, 15}
)

// unknownMajor stands for the current rules.
const unknownMajor = 1 << 30

// readMajor returns the major version in dataDir's PG_VERSION (9 for 9.x),
// or 0.
func readMajor(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION"))
	if err != nil {
		return 0
	}
	v := strings.TrimSpace(string(b))
	if i := strings.IndexByte(v, '.'); i >= 0 {
		v = v[:i]
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0
	}
	return n
}

// pathRules names the path rules of a major, to compare two majors.
func pathRules(major int) bool {
	if major == 0 {
		major = unknownMajor
	}
	return trailingDotsOnly.has(major)
}

// absLocation resolves a path named in the file calling, as the server's
// AbsoluteConfigLocation does: an absolute path as written, else joined to
// the calling file's directory and canonicalized.
func absLocation(location, calling string, major int) string {
	if filepath.IsAbs(location) {
		return location
	}
	return joinPath(parentDir(calling), location, major)
}

// joinPath joins as join_path_components then canonicalize_path do.
func joinPath(head, tail string, major int) string {
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
func canonicalize(p string, major int) string {
	if !pathRules(major) {
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
