package pgconf_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/pgconf"
)

func fuzzSeeds(f *testing.F) {
	seeds := []string{
		"port = 5432\n", "port 5432", "x = 'it''s \\'q\\' \\101'\n", "a.b = 1e5\n", "x = 'unterminated\n",
		"#port = 5432 # c\nssl = off\r\n", "  a=1#c\n\n\tb 2\n", pgconf.CommentMark + "port = 1\n",
		pgconf.BlockBegin + "\nx = 1\n" + pgconf.BlockEnd + "\n", "x = 0x1Fkb\ny = -.5e+3\n", "\xff\xfe = \x80\n",
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.conf"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			seeds = append(seeds, string(b))
		}
	}
	for _, s := range seeds {
		f.Add([]byte(s), "port", "5433")
		f.Add([]byte(s), "x", "a 'b' \\c\n\x01")
	}
}

// FuzzParse: Parse never panics and gives back the bytes it was given.
func FuzzParse(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, _, _ string) {
		file, err := pgconf.Parse("f.conf", data)
		require.NotNil(t, file)
		require.True(t, bytes.Equal(data, file.Bytes()), "round trip changed the bytes")
		if err != nil {
			assert.ErrorIs(t, err, pgconf.ErrSyntax)
		}
		for _, s := range file.Settings() {
			require.Positive(t, s.Line)
		}
	})
}

// FuzzSet: after Set, reading the file back gives the value; every other
// setting keeps its value; Comment then Uncomment gives back the bytes.
func FuzzSet(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, name, value string) {
		if bytes.Contains(bytes.ToLower(data), []byte("include")) {
			t.Skip("includes would read other files")
		}
		dir := t.TempDir()
		conf := filepath.Join(dir, "postgresql.conf")
		require.NoError(t, os.WriteFile(conf, data, 0o600))
		c, _ := pgconf.Load(dir)
		require.NotNil(t, c)
		before := map[string]string{}
		for _, s := range c.MainFile().Settings() {
			before[strings.ToLower(s.Name)] = s.Value
		}

		changed, err := c.Comment(name)
		if err != nil {
			require.ErrorIs(t, err, pgconf.ErrInvalidName)
			return
		}
		_, err = c.Uncomment(name)
		require.NoError(t, err)
		if changed && !bytes.Contains(data, []byte(pgconf.CommentMark)) {
			require.Equal(t, string(data), string(c.MainFile().Bytes()), "Comment then Uncomment must restore the bytes")
		}

		_, err = c.Set(name, value)
		if err != nil {
			require.ErrorIs(t, err, pgconf.ErrInvalidValue)
			return
		}
		require.NoError(t, c.Save())
		c2, _ := pgconf.Load(dir)
		require.NotNil(t, c2)
		got, ok := c2.Get(name)
		require.True(t, ok)
		require.Equal(t, value, got.Value)
		for n, v := range before {
			if n == strings.ToLower(name) {
				continue
			}
			s, ok := c2.Get(n)
			require.True(t, ok, n)
			require.Equal(t, v, s.Value, n)
		}
	})
}
