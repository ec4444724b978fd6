package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pgstage/pgstage/internal/pgcontrol"
	"github.com/pgstage/pgstage/internal/pgver"
	"github.com/pgstage/pgstage/internal/secret"
	"github.com/pgstage/pgstage/pgconf"
)

// Result reports what Setup did, for the caller to show or log.
type Result struct {
	Major      Major  // from PG_VERSION
	Method     string // "standby.signal" (12+) or "recovery.conf"
	HotStandby bool   // false for the warm standbys of 9.4 and 9.5
	// PrimaryConnInfo is primary_conninfo as written, in libpq form. It
	// names the password file, never the password.
	PrimaryConnInfo string
	PassFile        string
	Slot            string // primary_slot_name, "" when none
	SlotCreated     bool   // CreateSlot made it (false: it existed)

	Written   []string // files written or edited
	Removed   []string // leftovers removed (recovery.conf, recovery.signal)
	Generated []string // minimal files made because the backup had none
	// Neutralised lists the source's settings commented out or turned off
	// because they point at the source's paths, would archive from the
	// staging, or would end recovery.
	Neutralised []Neutralised
	// Raised lists the hot-standby parameters raised to the source's values.
	Raised []Raised
	// Set lists the other settings given their staging values.
	Set []Change
	// Overridden lists the settings in effect from a file outside the data
	// directory (an absolute include, a symbolic link out of it), which
	// Setup does not edit: each is overridden in postgresql.auto.conf, which
	// the server reads last. They are in Set, Neutralised or Raised too.
	Overridden []Overridden `json:",omitempty"`
	// OwnersFixed: the data directory was given to the OS user, or its mode
	// made 0700.
	OwnersFixed bool
}

// Neutralised is one setting of the source made harmless.
type Neutralised struct {
	Name, Value string // as found
	File        string
	Line        int
	Why         string
	Action      string // "commented out" or "set to off"
}

// Raised is a hot-standby parameter raised to the source's value, read from
// the backup's pg_control: the standby refuses to start below it.
type Raised struct {
	Name     string
	From, To int
}

// Overridden is a setting left as it is in a file outside the data
// directory and overridden in postgresql.auto.conf.
type Overridden struct {
	Name, Value string // as found
	File        string
	Line        int
	To          string // the value in postgresql.auto.conf
}

// Change is a setting given a new value.
type Change struct{ Name, From, To string }

// Setup turns the restored data directory into a standby of the source. It
// writes no password anywhere but the password file, and can be run again
// on the same directory (a second run changes nothing).
func (s *Standby) Setup(ctx context.Context) (*Result, error) {
	major, r, err := s.version(ctx)
	if err != nil {
		return nil, err
	}
	if st, err := s.Status(ctx); err != nil {
		return nil, err
	} else if st.Running {
		return nil, fmt.Errorf("replica: the staging server runs (pid %d): stop it before Setup", st.PID)
	}
	cd, err := pgcontrol.ReadFile(s.cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("replica: reading the backup's pg_control: %w", err)
	}
	if !cd.Covers(major.String()) {
		return nil, fmt.Errorf("replica: %s: PG_VERSION says %s but global/pg_control (version %d) is of %v",
			s.cfg.DataDir, major, cd.PgControlVersion, cd.Majors)
	}
	res := &Result{Major: major, HotStandby: r.hotStandby, PassFile: s.cfg.PassFile, Slot: s.cfg.SlotName}
	if res.OwnersFixed, err = s.ownDataDir(); err != nil {
		return nil, err
	}
	if err := s.prepareSocketDirs(); err != nil {
		return nil, err
	}
	if err := s.generateMissing(r, res); err != nil {
		return nil, err
	}
	if err := s.writePassFile(res); err != nil {
		return nil, err
	}
	res.PrimaryConnInfo = s.primaryConnInfo(r)

	conf, err := pgconf.Load(s.cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("replica: the server would reject this configuration, fix it first: %w", err)
	}
	// Files the backup brought from outside the data directory (an absolute
	// include, a symbolic link out of it) are read but never written.
	conf.Root = s.cfg.DataDir
	ed := &editor{conf: conf, res: res, dataDir: s.cfg.DataDir, logDirectory: r.logDirectory}
	ed.set("port", strconv.Itoa(s.cfg.Port))
	ed.set("unix_socket_directories", s.cfg.SocketDir)
	ed.set("listen_addresses", s.cfg.ListenAddresses)
	ed.neutralisePaths()
	ed.neutraliseArchiving()
	ed.set("hot_standby", map[bool]string{true: "on", false: "off"}[r.hotStandby])
	ed.raiseMinimums(r, cd)
	// Standby settings that no file sets yet go into postgresql.auto.conf,
	// as pg_basebackup -R does; those set somewhere are edited where they
	// take effect.
	if r.recoveryConf {
		if err := s.writeRecoveryConf(res); err != nil {
			return nil, err
		}
	} else {
		for _, name := range r.stale {
			ed.comment(name, "a recovery setting left by the source: a recovery target can promote the standby, an old command or trigger file can misfire")
		}
		standby := [][2]string{
			{"primary_conninfo", res.PrimaryConnInfo},
			{"recovery_target_timeline", "latest"},
		}
		if s.cfg.SlotName != "" {
			standby = append(standby, [2]string{"primary_slot_name", s.cfg.SlotName})
		} else {
			ed.comment("primary_slot_name", "a slot of the source's own standby setup")
		}
		for _, kv := range standby {
			ed.setIn(kv[0], kv[1], true)
		}
	}
	for _, kv := range s.cfg.Liveness.settings() {
		ed.setIn(kv[0], kv[1], true)
	}
	if ed.err != nil {
		return nil, ed.err
	}
	for _, f := range conf.Files() {
		if f.Changed() {
			res.Written = append(res.Written, f.Path)
		}
	}
	if err := conf.Save(); err != nil {
		return nil, fmt.Errorf("replica: saving the configuration: %w", err)
	}
	if err := s.appendAutoConf(ed.auto, res); err != nil {
		return nil, err
	}
	if !r.recoveryConf {
		if err := s.writeSignal(res); err != nil {
			return nil, err
		}
	}
	if err := s.verify(r, res); err != nil {
		return nil, err
	}
	if s.cfg.CreateSlot {
		if res.SlotCreated, err = s.createSlot(ctx, r); err != nil {
			return nil, err
		}
	}
	s.log.Info("replica: standby set up", "data_dir", s.cfg.DataDir, "major", major.String(), "method", res.Method,
		"raised", len(res.Raised), "neutralised", len(res.Neutralised))
	return res, nil
}

