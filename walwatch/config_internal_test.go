package walwatch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeConf(t *testing.T, path string, lines ...string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
}

// Settings in included files count, in the server's order: each include is
// read where it stands, relative paths are taken from the including file's
// directory, include_dir reads *.conf by name, postgresql.auto.conf is last.
func TestServerSettingsIncludes(t *testing.T) {
	data := t.TempDir()
	writeConf(t, filepath.Join(data, "postgresql.conf"),
		"log_line_prefix = '%m [%p] '",
		"include 'conf/logging.conf'",
		"include_if_exists = 'conf/missing.conf'",
		"include_dir 'conf.d'",
		"log_filename = 'main-%a.log'")
	// Relative to conf/, not to the data directory.
	writeConf(t, filepath.Join(data, "conf", "logging.conf"),
		"log_directory = 'from-include'",
		"log_line_prefix = '%t [%p]: '",
		"include 'nested.conf'")
	writeConf(t, filepath.Join(data, "conf", "nested.conf"), "log_destination = 'jsonlog'")
	writeConf(t, filepath.Join(data, "conf.d", "20-b.conf"), "log_directory = 'from-b'")
	writeConf(t, filepath.Join(data, "conf.d", "10-a.conf"), "log_directory = 'from-a'", "log_filename = 'a.log'")
	writeConf(t, filepath.Join(data, "conf.d", "30-c.conf.bak"), "log_directory = 'not-read'")
	writeConf(t, filepath.Join(data, "conf.d", ".hidden.conf"), "log_directory = 'not-read'")

	assert.Equal(t, map[string]string{
		"log_line_prefix": "%t [%p]: ",
		"log_destination": "jsonlog",
		"log_directory":   "from-b",
		"log_filename":    "main-%a.log",
	}, serverSettings(data))

	// postgresql.auto.conf wins over everything, includes in it too.
	writeConf(t, filepath.Join(data, "postgresql.auto.conf"), "include_dir = '"+filepath.Join(data, "auto.d")+"'")
	writeConf(t, filepath.Join(data, "auto.d", "x.conf"), "log_directory = 'from-auto'")
	assert.Equal(t, "from-auto", serverSettings(data)["log_directory"])
}

// An include loop stops at the server's nesting limit instead of recursing
// forever.
func TestServerSettingsIncludeLoop(t *testing.T) {
	data := t.TempDir()
	writeConf(t, filepath.Join(data, "postgresql.conf"), "include 'loop.conf'")
	writeConf(t, filepath.Join(data, "loop.conf"), "log_directory = 'loop'", "include 'loop.conf'")
	assert.Equal(t, "loop", serverSettings(data)["log_directory"])
}

// Values read as the server reads them (gucscan): octal and other escapes,
// doubled quotes, unquoted values, case-insensitive names, and lines the
// server would reject are skipped rather than half-read.
func TestServerSettingsGrammar(t *testing.T) {
	data := t.TempDir()
	writeConf(t, filepath.Join(data, "postgresql.conf"),
		`LOG_LINE_PREFIX = '\045m [\045p] it''s\t'`,
		`log_directory = logs/pg-15 # unquoted, comment after`,
		`log_filename 'a.log' 'b.log'`, // syntax error: skipped
		`log_filename = /abs/x.log`,    // an unquoted value cannot start with /: skipped
		`log_destination=csvlog`)
	assert.Equal(t, map[string]string{
		"log_line_prefix": "%m [%p] it's\t",
		"log_directory":   "logs/pg-15",
		"log_destination": "csvlog",
	}, serverSettings(data))
}
