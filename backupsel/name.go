package backupsel

import (
	"strings"
	"time"
)

// Layout says where a backup was found inside the backup path.
type Layout int

// Layouts, in precedence order (highest first).
const (
	// LayoutFolder is a subfolder named PostgreSQL_T<YYYYMMDDhhmmss>.
	LayoutFolder Layout = iota + 1
	// LayoutDirect is backup files placed directly in the backup path.
	LayoutDirect
	// LayoutZip is a file named PostgreSQL_T<YYYYMMDD>.zip with the backup files at its root.
	LayoutZip
)

func (l Layout) String() string {
	switch l {
	case LayoutFolder:
		return "folder PostgreSQL_T<YYYYMMDDhhmmss>"
	case LayoutDirect:
		return "files directly in the backup path"
	case LayoutZip:
		return "zip PostgreSQL_T<YYYYMMDD>.zip"
	}
	return "unknown layout"
}

const namePrefix = "PostgreSQL_T"

// parseName reports whether name is a backup folder name
// (PostgreSQL_T<YYYYMMDDhhmmss>) or a backup zip name (PostgreSQL_T<YYYYMMDD>.zip),
// and the time it carries (UTC, since the name has no zone; only the order
// matters). A name that looks like one of them but is not valid (wrong digit
// count, month 13, wrong case) yields ok false and a reason; a name that does not
// look like a backup at all yields ok false and an empty reason.
func parseName(name string) (layout Layout, t time.Time, ok bool, reason string) {
	if len(name) < len(namePrefix) || !strings.EqualFold(name[:len(namePrefix)], namePrefix) {
		return 0, time.Time{}, false, ""
	}
	if name[:len(namePrefix)] != namePrefix {
		return 0, time.Time{}, false, "name must start with " + namePrefix + " exactly (case matters)"
	}
	rest := name[len(namePrefix):]
	digits, isZip := rest, false
	if len(rest) >= 4 && strings.EqualFold(rest[len(rest)-4:], ".zip") {
		digits, isZip = rest[:len(rest)-4], true
		if rest[len(rest)-4:] != ".zip" {
			return 0, time.Time{}, false, "zip name must end in .zip (lower case)"
		}
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, time.Time{}, false, "expected only digits after " + namePrefix
		}
	}
	layout, want, format := LayoutFolder, 14, "20060102150405"
	if isZip {
		layout, want, format = LayoutZip, 8, "20060102"
	}
	if len(digits) != want {
		if isZip {
			return 0, time.Time{}, false, "a zip name needs 8 digits YYYYMMDD after " + namePrefix
		}
		return 0, time.Time{}, false, "a folder name needs 14 digits YYYYMMDDhhmmss after " + namePrefix
	}
	t, err := time.Parse(format, digits)
	if err != nil {
		return 0, time.Time{}, false, "not a valid date/time: " + digits
	}
	return layout, t, true, ""
}
