package replica

import (
	"strings"
	"testing"

	"github.com/jackc/pgpassfile"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/pgconf"
)

var awkward = []string{
	"plain", `s3cr et'pa\ss:w=rd`, `'`, `\`, `\\'`, `a:b`, `x=y z`, `trailing\`, `''`, "tab\there", `C:\dir\`, "ünïcødé",
}

// The conninfo written into a configuration file, read back as the server
// reads the file and then as libpq reads conninfo, gives every value back.
func TestConninfoRoundTrip(t *testing.T) {
	for _, v := range awkward {
		t.Run(v, func(t *testing.T) {
			ci := conninfo(map[string]string{"host": "h", "user": v, "application_name": "app", "passfile": "/p/" + v})
			f, err := pgconf.Parse("postgresql.auto.conf", []byte("primary_conninfo = "+pgconf.Quote(ci)+"\n"))
			require.NoError(t, err)
			settings := f.Settings()
			require.Len(t, settings, 1)
			require.Equal(t, ci, settings[0].Value, "configuration quoting")

			pc, err := pgconn.ParseConfig(settings[0].Value)
			require.NoError(t, err)
			assert.Equal(t, v, pc.User, "user")
			assert.Equal(t, "app", pc.RuntimeParams["application_name"])
		})
	}
}

// A password file line gives back its password for the connection it is for,
// read by pgx's implementation of libpq's rules.
func TestPassfileLine(t *testing.T) {
	for _, pw := range awkward {
		t.Run(pw, func(t *testing.T) {
			user := "u:" + pw
			pf, err := pgpassfile.ParsePassfile(strings.NewReader(passfileLine("10.0.0.5", "5432", user, pw)))
			require.NoError(t, err)
			assert.Equal(t, pw, pf.FindPassword("10.0.0.5", "5432", "replication", user))
			assert.Empty(t, pf.FindPassword("10.0.0.6", "5432", "replication", user), "another host")
		})
	}
}

func FuzzConninfoRoundTrip(f *testing.F) {
	for _, v := range awkward {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if v == "" || strings.ContainsAny(v, "\x00") || !utf8Valid(v) {
			return // conninfo leaves out empty values; no file can carry a zero byte
		}
		ci := conninfo(map[string]string{"user": v, "host": "h"})
		file, err := pgconf.Parse("x.conf", []byte("primary_conninfo = "+pgconf.Quote(ci)+"\n"))
		if err != nil {
			t.Fatalf("quoted conninfo does not parse: %v", err)
		}
		if got := file.Settings()[0].Value; got != ci {
			t.Fatalf("configuration quoting: got %q, want %q", got, ci)
		}
		pc, err := pgconn.ParseConfig(ci)
		if err != nil {
			t.Fatalf("libpq quoting: %v", err)
		}
		if pc.User != v {
			t.Fatalf("user: got %q, want %q", pc.User, v)
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
