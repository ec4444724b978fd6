// Package pgver is pgstage's one representation of a PostgreSQL major
// version, its one parser, and the half-open version ranges that every
// package's rule table is keyed by.
//
// A major is numbered as server_version_num / 100 counts it: 904 for 9.4,
// 906 for 9.6, 1000 for 10, 1800 for 18. Before 10 the first two parts of a
// version name the major (9.4, 9.6); from 10 the first part alone does.
package pgver

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Major is a PostgreSQL major version (904 for 9.4, 1500 for 15). The zero
// value means unknown.
type Major int

// The majors pgstage knows of.
const (
	V9_4 Major = 904
	V9_5 Major = 905
	V9_6 Major = 906
	V10  Major = 1000
	V11  Major = 1100
	V12  Major = 1200
	V13  Major = 1300
	V14  Major = 1400
	V15  Major = 1500
	V16  Major = 1600
	V17  Major = 1700
	V18  Major = 1800

	// Oldest and Newest bound what pgstage supports.
	Oldest = V9_4
	Newest = V18
)

// Parse reads a version as PG_VERSION, "postgres --version", server_version
// and pg_controldata spell it: "9.6", "9.6.24", "15", "15.4", "17beta2",
// "16devel", "15.4 (Debian 15.4-1)", "postgres (PostgreSQL) 15.4". Before
// 10 the minor part is needed ("9" alone names no major).
func Parse(s string) (Major, error) {
	orig := s
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, ") "); i >= 0 && strings.HasPrefix(s, "postgres") {
		s = s[i+2:] // "postgres (PostgreSQL) 15.4"
	}
	// The version proper ends at the first character that is neither a
	// digit nor a dot: "15.4 (Debian ...)", "17beta2", "16devel".
	end := 0
	for end < len(s) && (s[end] == '.' || s[end] >= '0' && s[end] <= '9') {
		end++
	}
	parts := strings.Split(strings.TrimSuffix(s[:end], "."), ".")
	first, err := strconv.Atoi(parts[0])
	if err != nil || first <= 0 || first > 99 {
		return 0, fmt.Errorf("%q is not a PostgreSQL version", strings.TrimSpace(orig))
	}
	if first >= 10 {
		return Major(first * 100), nil
	}
	if len(parts) < 2 {
		return 0, fmt.Errorf("%q is not a PostgreSQL version (before 10 the major has two parts, as 9.6)", strings.TrimSpace(orig))
	}
	second, err := strconv.Atoi(parts[1])
	if err != nil || second > 99 {
		return 0, fmt.Errorf("%q is not a PostgreSQL version", strings.TrimSpace(orig))
	}
	return Major(first*100 + second), nil
}

// FromNum returns the major of a server_version_num (90624, 150004).
func FromNum(n int) Major {
	if n >= 100000 {
		return Major(n / 10000 * 100)
	}
	return Major(n / 100)
}

// ReadDataDir reads the major from dir's PG_VERSION.
func ReadDataDir(dir string) (Major, error) {
	b, err := os.ReadFile(filepath.Join(dir, "PG_VERSION"))
	if err != nil {
		return 0, err
	}
	m, err := Parse(string(b))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", filepath.Join(dir, "PG_VERSION"), err)
	}
	return m, nil
}

// String spells the major as PG_VERSION does: "9.6", "15"; "unknown" for 0.
func (m Major) String() string {
	switch {
	case m == 0:
		return "unknown"
	case m >= 1000:
		return strconv.Itoa(int(m) / 100)
	}
	return fmt.Sprintf("%d.%d", int(m)/100, int(m)%100)
}

// Supported reports whether pgstage supports m (9.4 to 18).
func (m Major) Supported() bool { return m >= Oldest && m <= Newest }

// MarshalText spells the major as String does, for JSON and logs.
func (m Major) MarshalText() ([]byte, error) {
	if m == 0 {
		return []byte{}, nil
	}
	return []byte(m.String()), nil
}

// UnmarshalText reads what MarshalText wrote; empty text is unknown.
func (m *Major) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*m = 0
		return nil
	}
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Range is a half-open range [From, To) of majors. A zero From has no lower
// bound, a zero To no upper bound.
type Range struct{ From, To Major }

// Contains reports whether m is in r.
func (r Range) Contains(m Major) bool {
	return m >= r.From && (r.To == 0 || m < r.To)
}

// Since is the range of m and every later major.
func Since(m Major) Range { return Range{From: m} }

// Before is the range of every major before m.
func Before(m Major) Range { return Range{To: m} }

// Row is one row of a rule table: the rules T that hold for the majors in
// Range.
type Row[T any] struct {
	Range
	Rules T
}

// Table is a package's rules per range of majors. Code asks For(major) and
// never compares version numbers itself.
type Table[T any] []Row[T]

// For returns the rules of the first row whose range holds m.
func (t Table[T]) For(m Major) (T, bool) {
	for _, r := range t {
		if r.Contains(m) {
			return r.Rules, true
		}
	}
	var zero T
	return zero, false
}
