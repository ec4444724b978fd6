package stage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pgstage/pgstage/internal/secret"
)

// Point names a hook point.
type Point string

// Hook points.
const (
	PointPreLink      Point = "pre-link"
	PointPostLink     Point = "post-link"
	PointPreSync      Point = "pre-sync"
	PointPostSync     Point = "post-sync"
	PointPreSnapshot  Point = "pre-snapshot"
	PointPostSnapshot Point = "post-snapshot"
)

// Hook is run at a hook point: a shell command (run with /bin/sh -c by the
// process's own user, in the state directory) or a Go function. Both get the
// staging details: the command in its environment (PGSTAGE_DATA_DIR,
// PGSTAGE_PORT, PGHOST, PGPORT, ... see HookEnv.Environ), the function as a
// HookEnv. The source password is never among them.
type Hook struct {
	Command string                                     `json:"command,omitempty"`
	Func    func(ctx context.Context, e HookEnv) error `json:"-"`
}

// Hooks are the hook points: around a link (or resync), a sync and a
// snapshot. A failing pre-hook stops its job, with
// the hook's output in the error; a failing post-hook fails the job after
// the work is done (the work stands).
type Hooks struct {
	PreLink      []Hook `json:"pre_link,omitempty"`
	PostLink     []Hook `json:"post_link,omitempty"`
	PreSync      []Hook `json:"pre_sync,omitempty"`
	PostSync     []Hook `json:"post_sync,omitempty"`
	PreSnapshot  []Hook `json:"pre_snapshot,omitempty"`
	PostSnapshot []Hook `json:"post_snapshot,omitempty"`
}

func (h Hooks) byPoint() map[Point][]Hook {
	return map[Point][]Hook{
		PointPreLink: h.PreLink, PointPostLink: h.PostLink,
		PointPreSync: h.PreSync, PointPostSync: h.PostSync,
		PointPreSnapshot: h.PreSnapshot, PointPostSnapshot: h.PostSnapshot,
	}
}

// commands returns the command hooks only: the state file cannot carry
// functions.
func (h Hooks) commands() Hooks {
	keep := func(hs []Hook) []Hook {
		var out []Hook
		for _, x := range hs {
			if x.Command != "" {
				out = append(out, Hook{Command: x.Command})
			}
		}
		return out
	}
	return Hooks{
		PreLink: keep(h.PreLink), PostLink: keep(h.PostLink), PreSync: keep(h.PreSync),
		PostSync: keep(h.PostSync), PreSnapshot: keep(h.PreSnapshot), PostSnapshot: keep(h.PostSnapshot),
	}
}

// withFuncs returns saved (commands read from the state file) with the
// functions of live, which a state file cannot carry.
func (saved Hooks) withFuncs(live Hooks) Hooks {
	merge := func(s, l []Hook) []Hook {
		out := append([]Hook(nil), s...)
		for _, h := range l {
			if h.Func != nil {
				out = append(out, Hook{Func: h.Func})
			}
		}
		return out
	}
	return Hooks{
		PreLink: merge(saved.PreLink, live.PreLink), PostLink: merge(saved.PostLink, live.PostLink),
		PreSync: merge(saved.PreSync, live.PreSync), PostSync: merge(saved.PostSync, live.PostSync),
		PreSnapshot: merge(saved.PreSnapshot, live.PreSnapshot), PostSnapshot: merge(saved.PostSnapshot, live.PostSnapshot),
	}
}

// HookEnv is what a hook learns about the staging.
type HookEnv struct {
	Point           Point
	Job             Job
	DataDir         string
	Port            int
	SocketDir       string
	BinDir          string
	OSUser          string
	DBUser          string
	ApplicationName string
	SourceHost      string
	SourcePort      int
	SourceUser      string
	Backup          *BackupInfo // nil before the first restore
	Snapshot        *Snapshot   // set for post-snapshot and post-sync hooks
}

// Environ returns the environment variables a command hook gets.
func (e HookEnv) Environ() []string {
	m := map[string]string{
		"PGSTAGE_HOOK":             string(e.Point),
		"PGSTAGE_JOB":              string(e.Job),
		"PGSTAGE_DATA_DIR":         e.DataDir,
		"PGSTAGE_PORT":             strconv.Itoa(e.Port),
		"PGSTAGE_SOCKET_DIR":       e.SocketDir,
		"PGSTAGE_BIN_DIR":          e.BinDir,
		"PGSTAGE_OS_USER":          e.OSUser,
		"PGSTAGE_APPLICATION_NAME": e.ApplicationName,
		"PGSTAGE_SOURCE_HOST":      e.SourceHost,
		"PGSTAGE_SOURCE_PORT":      strconv.Itoa(e.SourcePort),
		"PGSTAGE_SOURCE_USER":      e.SourceUser,
		// So that psql in a hook reaches the staging server.
		"PGHOST": e.SocketDir, "PGPORT": strconv.Itoa(e.Port), "PGUSER": e.DBUser,
	}
	if b := e.Backup; b != nil {
		m["PGSTAGE_BACKUP"] = b.Location
		m["PGSTAGE_BACKUP_NAME"] = b.Name
		m["PGSTAGE_PG_VERSION"] = b.PGVersion
	}
	if s := e.Snapshot; s != nil {
		m["PGSTAGE_SNAPSHOT_TIME"] = s.Time.UTC().Format(time.RFC3339Nano)
		m["PGSTAGE_SNAPSHOT_TIMELINE"] = strconv.FormatUint(uint64(s.Timeline), 10)
		m["PGSTAGE_SNAPSHOT_RECEIVE_LSN"] = s.ReceiveLSN
		m["PGSTAGE_SNAPSHOT_REPLAY_LSN"] = s.ReplayLSN
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// maxHookOutput bounds the output a hook error carries.
const maxHookOutput = 64 << 10

// runHooks runs the hooks of one point in order and stops at the first
// failure.
func (l *Linker) runHooks(ctx context.Context, point Point, hooks []Hook, env HookEnv) error {
	env.Point = point
	for i, h := range hooks {
		name := h.Command
		if h.Func != nil {
			name = fmt.Sprintf("func #%d", i+1)
		}
		l.log.Info("hook", "point", point, "hook", name)
		if h.Func != nil {
			if err := h.Func(ctx, env); err != nil {
				return &HookError{Point: point, Hook: name, Err: err}
			}
			continue
		}
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", h.Command)
		cmd.Env = append(hookBaseEnv(l.cfg.Source.Password.Reveal()), env.Environ()...)
		cmd.Dir = l.cfg.Staging.StateDir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &capWriter{b: &out}, &capWriter{b: &out}
		if err := cmd.Run(); err != nil {
			return &HookError{Point: point, Hook: name, Output: out.String(), Err: err}
		}
	}
	return nil
}

// capWriter keeps the first maxHookOutput bytes.
type capWriter struct{ b *bytes.Buffer }

func (w *capWriter) Write(p []byte) (int, error) {
	if room := maxHookOutput - w.b.Len(); room > 0 {
		w.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// hookBaseEnv is the environment a hook command inherits: ours, less every
// libpq variable (PGPASSWORD above all; the hook gets its own PG* for the
// staging) and less any variable that holds the source password, such as
// the one examples/link reads it from.
func hookBaseEnv(password string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") && !strings.HasPrefix(k, "PGSTAGE_") || k == "PGSTAGE_SOURCE_PASSWORD" {
			continue
		}
		if password != "" && secret.Contains(v, password) {
			continue
		}
		env = append(env, kv)
	}
	return env
}
