package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/stage"
)

// The staging server's log bound comes from log_rotation_kb and log_keep;
// left out, the stage defaults apply (zero here).
func TestLoadLogBound(t *testing.T) {
	for _, c := range []struct {
		extra string
		want  stage.LogsConfig
	}{
		{``, stage.LogsConfig{}},
		{`, "log_rotation_kb": 64, "log_keep": 2`, stage.LogsConfig{RotationSize: 64 << 10, Keep: 2}},
	} {
		t.Setenv("CONFIG_TEST_PASSWORD", "s3cret")
		s, err := load(writeConfig(t, `{
  "backup_path": "/backups/sales",
  "source": {"host": "db1", "user": "replicator"},
  "staging": {"data_dir": "/mnt/staging/sales", "port": 5433, "bin_dir": "/usr/lib/postgresql/15/bin"},
  "password_env": "CONFIG_TEST_PASSWORD"`+c.extra+`
}`))
		require.NoError(t, err)
		require.Equal(t, c.want, s.stage.Watch.Logs)
	}
}
