package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/pgstage/pgstage/stage"
)

// fileConfig is the configuration file. It is this program's own format,
// not stage.Config's and not the state file's: durations are Go duration
// strings ("30s", "2m"), and the password is never in it.
type fileConfig struct {
	BackupPath        string        `json:"backup_path"`
	WALPath           string        `json:"wal_path"`
	StreamWhenNoWAL   bool          `json:"stream_when_no_wal"`
	VerifyBackup      bool          `json:"verify_backup"`
	BackupSettle      duration      `json:"backup_settle"`
	RestoreWriters    int           `json:"restore_writers"`
	Source            fileSource    `json:"source"`
	Staging           fileStaging   `json:"staging"`
	Settings          []fileSetting `json:"settings"`
	Hooks             fileHooks     `json:"hooks"`
	StreamTimeout     duration      `json:"stream_timeout"`
	WatchPollInterval duration      `json:"watch_poll_interval"`
	WatchPollOnly     bool          `json:"watch_poll_only"`
	// The staging server's logs: log_rotation_size in kB (default 10240)
	// and how many files are kept (default 5).
	LogRotationKB int64 `json:"log_rotation_kb"`
	LogKeep       int   `json:"log_keep"`
	// BackupMode is "external" (default) or "take": link and resync take
	// the backup themselves; AutoHeal resyncs by itself a staging whose
	// fault needs it (run).
	BackupMode string `json:"backup_mode"`
	AutoHeal   bool   `json:"auto_heal"`
	// Snapshots: where they and clones go, the method, the schedule (run)
	// and retention.
	Snapshots fileSnapshots `json:"snapshots"`

	// Where the source password comes from: an environment variable
	// (default PGSTAGE_SOURCE_PASSWORD) or a file.
	PasswordEnv  string `json:"password_env"`
	PasswordFile string `json:"password_file"`

	// HTTPAddress, if set, is where run serves /metrics and /healthz.
	HTTPAddress string `json:"http_address"`
	// LogFormat is "text" (default) or "json" (one object per line).
	LogFormat string `json:"log_format"`

	// Password is here only to refuse it with a message that says where
	// it goes instead.
	Password json.RawMessage `json:"password"`
}

type fileSnapshots struct {
	Dir        string   `json:"dir"`
	CloneDir   string   `json:"clone_dir"`
	Method     string   `json:"method"`
	Every      duration `json:"every"`
	Cron       string   `json:"cron"`
	KeepLast   int      `json:"keep_last"`
	KeepWithin duration `json:"keep_within"`
}

type fileSource struct {
	Host           string          `json:"host"`
	Port           int             `json:"port"`
	User           string          `json:"user"`
	SSLMode        string          `json:"sslmode"`
	ConnectTimeout duration        `json:"connect_timeout"`
	Password       json.RawMessage `json:"password"`
}

type fileStaging struct {
	DataDir         string `json:"data_dir"`
	Port            int    `json:"port"`
	BinDir          string `json:"bin_dir"`
	SocketDir       string `json:"socket_dir"`
	OSUser          string `json:"os_user"`
	ApplicationName string `json:"application_name"`
	SlotName        string `json:"slot_name"`
	CreateSlot      bool   `json:"create_slot"`
	DBUser          string `json:"db_user"`
	StateDir        string `json:"state_dir"`
}

type fileSetting struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	Comment bool   `json:"comment"`
}

type fileHook struct {
	Command string `json:"command"`
}

type fileHooks struct {
	PreLink      []fileHook `json:"pre_link"`
	PostLink     []fileHook `json:"post_link"`
	PreSync      []fileHook `json:"pre_sync"`
	PostSync     []fileHook `json:"post_sync"`
	PreSnapshot  []fileHook `json:"pre_snapshot"`
	PostSnapshot []fileHook `json:"post_snapshot"`
}

// duration is a Go duration string; it is parsed by validate, which knows
// the field's name for the message.
type duration string

const durationFix = `write a Go duration string such as "30s", "2m" or "1h30m"`

// defaultPasswordEnv is where the password is read from when the file
// names no source.
const defaultPasswordEnv = "PGSTAGE_SOURCE_PASSWORD"