// version reads the data directory's major and checks it against the
// staging binaries', once per Standby: neither changes under a staging.
func (s *Standby) version(ctx context.Context) (Major, *rules, error) {
	if s.checked != 0 {
		r, err := rulesFor(s.checked)
		return s.checked, r, err
	}
	major, err := pgver.ReadDataDir(s.cfg.DataDir)
	if err != nil {
		return 0, nil, fmt.Errorf("replica: %s is not a restored data directory: %w", s.cfg.DataDir, err)
	}
	r, err := rulesFor(major)
	if err != nil {
		return 0, nil, err
	}
	out, err := s.command(ctx, nil, "postgres", "--version").Output()
	if err != nil {
		return 0, nil, fmt.Errorf("replica: running %s --version: %w", filepath.Join(s.cfg.BinDir, "postgres"), err)
	}
	version := strings.TrimSpace(string(out))
	binMajor, err := pgver.Parse(version)
	if err != nil {
		return 0, nil, fmt.Errorf("replica: %s/postgres --version: %w", s.cfg.BinDir, err)
	}
	if binMajor != major {
		return 0, nil, &versionError{DataDir: s.cfg.DataDir, DataMajor: major, BinDir: s.cfg.BinDir, BinMajor: binMajor, BinVersion: version}
	}
	s.checked = major
	return major, r, nil
}

// generateMissing writes minimal configuration files when the backup has
// none (sources that keep them in /etc, as Debian does).
func (s *Standby) generateMissing(r *rules, res *Result) error {
	files := []struct{ name, text string }{
		{pgconf.MainFileName, "# postgresql.conf generated by pgstage: the backup had none (the source keeps\n" +
			"# its configuration outside the data directory). Server defaults apply but\n" +
			"# for the settings below.\n"},
		{"pg_hba.conf", "# pg_hba.conf generated by pgstage: the backup had none.\n" +
			"# TYPE  DATABASE  USER  ADDRESS       METHOD\n" +
			"local   all       all                 peer\n" +
			"host    all       all   127.0.0.1/32  " + r.hbaAuth + "\n" +
			"host    all       all   ::1/128       " + r.hbaAuth + "\n"},
		{"pg_ident.conf", "# pg_ident.conf generated by pgstage: the backup had none.\n"},
	}
	for _, f := range files {
		path := filepath.Join(s.cfg.DataDir, f.name)
		if exists(path) {
			continue
		}
		if err := s.writeFile(path, []byte(f.text)); err != nil {
			return err
		}
		res.Generated = append(res.Generated, path)
	}
	return nil
}

// writePassFile writes the password file: created 0600 and owned by the OS
// user before the password goes in, replaced atomically.
func (s *Standby) writePassFile(res *Result) error {
	src := s.cfg.Source
	line := passfileLine(src.Host, strconv.Itoa(src.Port), src.User, src.Password.Reveal())
	if err := s.writeFile(s.cfg.PassFile, []byte(line)); err != nil {
		return secret.Error(err, src.Password.Reveal())
	}
	res.Written = append(res.Written, s.cfg.PassFile)
	return s.reachable(s.cfg.PassFile)
}

