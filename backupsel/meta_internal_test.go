package backupsel

import (
	"testing"

	"github.com/pgstage/pgstage/internal/pgver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseTablespaceMap(t *testing.T) {
	tests := []struct {
		name  string
		major pgver.Major
		data  string
		want  []Tablespace
	}{
		{"plain", pgver.V15, "16400 /srv/ts\n16401 /srv/ts two\n", []Tablespace{{16400, "/srv/ts"}, {16401, "/srv/ts two"}}},
		{"escaped newline 14+", pgver.V14, "16400 /srv/a\\\nb\n16401 /x\n", []Tablespace{{16400, "/srv/a\nb"}, {16401, "/x"}}},
		{"escaped CR and backslash 14+", pgver.V18, "16400 /srv/a\\\rb\\\\c\n", []Tablespace{{16400, "/srv/a\rb\\c"}}},
		{"backslash before other 14+ dropped", pgver.V16, "16400 /srv/a\\b\n", []Tablespace{{16400, "/srv/ab"}}},
		{"escaped newline before 14", pgver.V13, "16400 /srv/a\\\nb\n16401 /x\n", []Tablespace{{16400, "/srv/a\nb"}, {16401, "/x"}}},
		{"backslash kept before 14", pgver.V10, "16400 /srv/a\\\\b\\c\n", []Tablespace{{16400, "/srv/a\\\\b\\c"}}},
		{"CRLF line ends", pgver.V15, "16400 /srv/ts\r\n16401 /x\r\n", []Tablespace{{16400, "/srv/ts"}, {16401, "/x"}}},
		{"no final newline", pgver.V15, "16400 /srv/ts", []Tablespace{{16400, "/srv/ts"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTablespaceMap([]byte(tc.data), tc.major)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			text, err := formatTablespaceMap(got, tc.major)
			require.NoError(t, err)
			back, err := parseTablespaceMap(text, tc.major)
			require.NoError(t, err)
			assert.Equal(t, tc.want, back, "format then parse round-trips")
		})
	}
	for _, bad := range []string{"x /a\n", "16400\n", "16400 \n"} {
		_, err := parseTablespaceMap([]byte(bad), pgver.V15)
		assert.ErrorContains(t, err, "bad line", "%q", bad)
	}
	_, err := formatTablespaceMap([]Tablespace{{16400, "/srv/a\\"}}, pgver.V13)
	assert.ErrorContains(t, err, "backslash before a line end")
}

// FuzzTablespaceMap checks the parser never panics and that what it reads
// is written back in a form it reads the same way.
func FuzzTablespaceMap(f *testing.F) {
	f.Add([]byte("16400 /srv/a\\\nb\\\\c\r\n16401 /x\n"), int(pgver.V14))
	f.Add([]byte("16400 /srv/a\\\nb\\c\n"), int(pgver.V13))
	f.Add([]byte("16400 /srv/a\\"), int(pgver.V13))
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		major := pgver.Major(n)
		if !major.Supported() {
			return
		}
		got, err := parseTablespaceMap(data, major)
		if err != nil {
			return
		}
		text, err := formatTablespaceMap(got, major)
		if err != nil {
			return // a location this major cannot read back
		}
		back, err := parseTablespaceMap(text, major)
		if err != nil {
			t.Fatalf("re-parsing %q: %v", text, err)
		}
		if len(back) != len(got) {
			t.Fatalf("got %q, re-parsed %q", got, back)
		}
		for i := range got {
			if got[i] != back[i] {
				t.Fatalf("got %q, re-parsed %q", got, back)
			}
		}
	})
}
