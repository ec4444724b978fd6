package stage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/pgstage/pgstage/internal/osuser"
	"github.com/pgstage/pgstage/internal/pgcontrol"
	"github.com/pgstage/pgstage/internal/pgver"
	"github.com/pgstage/pgstage/pgconf"
)

// reserved names the user's settings may not change: the Linker owns them
// (and the log settings of logReserved).
var reserved = map[string]string{
	"port":                     "use Staging.Port",
	"unix_socket_directories":  "use Staging.SocketDir",
	"primary_conninfo":         "use Source",
	"primary_slot_name":        "use Staging.SlotName",
	"hot_standby":              "the standby's version decides it",
	"recovery_target_timeline": "a staging follows the source's latest timeline",
}

func reservedWhy(name string) (string, bool) {
	name = strings.ToLower(name)
	if why, ok := reserved[name]; ok {
		return why, true
	}
	why, ok := logReserved[name]
	return why, ok
}

// watchNeed is a setting the watcher depends on: values that blinds
// reports hide what it reads.
type watchNeed struct {
	blinds func(value string) bool
	why    string
	safe   string // the value applySettings puts instead of a blinding one
	def    string // the server's default, what commenting out gives
}

// watcherNeeds are the settings, beyond the reserved ones, whose values can
// hide replication faults from the watcher.
var watcherNeeds = map[string]watchNeed{
	"log_min_messages": {
		// The walreceiver's errors are logged as FATAL, streaming starts and
		// stops as LOG; in log_min_messages' order LOG ranks between ERROR
		// and FATAL, so fatal and panic hide both.
		blinds: func(v string) bool {
			switch unquote(v) {
			case "fatal", "panic":
				return true
			}
			return false
		},
		why:  "the walreceiver's faults are logged at FATAL and streaming's start and end at LOG: use error or a more verbose level (the default is warning)",
		safe: "warning", def: "warning",
	},
	"wal_receiver_timeout": {
		// 0 disables the timeout: a network that drops packets silently is
		// then never noticed, and no fault is raised.
		blinds: func(v string) bool {
			v = unquote(v)
			return v == "0" || v == "-1" || strings.HasPrefix(v, "0") && strings.Trim(v, "0msinh ") == ""
		},
		why:  "0 disables it, and a silently dropped connection to the source is then never noticed: use a positive time (the default is 60s)",
		safe: "60s", def: "60s",
	},
}

func unquote(v string) string {
	return strings.ToLower(strings.TrimSpace(strings.Trim(strings.TrimSpace(v), "'")))
}

func settingValue(s Setting) string {
	if s.Comment {
		return "(commented out)"
	}
	return s.Value
}

// validateSettings checks the user's settings with the staging binaries'
// own parser (pgconf.Checker) and returns one error per bad setting.
func validateSettings(ctx context.Context, binDir string, settings []Setting, u osuser.User) []error {
	var errs []error
	var set []pgconf.Setting
	var commented []Setting
	for _, s := range settings {
		if why, ok := reservedWhy(s.Name); ok {
			errs = append(errs, fmt.Errorf("%s is managed by pgstage: %s", s.Name, why))
			continue
		}
		if need, ok := watcherNeeds[strings.ToLower(s.Name)]; ok && (s.Comment && need.blinds(need.def) || !s.Comment && need.blinds(s.Value)) {
			errs = append(errs, fmt.Errorf("%s = %s would blind the watcher: %s", s.Name, settingValue(s), need.why))
			continue
		}
		if s.Comment {
			commented = append(commented, s)
		} else {
			set = append(set, pgconf.Setting{Name: s.Name, Value: s.Value})
		}
	}
	k := &pgconf.Checker{BinDir: binDir}
	if os.Geteuid() == 0 {
		k.Credential = &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID)}
	}
	if len(set) > 0 {
		if err := k.Check(ctx, set); err != nil {
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = append(errs, j.Unwrap()...)
			} else {
				errs = append(errs, err)
			}
		}
	}
	if len(commented) > 0 {
		params, err := k.Parameters(ctx)
		if err != nil {
			return append(errs, err)
		}
		known := map[string]bool{}
		for _, p := range params {
			known[strings.ToLower(p.Name)] = true
		}
		for _, s := range commented {
			// Dotted names belong to extensions the binary need not know.
			if !known[strings.ToLower(s.Name)] && !strings.Contains(s.Name, ".") {
				errs = append(errs, fmt.Errorf("%s: PostgreSQL in %s has no such parameter, so there is nothing to comment out", s.Name, binDir))
			}
		}
	}
	return errs
}

