package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgstage/pgstage/stage"
	"github.com/stretchr/testify/require"
)

const goodConfig = `{
  "backup_path": "/backups/sales",
  "source": {"host": "db1", "user": "replicator", "connect_timeout": "5s"},
  "staging": {"data_dir": "/mnt/staging/sales", "port": 5433, "bin_dir": "/usr/lib/postgresql/15/bin"},
  "settings": [{"name": "fsync", "value": "off"}],
  "hooks": {"post_sync": [{"command": "true"}]},
  "stream_timeout": "90s", "backup_mode": "take", "auto_heal": true,
  "backup_settle": "-1s",
  "password_env": "CONFIG_TEST_PASSWORD",
  "http_address": "127.0.0.1:9187",
  "log_format": "json"
}`

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "pgstage.json")
	require.NoError(t, os.WriteFile(name, []byte(text), 0o600))
	return name
}

func TestLoad(t *testing.T) {
	t.Setenv("CONFIG_TEST_PASSWORD", "s3cret")
	s, err := load(writeConfig(t, goodConfig))
	require.NoError(t, err)
	require.Equal(t, 90*time.Second, s.stage.StreamTimeout)
	require.Equal(t, -time.Second, s.stage.Restore.Settle)
	require.Equal(t, 5*time.Second, s.stage.Source.ConnectTimeout)
	require.Equal(t, "s3cret", s.stage.Source.Password.Reveal())
	require.Equal(t, "true", s.stage.Hooks.PostSync[0].Command)
	require.Equal(t, "127.0.0.1:9187", s.httpAddress)
	require.Equal(t, "json", s.logFormat)
	require.Equal(t, stage.BackupTake, s.stage.BackupMode)
	require.True(t, s.stage.Heal.Auto)
	_, stillSet := os.LookupEnv("CONFIG_TEST_PASSWORD")
	require.False(t, stillSet, "the password leaves the environment hooks inherit")
}

// TestLoadErrors checks that each bad file is refused with a message that
// names the field and says what to do.
func TestLoadErrors(t *testing.T) {
	// edit replaces old by new in goodConfig.
	edit := func(old, new string) string {
		require.Contains(t, goodConfig, old)
		return strings.Replace(goodConfig, old, new, 1)
	}
	cases := []struct {
		name string
		text string
		want []string
	}{
		{"unknown top-level field", edit(`"log_format"`, `"stream_timout": "1s", "log_format"`),
			[]string{`unknown field "stream_timout"`, "the file's top level takes", "stream_timeout"}},
		{"unknown nested field", edit(`"host": "db1"`, `"hots": "db1"`),
			[]string{`unknown field "source.hots"`, "source takes host, port"}},
		{"unknown field in a list", edit(`"value": "off"`, `"valeu": "off"`),
			[]string{`unknown field "settings[0].valeu"`}},
		{"duration as nanoseconds", edit(`"90s"`, `90000000000`),
			[]string{"stream_timeout is a JSON number, not a duration", `"30s"`}},
		{"bad duration", edit(`"5s"`, `"5 seconds"`),
			[]string{`source.connect_timeout "5 seconds" is not a duration`, `"30s"`}},
		{"missing required fields", edit(`"backup_path": "/backups/sales",`, ``),
			[]string{"backup_path is missing: name the one directory"}},
		{"missing port", edit(`"port": 5433, `, ``),
			[]string{"staging.port is missing: choose a free TCP port"}},
		{"password in the file", edit(`"user": "replicator"`, `"user": "replicator", "password": "s3cret"`),
			[]string{"source.password: the password never goes in the configuration file", "password_file"}},
		{"password at the top level", edit(`"log_format"`, `"password": "s3cret", "log_format"`),
			[]string{"password: the password never goes in the configuration file"}},
		{"wrong type", edit(`"port": 5433`, `"port": "5433"`),
			[]string{"staging.port is a JSON string: write a whole number"}},
		{"syntax", edit(`"log_format": "json"`, `"log_format": "json",`),
			[]string{":12:1: ", "fix the JSON syntax"}},
		{"both password sources", edit(`"password_env"`, `"password_file": "/x", "password_env"`),
			[]string{"password_env and password_file are both set"}},
		{"bad backup mode", edit(`"backup_mode": "take"`, `"backup_mode": "fetch"`),
			[]string{`backup_mode "fetch" is not a backup mode`, `"take"`}},
		{"bad log format", edit(`"log_format": "json"`, `"log_format": "xml"`),
			[]string{`log_format "xml" is not a log format`}},
		{"bad http address", edit(`"127.0.0.1:9187"`, `"9187"`),
			[]string{`http_address "9187" is not host:port`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CONFIG_TEST_PASSWORD", "s3cret")
			name := writeConfig(t, tc.text)
			_, err := load(name)
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.True(t, strings.HasPrefix(err.Error(), name), "the message names the file: %v", err)
			require.NotContains(t, err.Error(), "s3cret")
		})
	}
}

func TestLoadPasswordFile(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "source-password")
	require.NoError(t, os.WriteFile(pw, []byte("s3cret\n"), 0o600))
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	text := strings.Replace(goodConfig, `"password_env": "CONFIG_TEST_PASSWORD"`, `"password_file": "$CREDENTIALS_DIRECTORY/source-password"`, 1)
	s, err := load(writeConfig(t, text))
	require.NoError(t, err)
	require.Equal(t, "s3cret", s.stage.Source.Password.Reveal())

	require.NoError(t, os.Chmod(pw, 0o644))
	_, err = load(writeConfig(t, text))
	require.ErrorContains(t, err, "readable by every user")
}
