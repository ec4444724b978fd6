package pgconf_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/pgconf"
)

func TestParseValues(t *testing.T) {
	tests := []struct {
		name, in  string
		wantName  string
		wantValue string
	}{
		{"equals", "port = 5432\n", "port", "5432"},
		{"no equals", "port 5432\n", "port", "5432"},
		{"tight", "port=5432\n", "port", "5432"},
		{"case kept", "Port = 1\n", "Port", "1"},
		{"dotted", "pg_stat_statements.max = 10000\n", "pg_stat_statements.max", "10000"},
		{"unit", "shared_buffers = 128MB\n", "shared_buffers", "128MB"},
		{"unit time", "checkpoint_timeout=5min # c\n", "checkpoint_timeout", "5min"},
		{"hex", "x = 0x1F\n", "x", "0x1F"},
		{"negative", "x = -1\n", "x", "-1"},
		{"real", "x = 0.5\n", "x", "0.5"},
		{"real exp", "x = 1.5e-3\n", "x", "1.5e-3"},
		{"bare dot", "x = .\n", "x", "."},
		{"unquoted path", "x = a/b:c-d.e\n", "x", "a/b:c-d.e"},
		{"bool", "ssl = off\n", "ssl", "off"},
		{"quoted", "x = 'a b'\n", "x", "a b"},
		{"empty", "x = ''\n", "x", ""},
		{"doubled quote", "x = 'it''s'\n", "x", "it's"},
		{"backslash quote", `x = 'it\'s'` + "\n", "x", "it's"},
		{"escapes", `x = 'a\tb\nc\\d\x'` + "\n", "x", "a\tb\nc\\dx"},
		{"octal", `x = '\101\0602'` + "\n", "x", "A02"},
		{"octal zero ends", `x = 'ab\0cd'` + "\n", "x", "ab"},
		{"hash in quotes", "x = 'a#b' # c\n", "x", "a#b"},
		{"crlf", "x = 1\r\n", "x", "1"},
		{"no newline", "x = 1", "x", "1"},
		{"tabs", "\tx\t=\t1\t\n", "x", "1"},
		{"utf8", "x = café\n", "x", "café"},
		{"quoted next to name", "x'y'\n", "x", "y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := pgconf.Parse("t.conf", []byte(tt.in))
			require.NoError(t, err)
			s := f.Settings()
			require.Len(t, s, 1)
			assert.Equal(t, tt.wantName, s[0].Name)
			assert.Equal(t, tt.wantValue, s[0].Value)
			assert.Equal(t, tt.in, string(f.Bytes()))
		})
	}
}

func TestParseSyntaxErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     string
	}{
		{"no value", "port =\n", `pgconf: syntax error in file "t.conf" line 1, near end of line`},
		{"no value at eof", "a = 1\nport =", `pgconf: syntax error in file "t.conf" line 1, near end of line`},
		{"two values", "port = 1 2\n", `pgconf: syntax error in file "t.conf" line 1, near token "2"`},
		{"exponent without dot", "x = 1e5\n", `pgconf: syntax error in file "t.conf" line 1, near token "5"`},
		{"unterminated", "\nx = 'abc\n", `pgconf: syntax error in file "t.conf" line 2, near token "'"`},
		{"three parts", "a.b.c = 1\n", `pgconf: syntax error in file "t.conf" line 1, near token "a.b.c"`},
		{"number name", "1x = 1\n", `pgconf: syntax error in file "t.conf" line 1, near token "1x"`},
		{"sign alone", "x = -a\n", `pgconf: syntax error in file "t.conf" line 1, near token "-"`},
		{"double equals", "x == 1\n", `pgconf: syntax error in file "t.conf" line 1, near token "="`},
		{"zero byte", "x = \x00\n", `pgconf: syntax error in file "t.conf" line 1, near token ""`},
		{"trailing quote", "x = 'a''\n", `pgconf: syntax error in file "t.conf" line 1, near token "'"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := pgconf.Parse("t.conf", []byte(tt.in))
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
			var se *pgconf.SyntaxError
			require.True(t, errors.As(err, &se))
			assert.ErrorIs(t, err, pgconf.ErrSyntax)
			assert.Equal(t, tt.in, string(f.Bytes()))
		})
	}
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "''"},
		{"abc", "'abc'"},
		{"it's", "'it''s'"},
		{`a\b`, `'a\\b'`},
		{"a\nb\tc\rd", `'a\nb\tc\rd'`},
		{"\x01\x7f", `'\001\177'`},
		{"host=x password='p w' user=u", `'host=x password=''p w'' user=u'`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			assert.Equal(t, tt.want, pgconf.Quote(tt.in))
			f, err := pgconf.Parse("q", []byte("x = "+pgconf.Quote(tt.in)))
			require.NoError(t, err)
			assert.Equal(t, tt.in, f.Settings()[0].Value)
		})
	}
}
