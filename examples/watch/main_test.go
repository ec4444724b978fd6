package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReplayExitStatus: -replay of logs whose records cannot be read with
// the prefix in use exits non-zero and says what to set; readable logs
// give their events and exit 0.
func TestReplayExitStatus(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "watch")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	dir := t.TempDir()
	var log string
	for i := 0; i < 3; i++ {
		log += "2026-11-24 10:00:0" + string(rune('0'+i)) + " UTC:::[4250]:FATAL:  could not receive data from WAL stream: server closed the connection unexpectedly\n" +
			"2026-11-24 10:00:0" + string(rune('5'+i)) + " UTC:::[4301]:LOG:  started streaming WAL from primary at 0/3000000 on timeline 1\n"
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "postgresql.log"), []byte(log), 0o644))

	cmd := exec.Command(bin, "-log-dir", dir, "-replay", "-prefix", "%m [%p] ")
	out, err = cmd.CombinedOutput()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "want a non-zero exit, got %v:\n%s", err, out)
	assert.Equal(t, 1, exit.ExitCode())
	assert.Contains(t, string(out), "set Config.Prefix")

	out, err = exec.Command(bin, "-log-dir", dir, "-replay").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "fault (stream-lost)")
	assert.Contains(t, string(out), "recovered")
}
