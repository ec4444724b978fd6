package backupsel

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseTablespaceMap(t *testing.T) {
	tests := []struct {
		name  string
		major int
		data  string
		want  []Tablespace
	}{
		{"plain", 15, "16400 /srv/ts\n16401 /srv/ts two\n", []Tablespace{{16400, "/srv/ts"}, {16401, "/srv/ts two"}}},
		{"escaped newline 14+", 14, "16400 /srv/a\\\nb\n16401 /x\n", []Tablespace{{16400, "/srv/a\nb"}, {16401, "/x"}}},
		{"escaped CR and backslash 14+", 18, "16400 /srv/a\\\rb\\\\c\n", []Tablespace{{16400, "/srv/a\rb\\c"}}},
		{"backslash before other 14+ dropped", 16, "16400 /srv/a\\b\n", []Tablespace{{16400, "/srv/ab"}}},
		{"escaped newline before 14", 13, "16400 /srv/a\\\nb\n16401 /x\n", []Tablespace{{16400, "/srv/a\nb"}, {16401, "/x"}}},
		{"backslash kept before 14", 10, "16400 /srv/a\\\\b\\c\n", []Tablespace{{16400, "/srv/a\\\\b\\c"}}},
		{"CRLF line ends", 15, "16400 /srv/ts\r\n16401 /x\r\n", []Tablespace{{16400, "/srv/ts"}, {16401, "/x"}}},
		{"no final newline", 15, "16400 /srv/ts", []Tablespace{{16400, "/srv/ts"}}},
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
		_, err := parseTablespaceMap([]byte(bad), 15)
		assert.ErrorContains(t, err, "bad line", "%q", bad)
	}
	_, err := formatTablespaceMap([]Tablespace{{16400, "/srv/a\\"}}, 13)
	assert.ErrorContains(t, err, "backslash before a line end")
}

// FuzzTablespaceMap checks the parser never panics and that what it reads
// is written back in a form it reads the same way.
func FuzzTablespaceMap(f *testing.F) {
	f.Add([]byte("16400 /srv/a\\\nb\\\\c\r\n16401 /x\n"), 14)
	f.Add([]byte("16400 /srv/a\\\nb\\c\n"), 13)
	f.Add([]byte("16400 /srv/a\\"), 13)
	f.Fuzz(func(t *testing.T, data []byte, major int) {
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
