package snapclone

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/pgstage/pgstage/internal/atomicfile"
	"github.com/pgstage/pgstage/pgconf"
)

// recoveryPlan is how a clone of a snapshot with consistency cons is
// opened: settings for the configuration, and the files to write (name ->
// content).
//
// A snapshot with a backup_label gets archive recovery (recovery.signal,
// or recovery.conf before 12) with no target: it replays the WAL the
// snapshot holds, which ends in the segment of the backup's stop point,
// refuses to open if that does not reach consistency ("WAL ends before
// consistent recovery point"), and at its end promotes. A target of
// 'immediate' is not used: when the stop point falls on a segment boundary
// (an idle source's last record a segment switch) and the next segment
// does not exist yet, recovery reaches consistency only after the last
// record, never checks the target again and fails with "recovery ended
// before configured recovery target was reached".
func recoveryPlan(r rules, cons Consistency) (settings [][2]string, files map[string]string) {
	if cons != ConsistentBackup {
		// Crash recovery replays what pg_wal holds and opens read-write.
		return nil, nil
	}
	// Archive recovery needs a restore_command, even with all the WAL in
	// pg_wal: one that always fails sends the server there.
	rec := [][2]string{{"restore_command", "false"}}
	if r.recoveryConf {
		var b strings.Builder
		b.WriteString("# pgstage clone: replay the snapshot's WAL, then promote\n")
		for _, kv := range rec {
			fmt.Fprintf(&b, "%s = %s\n", kv[0], pgconf.Quote(kv[1]))
		}
		return nil, map[string]string{"recovery.conf": b.String()}
	}
	return rec, map[string]string{r.signalFile: ""}
}

// cloneSettings are the settings a clone gets before the caller's: its own
// port and sockets, no archiving, no wait for a synchronous standby it
// does not have, and its log in its own file (Clone.LogFile, pg_ctl's):
// a staging's logging collector writes to an absolute log_directory, where
// the staging's watcher would read the clone's promotion as its own.
func cloneSettings(c *Clone) [][2]string {
	return [][2]string{
		{"port", strconv.Itoa(c.Port)},
		{"unix_socket_directories", c.SocketDir},
		{"listen_addresses", c.ListenAddresses},
		{"archive_mode", "off"},
		{"synchronous_standby_names", ""},
		{"logging_collector", "off"},
		{"log_destination", "stderr"},
	}
}

// configureClone edits the clone's configuration with pgconf and writes
// its recovery files. Files outside the clone's data directory are never
// written: a setting in effect from one fails the clone, naming it.
func (s *Staging) configureClone(c *Clone, snap *Snapshot, r rules, opts CloneOptions) error {
	conf, err := pgconf.Load(c.DataDir)
	if err != nil {
		return fmt.Errorf("snapclone: the clone's configuration: %w", err)
	}
	conf.Root = c.DataDir
	for _, name := range r.standbySettings {
		if _, err := conf.Comment(name); err != nil {
			return fmt.Errorf("snapclone: commenting out %s in the clone: %w", name, err)
		}
	}
	recSettings, files := recoveryPlan(r, snap.Consistency)
	settings := append(cloneSettings(c), recSettings...)
	names := make([]string, 0, len(opts.Settings))
	for k := range opts.Settings {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		settings = append(settings, [2]string{k, opts.Settings[k]})
	}
	for _, kv := range settings {
		if _, err := conf.Set(kv[0], kv[1]); err != nil {
			return fmt.Errorf("snapclone: setting %s in the clone: %w", kv[0], err)
		}
	}
	if err := conf.Save(); err != nil {
		return noSpace(fmt.Errorf("snapclone: saving the clone's configuration: %w", err), c.DataDir, "saving the configuration")
	}
	for name, content := range files {
		err := atomicfile.Write(filepath.Join(c.DataDir, name), []byte(content), 0o600, atomicfile.Owner(s.user.UID, s.user.GID))
		if err != nil {
			return noSpace(fmt.Errorf("snapclone: %w", err), c.DataDir, "writing "+name)
		}
	}
	return nil
}