// settings is what load returns: the Linker's configuration and this
// program's own.
type settings struct {
	stage       stage.Config
	httpAddress string
	logFormat   string
}

// load reads the configuration file and the password. Every problem is
// reported at once, each naming the file, the field and the fix.
func load(path string) (settings, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return settings{}, fmt.Errorf("config file: %w: name it with -config", err)
	}
	fc, err := parse(path, data)
	if err != nil {
		return settings{}, err
	}
	cfg := fc.config()
	pw, err := fc.password()
	if err != nil {
		return settings{}, fmt.Errorf("%s: %w", path, err)
	}
	cfg.Source.Password = pw
	return settings{stage: cfg, httpAddress: fc.HTTPAddress, logFormat: fc.LogFormat}, nil
}

// parse decodes and checks the file: its syntax, the field names (all of
// them, with their path), the types, and then the values.
func parse(path string, data []byte) (*fileConfig, error) {
	var raw any
	if err := json.Unmarshal(data, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(data, max(se.Offset-1, 0)) // Offset is just past the bad byte
			return nil, fmt.Errorf("%s:%d:%d: %v: fix the JSON syntax", path, line, col, se)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, ok := raw.(map[string]any); !ok {
		return nil, fmt.Errorf("%s: the file holds a JSON %s: write one object, {\"backup_path\": ...}", path, jsonKind(raw))
	}
	if errs := unknownFields("", raw, reflect.TypeFor[fileConfig]()); len(errs) > 0 {
		return nil, prefixed(path, errors.Join(errs...))
	}
	var fc fileConfig
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields() // unknownFields found them all; this is the backstop
	if err := dec.Decode(&fc); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%s: %s", path, typeProblem(te))
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := fc.validate(); err != nil {
		return nil, prefixed(path, err)
	}
	return &fc, nil
}

// validate checks the values, every problem at once.
func (fc *fileConfig) validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	required := []struct{ field, value, fix string }{
		{"backup_path", fc.BackupPath, "name the one directory the backups are dropped into"},
		{"source.host", fc.Source.Host, "name the source server's host or IP address"},
		{"source.user", fc.Source.User, "name the replication role on the source"},
		{"staging.data_dir", fc.Staging.DataDir, "name the staging data directory (the mount location), an absolute path"},
		{"staging.bin_dir", fc.Staging.BinDir, "name the directory holding the staging postgres and pg_ctl"},
	}
	for _, r := range required {
		if r.value == "" {
			add("%s is missing: %s", r.field, r.fix)
		}
	}
	if fc.Staging.Port == 0 {
		add("staging.port is missing: choose a free TCP port for the staging server")
	}
	for _, p := range []struct {
		field string
		port  int
	}{{"source.port", fc.Source.Port}, {"staging.port", fc.Staging.Port}} {
		if p.port < 0 || p.port > 65535 {
			add("%s %d is not a TCP port: use 1 to 65535", p.field, p.port)
		}
	}
	for _, d := range fc.durations() {
		if _, err := parseDuration(d.field, *d.value); err != nil {
			errs = append(errs, err)
		}
	}
	if fc.Password != nil || fc.Source.Password != nil {
		field := "password"
		if fc.Source.Password != nil {
			field = "source.password"
		}
		add("%s: the password never goes in the configuration file: put it in a file of its own (mode 0600) named by password_file, or in the environment variable named by password_env (default %s)", field, defaultPasswordEnv)
	}
	if fc.PasswordEnv != "" && fc.PasswordFile != "" {
		add("password_env and password_file are both set: keep the one the password is in")
	}
	switch stage.BackupMode(fc.BackupMode) {
	case "", stage.BackupExternal, stage.BackupTake:
	default:
		add("backup_mode %q is not a backup mode: use \"external\" (backups dropped into backup_path, the default) or \"take\" (pgstage takes them)", fc.BackupMode)
	}
	switch fc.LogFormat {
	case "", "text", "json":
	default:
		add("log_format %q is not a log format: use \"text\" or \"json\"", fc.LogFormat)
	}
	if fc.HTTPAddress != "" {
		if _, _, err := net.SplitHostPort(fc.HTTPAddress); err != nil {
			add("http_address %q is not host:port: write \"127.0.0.1:9187\" (or \":9187\" for every interface)", fc.HTTPAddress)
		}
	}
	for i, s := range fc.Settings {
		if s.Name == "" {
			add("settings[%d].name is missing: name the postgresql.conf parameter", i)
		}
	}
	return errors.Join(errs...)
}

