package gucscan_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/pgstage/pgstage/internal/gucscan"
)

// The per-line rule as guc-file.l reads it; the full corpus against real
// servers' pg_file_settings is pgconf's (TestServer).
func TestParseLine(t *testing.T) {
	tests := []struct {
		name, line string
		kind       gucscan.LineKind
		key, value string
	}{
		{"blank", "   # only a comment", gucscan.Blank, "", ""},
		{"quoted with escapes", `log_line_prefix = '\045m [%p] it''s\n'`, gucscan.Setting, "log_line_prefix", "%m [%p] it's\n"},
		{"no equals", "port 5433", gucscan.Setting, "port", "5433"},
		{"unit", "shared_buffers=128MB # comment", gucscan.Setting, "shared_buffers", "128MB"},
		{"unquoted path", "log_directory = pg_log/x-1", gucscan.Setting, "log_directory", "pg_log/x-1"},
		{"qualified", "my.setting = on", gucscan.Setting, "my.setting", "on"},
		{"zero byte ends the value", `x = 'ab\0cd'`, gucscan.Setting, "x", "ab"},
		{"absolute unquoted", "log_directory = /var/log", gucscan.Invalid, "", ""},
		{"two values", "x = 'a' 'b'", gucscan.Invalid, "", ""},
		{"no value", "x =", gucscan.Invalid, "", ""},
		{"unterminated", "x = 'a", gucscan.Invalid, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := []byte(tt.line)
			l := gucscan.ParseLine(s)
			assert.Equal(t, tt.kind, l.Kind)
			if tt.kind == gucscan.Setting {
				assert.Equal(t, tt.key, string(s[l.NameStart:l.NameEnd]))
				assert.Equal(t, tt.value, l.Value(s))
			}
		})
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{"a = 'b''c\\\\d'", "x 0x1Fkb", "y = -1.5e3", "z = a:b/c", "#", "= x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l := gucscan.ParseLine([]byte(s))
		if l.Kind == gucscan.Setting {
			_ = l.Value([]byte(s)) // spans inside the line: no panic
		}
	})
}
