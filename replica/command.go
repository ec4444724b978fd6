package replica

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/pgstage/pgstage/internal/secret"
)

// command prepares a staging binary (postgres, pg_ctl) to run as the OS
// user, in a directory every user can enter, with the environment of
// serverEnv.
func (s *Standby) command(ctx context.Context, r *rules, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.cfg.BinDir, name), args...)
	cmd.Dir = "/" // the caller's may be closed to the OS user
	cmd.Env = s.serverEnv(r, os.Environ())
	if s.asUser {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
			Uid: uint32(s.user.UID), Gid: uint32(s.user.GID), Groups: []uint32{},
		}}
	}
	return cmd
}

// serverEnv is the whole environment the servers get: only what PostgreSQL
// needs, taken from caller (this process's environment), never the rest of
// it. The server's environment is readable in /proc/<pid>/environ and by
// any staging superuser (COPY ... TO PROGRAM 'env'), and an embedding
// program may hold the source's password in a variable of its own. So: the
// search path and dynamic linker path, the locale and time zone, HOME of
// the OS user (libpq's default passfile is under it), and PGPASSFILE where
// the major's libpq has no passfile= (9.x). A variable whose value holds the
// password is dropped even from that list.
func (s *Standby) serverEnv(r *rules, caller []string) []string {
	pw := s.cfg.Source.Password.Reveal()
	env := []string{}
	have := map[string]bool{}
	for _, kv := range caller {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !serverVar(name) || have[name] || secret.Contains(value, pw) {
			continue
		}
		have[name] = true
		env = append(env, kv)
	}
	if !have["PATH"] {
		env = append(env, "PATH=/usr/local/bin:/usr/bin:/bin")
	}
	if s.user.Home != "" {
		env = append(env, "HOME="+s.user.Home)
	}
	if r != nil && !r.passfileParam {
		env = append(env, "PGPASSFILE="+s.cfg.PassFile)
	}
	return env
}

// serverVar reports whether the servers get the caller's variable name.
func serverVar(name string) bool {
	switch name {
	case "PATH", "LD_LIBRARY_PATH", "TZ", "LANG", "LANGUAGE":
		return true
	}
	return strings.HasPrefix(name, "LC_")
}