type durationField struct {
	field string
	value *duration
}

func (fc *fileConfig) durations() []durationField {
	return []durationField{
		{"backup_settle", &fc.BackupSettle}, {"stream_timeout", &fc.StreamTimeout},
		{"watch_poll_interval", &fc.WatchPollInterval}, {"source.connect_timeout", &fc.Source.ConnectTimeout},
		{"snapshots.every", &fc.Snapshots.Every}, {"snapshots.keep_within", &fc.Snapshots.KeepWithin},
	}
}

func parseDuration(field string, d duration) (time.Duration, error) {
	if d == "" {
		return 0, nil
	}
	v, err := time.ParseDuration(string(d))
	if err != nil {
		return 0, fmt.Errorf("%s %q is not a duration: %s", field, string(d), durationFix)
	}
	return v, nil
}

// config maps the file onto stage.Config; validate has run.
func (fc *fileConfig) config() stage.Config {
	dur := func(field string, d duration) time.Duration {
		v, _ := parseDuration(field, d)
		return v
	}
	hooks := func(hs []fileHook) []stage.Hook {
		var out []stage.Hook
		for _, h := range hs {
			out = append(out, stage.Hook{Command: h.Command})
		}
		return out
	}
	var set []stage.Setting
	for _, s := range fc.Settings {
		set = append(set, stage.Setting{Name: s.Name, Value: s.Value, Comment: s.Comment})
	}
	s, h := fc.Staging, fc.Hooks
	return stage.Config{
		BackupPath: fc.BackupPath,
		Restore: stage.RestoreConfig{WALPath: fc.WALPath, StreamWhenNoWAL: fc.StreamWhenNoWAL,
			Verify: fc.VerifyBackup, Settle: dur("backup_settle", fc.BackupSettle), Writers: fc.RestoreWriters},
		Source: stage.Source{Host: fc.Source.Host, Port: fc.Source.Port, User: fc.Source.User,
			SSLMode: fc.Source.SSLMode, ConnectTimeout: dur("source.connect_timeout", fc.Source.ConnectTimeout)},
		Staging: stage.Staging{DataDir: s.DataDir, Port: s.Port, BinDir: s.BinDir, SocketDir: s.SocketDir,
			OSUser: s.OSUser, ApplicationName: s.ApplicationName, SlotName: s.SlotName,
			CreateSlot: s.CreateSlot, DBUser: s.DBUser, StateDir: s.StateDir},
		Settings: set,
		Hooks: stage.Hooks{PreLink: hooks(h.PreLink), PostLink: hooks(h.PostLink), PreSync: hooks(h.PreSync),
			PostSync: hooks(h.PostSync), PreSnapshot: hooks(h.PreSnapshot), PostSnapshot: hooks(h.PostSnapshot)},
		StreamTimeout: dur("stream_timeout", fc.StreamTimeout),
		Watch: stage.WatchConfig{PollInterval: dur("watch_poll_interval", fc.WatchPollInterval), PollOnly: fc.WatchPollOnly,
			Logs: stage.LogsConfig{RotationSize: fc.LogRotationKB << 10, Keep: fc.LogKeep}},
		BackupMode: stage.BackupMode(fc.BackupMode),
		Heal:       stage.HealConfig{Auto: fc.AutoHeal},
		Snapshots: stage.SnapshotConfig{Dir: fc.Snapshots.Dir, CloneDir: fc.Snapshots.CloneDir, Method: fc.Snapshots.Method,
			Every: dur("snapshots.every", fc.Snapshots.Every), Cron: fc.Snapshots.Cron, KeepLast: fc.Snapshots.KeepLast,
			KeepWithin: dur("snapshots.keep_within", fc.Snapshots.KeepWithin)},
	}
}

