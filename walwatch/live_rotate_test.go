package walwatch_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/walwatch"
)

// TestLiveMoveRotation: a standby started as stage starts it (pg_ctl -l
// staging.log, no logging collector) has its log rotated the logrotate way
// without copytruncate (mv staging.log staging.log.1, new empty
// staging.log). The server keeps writing staging.log.1; an outage after the
// rotation must still raise a fault, and the recovery be seen.
func TestLiveMoveRotation(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		p, s := primaryAndStandby(t, major)
		appendConf(t, filepath.Join(s.data, "postgresql.conf"), "logging_collector = off\nlog_destination = 'stderr'\n")
		name := filepath.Join(s.logDir, "staging.log")
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		out, err := pgtest.Command(ctx, filepath.Join(s.bin, "pg_ctl"), "-D", s.data, "-l", name, "-w", "-t", "60", "start").CombinedOutput()
		require.NoError(t, err, "%s", out)

		// Watchers started before the rotation, in both modes.
		cs := watchModes(t, s.logDir, "staging.log")
		require.NoError(t, os.Rename(name, name+".1"))
		require.NoError(t, os.WriteFile(name, nil, 0o644))
		pgtest.Chown(t, name)
		step(t, cs, func() { p.Stop(t, "fast") }, fastStop)
		step(t, cs, func() { p.Start(t) }, "recovered")

		// copytruncate of the file the server writes (pg_ctl appends, so it
		// writes at the new end): the copy is not read as new, nothing is
		// repeated or lost.
		cs = watchModes(t, s.logDir, "staging.log*")
		step(t, cs, func() {
			data, err := os.ReadFile(name + ".1")
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(name+".2", data, 0o644))
			require.NoError(t, os.Truncate(name+".1", 0))
			p.Stop(t, "fast")
		}, fastStop)
		step(t, cs, func() { p.Start(t) }, "recovered")
	})
}

// watchModes watches the stderr files matching pattern in dir with fsnotify
// and by polling, and waits until both see the standby streaming.
func watchModes(t *testing.T, dir, pattern string) []*collector {
	t.Helper()
	var cs []*collector
	for _, mode := range followModes {
		cfg := mode.cfg
		cfg.LogDir, cfg.Format, cfg.Prefix, cfg.Pattern = dir, walwatch.FormatStderr, "%m [%p] ", pattern
		cs = append(cs, watchConfig(t, cfg))
	}
	for _, c := range cs {
		c.waitFor(t, 0, "streaming")
	}
	return cs
}

// primaryAndStandby starts a primary of major and makes (without starting
// it) a standby of it from a backup.
func primaryAndStandby(t *testing.T, major int) (*pgtest.Primary, *standby) {
	t.Helper()
	p := pgtest.StartPrimary(t, major, pgtest.Options{})
	form := pgtest.FormFetch
	if major > 15 {
		form = pgtest.FormServer
	}
	b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Layout: pgtest.LayoutDirect, Form: form})
	return p, makeStandby(t, p, b, "postgres")
}

// TestLiveSizeRotation: a standby whose logging collector rotates by size
// (log_rotation_size, files named by the pattern stage uses), written past
// the bound between outages while Prune keeps two files: every outage
// seen once, and the directory stays bounded.
func TestLiveSizeRotation(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		p, s := primaryAndStandby(t, major)
		appendConf(t, filepath.Join(s.data, "postgresql.conf"),
			"log_destination = 'stderr'\nlog_filename = 'staging-%Y%m%d-%H%M%S.log'\nlog_rotation_size = '8kB'\nlog_rotation_age = 0\nlog_truncate_on_rotation = off\n")
		s.start(t)
		const pattern = "staging-*.log"
		cs := watchModes(t, s.logDir, pattern)
		for round := 0; round < 4; round++ {
			// Past the bound: the collector opens a new file (a new name
			// once the second has changed).
			before := countFiles(t, s.logDir, pattern)
			for countFiles(t, s.logDir, pattern) == before {
				s.query(t, "DO $$BEGIN FOR i IN 1..100 LOOP RAISE LOG 'filler line % of round', i; END LOOP; END$$")
			}
			step(t, cs, func() { p.Exec(t, "SELECT pg_terminate_backend($1)", walsenderPID(t, p)) }, "fault stream-lost", "recovered")
			for _, c := range cs {
				c.mu.Lock()
				pos := c.events[len(c.events)-1].Position
				c.mu.Unlock()
				_, err := walwatch.Prune(s.logDir, pattern, 2, pos)
				require.NoError(t, err)
			}
		}
		assert.LessOrEqual(t, countFiles(t, s.logDir, pattern), 3, "Prune bounds the directory (2 kept, and the one being written)")
		for _, c := range cs {
			assert.Equal(t, []string{"streaming", "fault stream-lost", "recovered", "fault stream-lost", "recovered",
				"fault stream-lost", "recovered", "fault stream-lost", "recovered"}, c.kinds(), "%s", c.format)
			assert.Empty(t, c.errs)
		}
	})
}

func countFiles(t *testing.T, dir, pattern string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	require.NoError(t, err)
	return len(m)
}
