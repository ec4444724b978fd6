package replica

import (
	"sort"
	"strings"

	"github.com/pgstage/pgstage/internal/libpq"
)

// conninfo renders keyword/value pairs as a libpq connection string, every
// value quoted, keywords in a fixed order so that the output is stable.
func conninfo(kv map[string]string) string {
	order := map[string]int{"host": 1, "port": 2, "user": 3, "passfile": 4, "application_name": 5}
	keys := make([]string, 0, len(kv))
	for k, v := range kv {
		if v != "" {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		oi, oj := order[keys[i]], order[keys[j]]
		if oi == 0 {
			oi = 100
		}
		if oj == 0 {
			oj = 100
		}
		if oi != oj {
			return oi < oj
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + libpq.Quote(kv[k])
	}
	return strings.Join(parts, " ")
}

// passfileField escapes one field of a password file line: libpq reads \
// as an escape and : as the field separator.
func passfileField(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `:`, `\:`)
	return r.Replace(v)
}

// passfileLine is the line of a password file that matches connections to
// host:port as user, for any database (physical replication connections
// match the database name "replication").
func passfileLine(host, port, user, password string) string {
	return passfileField(host) + ":" + passfileField(port) + ":*:" + passfileField(user) + ":" + passfileField(password) + "\n"
}