// settingRules are the version-specific rules for the staging's settings.
type settingRules struct {
	// defaultPrefix is log_line_prefix when the configuration sets none.
	defaultPrefix string
	// hotMinimums: a hot standby refuses to start with these below the
	// source's (the warm standbys of 9.4 and 9.5 do not check).
	hotMinimums bool
}

var settingTable = pgver.Table[settingRules]{
	{Range: pgver.Before(pgver.V9_6), Rules: settingRules{defaultPrefix: ""}},
	{Range: pgver.Range{From: pgver.V9_6, To: pgver.V10}, Rules: settingRules{defaultPrefix: "", hotMinimums: true}},
	{Range: pgver.Since(pgver.V10), Rules: settingRules{defaultPrefix: "%m [%p] ", hotMinimums: true}},
}

// applySettings applies pgstage's own settings (own: logSettings) and then
// the user's to the staging configuration.
func applySettings(dataDir string, own, settings []Setting, m pgver.Major) error {
	if err := belowSource(dataDir, settings, m); err != nil {
		return err
	}
	conf, err := pgconf.Load(dataDir)
	if err != nil {
		return err
	}
	// The backup's postgresql.conf may include files by absolute paths of
	// the source host, or be a link: never write outside the staging.
	// (replica has already moved its own settings into postgresql.auto.conf
	// when their files lie outside; a user setting there is refused, naming
	// the file, rather than written.)
	conf.Root = dataDir
	for _, s := range append(append([]Setting(nil), own...), settings...) {
		if s.Comment {
			_, err = conf.Comment(s.Name)
		} else {
			_, err = conf.Set(s.Name, s.Value)
		}
		if err != nil {
			return fmt.Errorf("setting %s: %w", s.Name, err)
		}
	}
	// The source's own configuration came with the backup: a setting there
	// that would hide what the watcher reads is lifted to what it needs.
	for name, fix := range watcherNeeds {
		if cur, ok := conf.Get(name); ok && fix.blinds(cur.Value) && !userSets(settings, name) {
			if _, err := conf.Set(name, fix.safe); err != nil {
				return fmt.Errorf("setting %s: %w", name, err)
			}
		}
	}
	return conf.Save()
}

func userSets(settings []Setting, name string) bool {
	for _, s := range settings {
		if strings.EqualFold(s.Name, name) {
			return true
		}
	}
	return false
}

// belowSource refuses user settings that would take a hot standby's
// parameters below the source's, which the restored pg_control records:
// replica raised them, and the server would refuse to start ("hot standby is
// not possible because ..."). Saying so here names the setting and the
// value needed before anything is started.
func belowSource(dataDir string, settings []Setting, m pgver.Major) error {
	if r, _ := settingTable.For(m); !r.hotMinimums {
		return nil
	}
	var hot []Setting
	for _, st := range settings {
		switch strings.ToLower(st.Name) {
		case "max_connections", "max_worker_processes", "max_wal_senders", "max_prepared_transactions", "max_locks_per_transaction":
			if !st.Comment {
				hot = append(hot, st)
			}
		}
	}
	if len(hot) == 0 {
		return nil
	}
	cd, err := pgcontrol.ReadFile(dataDir)
	if err != nil {
		return err
	}
	minimum := map[string]int{
		"max_connections":           cd.MaxConnections,
		"max_worker_processes":      cd.MaxWorkerProcesses,
		"max_wal_senders":           cd.MaxWalSenders, // 0 before 12: not recorded, not checked
		"max_prepared_transactions": cd.MaxPreparedXacts,
		"max_locks_per_transaction": cd.MaxLocksPerXact,
	}
	var errs []error
	for _, st := range hot {
		want := minimum[strings.ToLower(st.Name)]
		if v, err := strconv.Atoi(strings.Trim(strings.TrimSpace(st.Value), "'")); err == nil && v < want {
			errs = append(errs, fmt.Errorf("%s = %d is below the source's %d: a hot standby refuses to start with less; use at least %d, or drop the setting", st.Name, v, want, want))
		}
	}
	return errors.Join(errs...)
}