// primaryConnInfo builds primary_conninfo. The password is in the password
// file: named by passfile= from 10, by PGPASSFILE in the server's
// environment before.
func (s *Standby) primaryConnInfo(r *rules) string {
	kv := map[string]string{
		"host":             s.cfg.Source.Host,
		"port":             strconv.Itoa(s.cfg.Source.Port),
		"user":             s.cfg.Source.User,
		"application_name": s.cfg.ApplicationName,
		"sslmode":          s.cfg.Source.SSLMode,
	}
	if r.passfileParam {
		kv["passfile"] = s.cfg.PassFile
	}
	s.cfg.Liveness.conninfo(r, kv)
	return conninfo(kv)
}

// writeRecoveryConf writes recovery.conf (before 12) whole: whatever the
// backup had there (pg_basebackup -R, an old restore_command, a recovery
// target) is replaced.
func (s *Standby) writeRecoveryConf(res *Result) error {
	res.Method = "recovery.conf"
	var b strings.Builder
	b.WriteString("# recovery.conf written by pgstage: this data directory is a standby.\n")
	b.WriteString("standby_mode = 'on'\n")
	b.WriteString("primary_conninfo = " + pgconf.Quote(res.PrimaryConnInfo) + "\n")
	b.WriteString("recovery_target_timeline = 'latest'\n")
	if s.cfg.SlotName != "" {
		b.WriteString("primary_slot_name = " + pgconf.Quote(s.cfg.SlotName) + "\n")
	}
	path := filepath.Join(s.cfg.DataDir, "recovery.conf")
	if err := s.writeFile(path, []byte(b.String())); err != nil {
		return err
	}
	res.Written = append(res.Written, path)
	return nil
}

// appendAutoConf adds to postgresql.auto.conf the settings that no file
// sets and those that override a file outside the data directory. A
// postgresql.auto.conf that is a symbolic link is replaced, not written
// through.
func (s *Standby) appendAutoConf(settings [][2]string, res *Result) error {
	if len(settings) == 0 {
		return nil
	}
	path := filepath.Join(s.cfg.DataDir, pgconf.AutoFileName)
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replica: %w", err)
	}
	if len(old) == 0 {
		old = []byte("# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n")
	}
	buf := bytes.NewBuffer(old)
	if !bytes.HasSuffix(old, []byte("\n")) {
		buf.WriteByte('\n')
	}
	for _, kv := range settings {
		fmt.Fprintf(buf, "%s = %s\n", kv[0], pgconf.Quote(kv[1]))
	}
	if err := s.writeFile(path, buf.Bytes()); err != nil {
		return err
	}
	if !slices.Contains(res.Written, path) {
		res.Written = append(res.Written, path)
	}
	return nil
}

// writeSignal makes the data directory a standby (12+): standby.signal, no
// recovery.signal (which would make it a targeted recovery that ends), no
// recovery.conf (the server refuses to start with one).
func (s *Standby) writeSignal(res *Result) error {
	res.Method = "standby.signal"
	for _, name := range []string{"recovery.conf", "recovery.signal"} {
		path := filepath.Join(s.cfg.DataDir, name)
		removed, err := removeFile(path)
		if err != nil {
			return err
		}
		if removed {
			res.Removed = append(res.Removed, path)
		}
	}
	path := filepath.Join(s.cfg.DataDir, "standby.signal")
	if exists(path) {
		return nil
	}
	if err := s.writeFile(path, nil); err != nil {
		return err
	}
	res.Written = append(res.Written, path)
	return nil
}

// verify reads the configuration back as the server will and checks that
// the standby settings are in effect.
func (s *Standby) verify(r *rules, res *Result) error {
	conf, err := pgconf.Load(s.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("replica: reading back the configuration: %w", err)
	}
	want := map[string]string{"port": strconv.Itoa(s.cfg.Port), "hot_standby": map[bool]string{true: "on", false: "off"}[r.hotStandby]}
	for _, kv := range s.cfg.Liveness.settings() {
		want[kv[0]] = kv[1]
	}
	if !r.recoveryConf {
		want["primary_conninfo"] = res.PrimaryConnInfo
		want["recovery_target_timeline"] = "latest"
		if s.cfg.SlotName != "" {
			want["primary_slot_name"] = s.cfg.SlotName
		}
	}
	for name, v := range want {
		got, ok := conf.Get(name)
		if !ok || got.Value != v {
			return fmt.Errorf("replica: %s is not in effect after the edit (found %q in %s line %d)", name, got.Value, got.File, got.Line)
		}
	}
	return nil
}
