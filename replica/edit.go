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
//
// The configuration is loaded with Root = the data directory: a file the
// backup brought that lies outside it (an absolute include from the
// source's host, a postgresql.conf that is a symbolic link) is never
// edited. A setting in effect from such a file is overridden in
// postgresql.auto.conf instead, which the server reads last.
type editor struct {
	conf    *pgconf.Config
	res     *Result
	dataDir string
	err     error
	// auto holds the settings to append to postgresql.auto.conf, in order,
	// one per name.
	auto [][2]string
	// logDirectory is log_directory's default for the version.
	logDirectory string
}

// put makes name = value the setting in effect and reports whether anything
// changed. The line in effect is edited where it is when that file may be
// written; else the setting goes to postgresql.auto.conf. When no file sets
// name, toAuto chooses postgresql.auto.conf over the main file.
func (e *editor) put(name, value string, toAuto bool) (changed bool, overridden *pgconf.Setting) {
	if e.err != nil {
		return false, nil
	}
	s, found := e.conf.Get(name)
	switch {
	case found && e.conf.Writable(s.File) != nil:
		return e.override(name, value), &s
	case !found && (toAuto || e.conf.Writable(e.conf.MainFile().Path) != nil):
		return e.override(name, value), nil
	}
	changed, err := e.conf.Set(name, value)
	if err != nil {
		e.err = fmt.Errorf("replica: setting %s: %w", name, err)
	}
	return changed, nil
}

// override queues name = value for postgresql.auto.conf.
func (e *editor) override(name, value string) bool {
	for i := range e.auto {
		if strings.EqualFold(e.auto[i][0], name) {
			changed := e.auto[i][1] != value
			e.auto[i][1] = value
			return changed
		}
	}
	e.auto = append(e.auto, [2]string{name, value})
	return true
}

func (e *editor) set(name, value string) {
	e.setIn(name, value, false)
}

func (e *editor) setIn(name, value string, toAuto bool) {
	old, _ := e.conf.Get(name)
	changed, over := e.put(name, value, toAuto)
	if !changed {
		return
	}
	e.res.Set = append(e.res.Set, Change{Name: name, From: old.Value, To: value})
	if over != nil {
		e.res.Overridden = append(e.res.Overridden, Overridden{Name: name, Value: over.Value, File: over.File, Line: over.Line, To: value})
	}
}

// comment comments out every line setting name, reporting each. When one
// of those lines is in a file that may not be written, the setting is
// instead given its harmless value (see safeValue) where it takes effect.
func (e *editor) comment(name, why string) {
	if e.err != nil {
		return
	}
	var found []pgconf.Entry
	confined := false
	for _, en := range e.conf.Entries() {
		if en.Name != "" && strings.EqualFold(en.Name, name) {
			found = append(found, en)
			confined = confined || e.conf.Writable(en.File) != nil
		}
	}
	if len(found) == 0 {
		return
	}
	if confined {
		e.neutraliseConfined(found, name, why)
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

// neutraliseConfined gives name its harmless value where it takes effect,
// for a setting some of whose lines are in files that may not be written.
func (e *editor) neutraliseConfined(found []pgconf.Entry, name, why string) {
	safe, ok := e.safeValue(name)
	if !ok {
		en := found[len(found)-1]
		e.err = fmt.Errorf("replica: %s (%s line %d) must go, but that file is outside the data directory %s and %s cannot be overridden: remove the setting or the include from the backup's configuration",
			name, en.File, en.Line, e.dataDir, name)
		return
	}
	eff, _ := e.conf.Get(name)
	if eff.Value == safe {
		return // neutralised by an earlier run
	}
	changed, over := e.put(name, safe, false)
	if !changed {
		return
	}
	action := "set to " + pgconf.Quote(safe)
	if over != nil {
		action += " in " + pgconf.AutoFileName
		e.res.Overridden = append(e.res.Overridden, Overridden{Name: name, Value: over.Value, File: over.File, Line: over.Line, To: safe})
	}
	e.res.Neutralised = append(e.res.Neutralised, Neutralised{
		Name: eff.Name, Value: eff.Value, File: eff.File, Line: eff.Line, Why: why, Action: action,
	})
}

// safeValue is the value that makes a neutralised setting harmless, for a
// setting that cannot simply be commented out; false when none will do
// (data_directory from an outside file: the server reads it before
// postgresql.auto.conf).
func (e *editor) safeValue(name string) (string, bool) {
	switch strings.ToLower(name) {
	case "archive_command", "archive_library", "external_pid_file", "unix_socket_group", "primary_slot_name",
		"ssl_ca_file", "ssl_crl_file", "ssl_crl_dir", "ssl_dh_params_file",
		"recovery_target", "recovery_target_lsn", "recovery_target_name", "recovery_target_time", "recovery_target_xid",
		"restore_command", "recovery_end_command", "archive_cleanup_command", "promote_trigger_file":
		return "", true
	case "recovery_target_inclusive":
		return "on", true
	case "recovery_target_action":
		return "pause", true
	case "ssl_cert_file":
		return "server.crt", true
	case "ssl_key_file":
		return "server.key", true
	case "stats_temp_directory":
		return "pg_stat_tmp", true
	case "log_directory":
		return e.logDirectory, true
	case "hba_file":
		return filepath.Join(e.dataDir, "pg_hba.conf"), true
	case "ident_file":
		return filepath.Join(e.dataDir, "pg_ident.conf"), true
	}
	return "", false
}

func (e *editor) turnOff(s pgconf.Setting, name, why string) {
	changed, over := e.put(name, "off", false)
	if !changed {
		return
	}
	action := "set to off"
	if over != nil {
		action += " in " + pgconf.AutoFileName
		e.res.Overridden = append(e.res.Overridden, Overridden{Name: name, Value: over.Value, File: over.File, Line: over.Line, To: "off"})
	}
	e.res.Neutralised = append(e.res.Neutralised, Neutralised{
		Name: s.Name, Value: s.Value, File: s.File, Line: s.Line, Why: why, Action: action,
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
		if _, over := e.put(p.name, strconv.Itoa(p.v), false); over != nil {
			e.res.Overridden = append(e.res.Overridden, Overridden{Name: p.name, Value: over.Value, File: over.File, Line: over.Line, To: strconv.Itoa(p.v)})
		}
		if e.err != nil {
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
