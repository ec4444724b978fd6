// Package libpq holds the quoting rules of libpq's connection strings, which
// replica (primary_conninfo), stage (its own replication and SQL
// connections) and the test harness all write.
package libpq

import "strings"

// Quote quotes a conninfo value with libpq's rules: single quotes around it,
// and a backslash before each ' and \ inside. This is not SQL quoting: libpq
// does not read a doubled single quote as a quote.
func Quote(v string) string {
	var b strings.Builder
	b.Grow(len(v) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\'' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('\'')
	return b.String()
}
