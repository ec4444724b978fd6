package secret_test

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/pgstage/pgstage/internal/secret"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRedact(t *testing.T) {
	pw := `s3cr et'pa\ss:w=rd`
	for _, tc := range []struct{ name, in string }{
		{"raw", "password=" + pw + " host=x"},
		{"libpq", `password='s3cr et\'pa\\ss:w=rd' host=x`},
		{"passfile", `h:5432:*:u:s3cr et'pa\\ss\:w=rd`},
		{"conf", `primary_conninfo = 'password=''s3cr et\\''pa\\\\ss:w=rd'''`},
		{"twice", pw + " and " + pw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := secret.Redact(tc.in, pw)
			assert.NotContains(t, got, "s3cr et", "got %q", got)
			assert.Contains(t, got, secret.Mask)
			assert.False(t, secret.Contains(got, pw), "got %q", got)
		})
	}
	t.Run("short", func(t *testing.T) {
		assert.Equal(t, "b"+secret.Mask+"d", secret.Redact("bad", "a"))
	})
	t.Run("empty", func(t *testing.T) {
		assert.Equal(t, "text", secret.Redact("text", ""))
	})
}

func TestError(t *testing.T) {
	pw := "hunter22"
	base := fmt.Errorf("connect password=%s: %w", pw, fs.ErrPermission)
	err := secret.Error(base, pw)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), pw)
	assert.True(t, errors.Is(err, fs.ErrPermission), "sentinel still matches")

	clean := errors.New("no secret here")
	assert.Same(t, clean, secret.Error(clean, pw))
	assert.NoError(t, secret.Error(nil, pw))
}

func FuzzRedact(f *testing.F) {
	f.Add("password=x'y\\z:w", `x'y\z:w`)
	f.Add("aaaa", "a")
	f.Fuzz(func(t *testing.T, text, pw string) {
		// A mask beside text can spell a password that has a "*" in it without
		// leaking anything; the property holds for the others.
		if pw == "" || strings.Contains(pw, "*") {
			return
		}
		got := secret.Redact(text+pw+text, pw)
		if strings.Contains(got, pw) {
			t.Fatalf("Redact(%q, %q) = %q still holds the password", text+pw+text, pw, got)
		}
	})
}
