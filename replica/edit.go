package replica

import (
	"fmt"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pgstage/pgstage/internal/pgcontrol"
	"github.com/pgstage/pgstage/pgconf"
)

// editor applies the staging's edits to the configuration through pgconf,
// recording each in the Result. The first error sticks.
type editor struct {
	conf    *pgconf.Config
	res     *Result
	dataDir string
	err     error
}

func (e *editor) set(name, value string) {
	if e.err != nil {
		return
	}
	old, _ := e.conf.Get(name)
	changed, err := e.conf.Set(name, value)
	if err != nil {
		e.err = fmt.Errorf("replica: setting %s: %w", name, err)
		return
	}
	if changed {
		e.res.Set = append(e.res.Set, Change{Name: name, From: old.Value, To: value})
	}
}

// comment comments out every line setting name, reporting each.
func (e *editor) comment(name, why string) {
	if e.err != nil {
		return
	}
	var found []pgconf.Entry
	for _, en := range e.conf.Entries() {
		if en.Name != "" && strings.EqualFold(en.Name, name) {
			found = append(found, en)
		}
	}
	if len(found) == 0 {
		return
	}
	if _, err := e.conf.Comment(name); err != nil {
		e.err = fmt.Errorf("replica: commenting out %s: %w", name, err)
		return
	}
	for _, en := range found {
		e.res.Neutralised = append(e.res.Neutralised, Neutralised{
			Name: en.Name, Value: en.Value, File: en.File, Line: en.Line, Why: why, Action: "commented out",
		})
	}
}

// neutralisePaths comments out the settings that name the source's files.
func (e *editor) neutralisePaths() {
	// Always the source's: the staging host may even have a file at that
	// path that belongs to another cluster.
	for _, name := range []string{"data_directory", "config_file", "hba_file", "ident_file", "external_pid_file"} {
		e.comment(name, "a path of the source's host")
	}
	// Kept when the file exists here (relative paths are from the data
	// directory), else the server would not start.
	for _, name := range []string{"ssl_cert_file", "ssl_key_file", "ssl_ca_file", "ssl_crl_file", "ssl_crl_dir",
		"ssl_dh_params_file", "stats_temp_directory"} {
		s, ok := e.conf.Get(name)
		if !ok || s.Value == "" || exists(e.abs(s.Value)) {
			continue
		}
		e.comment(name, "names "+s.Value+", which does not exist here")
	}
	// An absolute log_directory of the source's host: the logging collector
	// creates only the last component and fails without the rest.
	if s, ok := e.conf.Get("log_directory"); ok && filepath.IsAbs(s.Value) && !exists(filepath.Dir(s.Value)) {
		e.comment("log_directory", "names "+s.Value+", whose parent does not exist here")
	}
	// A socket group that does not exist here stops the server at start.
	if s, ok := e.conf.Get("unix_socket_group"); ok && s.Value != "" {
		if _, err := user.LookupGroup(s.Value); err != nil {
			e.comment("unix_socket_group", "group "+s.Value+" does not exist here")
		}
	}
	// ssl = on needs a certificate and key; the defaults are server.crt and
	// server.key in the data directory.
	if s, ok := e.conf.Get("ssl"); ok && isOn(s.Value) {
		cert, key := e.value("ssl_cert_file", "server.crt"), e.value("ssl_key_file", "server.key")
		if !exists(e.abs(cert)) || !exists(e.abs(key)) {
			e.turnOff(s, "ssl", "ssl = on but the certificate or key is missing here")
		}
	}
}

// neutraliseArchiving stops the staging from archiving into the source's
// archive: archive_mode = always would make a standby archive.
func (e *editor) neutraliseArchiving() {
	for _, name := range []string{"archive_command", "archive_library"} {
		e.comment(name, "the source's archiving: the staging must not write into the source's archive")
	}
	if s, ok := e.conf.Get("archive_mode"); ok && strings.EqualFold(s.Value, "always") {
		e.turnOff(s, "archive_mode", "archive_mode = always makes a standby archive, with no archive_command left")
	}
}

func (e *editor) turnOff(s pgconf.Setting, name, why string) {
	if e.err != nil {
		return
	}
	if _, err := e.conf.Set(name, "off"); err != nil {
		e.err = fmt.Errorf("replica: setting %s: %w", name, err)
		return
	}
	e.res.Neutralised = append(e.res.Neutralised, Neutralised{
		Name: s.Name, Value: s.Value, File: s.File, Line: s.Line, Why: why, Action: "set to off",
	})
}

// raiseMinimums raises the hot-standby parameters that are below the
// source's values recorded in pg_control.
func (e *editor) raiseMinimums(r *rules, cd *pgcontrol.ControlData) {
	source := []struct {
		name string
		v    int
	}{
		{"max_connections", cd.MaxConnections},
		{"max_worker_processes", cd.MaxWorkerProcesses},
		{"max_wal_senders", cd.MaxWalSenders}, // 0 before 12: not recorded, not checked
		{"max_prepared_transactions", cd.MaxPreparedXacts},
		{"max_locks_per_transaction", cd.MaxLocksPerXact},
	}
	for _, p := range source {
		if e.err != nil {
			return
		}
		cur := r.defaults[p.name]
		if s, ok := e.conf.Get(p.name); ok {
			n, err := strconv.Atoi(strings.TrimSpace(s.Value))
			if err != nil {
				e.err = fmt.Errorf("replica: %s = %q (%s line %d) is not an integer", p.name, s.Value, s.File, s.Line)
				return
			}
			cur = n
		}
		if cur >= p.v {
			continue
		}
		if _, err := e.conf.Set(p.name, strconv.Itoa(p.v)); err != nil {
			e.err = fmt.Errorf("replica: raising %s: %w", p.name, err)
			return
		}
		e.res.Raised = append(e.res.Raised, Raised{Name: p.name, From: cur, To: p.v})
	}
}

func (e *editor) value(name, def string) string {
	if s, ok := e.conf.Get(name); ok && s.Value != "" {
		return s.Value
	}
	return def
}

func (e *editor) abs(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(e.dataDir, p)
}

func isOn(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "true", "yes", "1", "t", "y":
		return true
	}
	return false
}
