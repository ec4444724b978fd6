package snapclone

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/pgstage/pgstage/pgconf"
)

// cloneSettings are the settings a clone gets before the caller's: its own
// port and sockets, no archiving, no wait for a synchronous standby it
// does not have, and its log in its own file (Clone.LogFile, pg_ctl's):
// a staging's logging collector writes to an absolute log_directory, where
// the staging's watcher would read the clone's end of recovery as its own.
// On a shared-extent (btrfs, reflink) clone, the major's cowSettings too.
func cloneSettings(c *Clone, r rules) [][2]string {
	s := [][2]string{
		{"port", strconv.Itoa(c.Port)},
		{"unix_socket_directories", c.SocketDir},
		{"listen_addresses", c.ListenAddresses},
		{"archive_mode", "off"},
		{"synchronous_standby_names", ""},
		{"logging_collector", "off"},
		{"log_destination", "stderr"},
	}
	if c.Method != MethodCopy {
		s = append(s, r.cowSettings...)
	}
	return s
}

// configureClone edits the clone's configuration with pgconf. Files outside the clone's data directory are never
// written: a setting in effect from one fails the clone, naming it.
func (s *Staging) configureClone(c *Clone, r rules, opts CloneOptions) error {
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
	settings := cloneSettings(c, r)
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
	return nil
}
