package libpq_test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgstage/pgstage/internal/libpq"
	"github.com/stretchr/testify/require"
)

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", `'plain'`},
		{"", `''`},
		{`it's`, `'it\'s'`},
		{`back\slash`, `'back\\slash'`},
		{`a b=c`, `'a b=c'`},
	} {
		require.Equal(t, tc.want, libpq.Quote(tc.in), "Quote(%q)", tc.in)
	}
}

// pgconn parses conninfo strings as libpq does: what Quote writes must read
// back as the value itself.
func TestQuoteRoundTrip(t *testing.T) {
	for _, v := range []string{"", "plain", "with space", `it's`, `back\slash`, `'\'`, `a=b c:d`, "tab\there"} {
		cfg, err := pgconn.ParseConfig("host=h user=" + libpq.Quote(v) + " password=" + libpq.Quote(v))
		require.NoError(t, err, v)
		if v != "" { // an empty user means the OS user's name to libpq
			require.Equal(t, v, cfg.User, "user %q", v)
		}
		require.Equal(t, v, cfg.Password, "password %q", v)
	}
}

func FuzzQuote(f *testing.F) {
	f.Add(`s3cr et'pa\ss:w=rd`)
	f.Fuzz(func(t *testing.T, v string) {
		cfg, err := pgconn.ParseConfig("host=h user=u password=" + libpq.Quote(v))
		if err != nil {
			return // pgconn refuses some bytes (NUL) in any spelling
		}
		if cfg.Password != v {
			t.Fatalf("Quote(%q) read back as %q", v, cfg.Password)
		}
	})
}
