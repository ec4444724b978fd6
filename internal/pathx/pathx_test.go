package pathx_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/pgstage/pgstage/internal/pathx"
)

func TestWithin(t *testing.T) {
	tests := []struct {
		path, dir string
		want      bool
	}{
		{"/a/b", "/a", true},
		{"/a", "/a", true},
		{"/a/", "/a", true},
		{"/a/b/../c", "/a", true},
		{"/ab", "/a", false},
		{"/a/../b", "/a", false},
		{"/b", "/a", false},
		{"/x/y", "/", true},
		{"a/b", "a", true},
		{"..", ".", false},
		{"../x", ".", false},
		{"x", ".", true},
		{"..x", ".", true},
		{"/a", "a", false},
	}
	for _, tt := range tests {
		got := pathx.Within(tt.path, tt.dir)
		assert.Equal(t, tt.want, got, "Within(%q, %q): got %v, want %v", tt.path, tt.dir, got, tt.want)
	}
}