// password reads the source password from the file or the environment
// variable the configuration names. A password_file may start with
// $CREDENTIALS_DIRECTORY, where systemd's LoadCredential puts it.
func (fc *fileConfig) password() (stage.Password, error) {
	if fc.PasswordFile != "" {
		name, err := expandCredentials(fc.PasswordFile)
		if err != nil {
			return "", err
		}
		fi, err := os.Stat(name)
		if err != nil {
			return "", fmt.Errorf("password_file: %w: create it holding only the password, mode 0600", err)
		}
		if fi.Mode().Perm()&0o007 != 0 {
			return "", fmt.Errorf("password_file %s is readable by every user (mode %04o): chmod o-rwx it", name, fi.Mode().Perm())
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return "", fmt.Errorf("password_file: %w", err)
		}
		return stage.Password(strings.TrimRight(string(b), "\r\n")), nil
	}
	env := fc.PasswordEnv
	if env == "" {
		env = defaultPasswordEnv
	}
	pw, ok := os.LookupEnv(env)
	if !ok {
		return "", fmt.Errorf("no source password: set the environment variable %s, or name a password_file", env)
	}
	// Hooks and servers this process starts inherit its environment: the
	// password must not travel with it.
	os.Unsetenv(env)
	return stage.Password(pw), nil
}

// expandCredentials replaces $CREDENTIALS_DIRECTORY (or its ${} form), and
// refuses any other variable: a path should not depend on the environment
// by accident.
func expandCredentials(name string) (string, error) {
	var err error
	out := os.Expand(name, func(v string) string {
		if v != "CREDENTIALS_DIRECTORY" {
			err = fmt.Errorf("password_file %q names $%s: only $CREDENTIALS_DIRECTORY is expanded", name, v)
			return ""
		}
		dir, ok := os.LookupEnv(v)
		if !ok {
			err = fmt.Errorf("password_file %q: $CREDENTIALS_DIRECTORY is not set: run under systemd with LoadCredential=, or give the full path", name)
		}
		return dir
	})
	return out, err
}

// unknownFields walks the decoded JSON against the type it is decoded
// into and names every field the type does not have, with its path.
func unknownFields(path string, v any, t reflect.Type) []error {
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return nil // a type error, reported by the decoder
		}
		fields := map[string]reflect.Type{}
		var names []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" || name == "password" {
				continue
			}
			fields[name] = f.Type
			names = append(names, name)
		}
		fields["password"] = nil // refused by validate, with its own message
		var errs []error
		keys := slices.Sorted(maps.Keys(m))
		for _, k := range keys {
			ft, ok := fields[k]
			switch {
			case !ok:
				where := "the file's top level"
				if path != "" {
					where = path
				}
				errs = append(errs, fmt.Errorf("unknown field %q: remove it or correct its spelling; %s takes %s", join(path, k), where, strings.Join(names, ", ")))
			case ft != nil:
				errs = append(errs, unknownFields(join(path, k), m[k], ft)...)
			}
		}
		return errs
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok || t.Elem().Kind() != reflect.Struct {
			return nil
		}
		var errs []error
		for i, x := range list {
			errs = append(errs, unknownFields(fmt.Sprintf("%s[%d]", path, i), x, t.Elem())...)
		}
		return errs
	}
	return nil
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// typeProblem says which field holds a value of the wrong JSON type.
func typeProblem(te *json.UnmarshalTypeError) string {
	if te.Type == reflect.TypeFor[duration]() {
		return fmt.Sprintf("%s is a JSON %s, not a duration: %s", te.Field, te.Value, durationFix)
	}
	want := map[reflect.Kind]string{reflect.String: "a string", reflect.Int: "a whole number",
		reflect.Bool: "true or false", reflect.Struct: "an object {...}", reflect.Slice: "a list [...]"}[te.Type.Kind()]
	if want == "" {
		want = te.Type.String()
	}
	return fmt.Sprintf("%s is a JSON %s: write %s", te.Field, te.Value, want)
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "list"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	}
	return "null"
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(data []byte, off int64) (line, col int) {
	line, col = 1, 1
	for _, b := range data[:min(int(off), len(data))] {
		if b == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// prefixed puts the file's name before each line of err.
func prefixed(path string, err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = fmt.Errorf("%s: %w", path, e)
	}
	return errors.Join(out...)
}
