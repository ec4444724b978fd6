package pgconf

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// ErrRoot is returned by a [Checker] running as root without a Credential:
// postgres refuses to run as root, even to read a configuration file
// (only --describe-config is allowed).
var ErrRoot = errors.New("pgconf: postgres refuses to run as root: set Checker.Credential to an unprivileged user")

// Checker validates settings with the postgres binary of the PostgreSQL
// version that will read them, before any server is started: the server's
// own code judges names, enum values, ranges and units, and reports them in
// its own words (with the allowed values). Libraries named in
// shared_preload_libraries are not loaded, so a missing library is not
// caught; nor is what only a running server can judge (a postmaster
// parameter differing from the running value).
type Checker struct {
	// BinDir is the directory holding the postgres binary.
	BinDir string
	// Credential runs postgres as another OS user. Required when the caller
	// is root; nil runs postgres as the caller.
	Credential *syscall.Credential
	// TempDir is where a scratch configuration is written; "" means the
	// system's temporary directory. The Credential's user must be able to
	// read it.
	TempDir string
}

// Parameter is one line of postgres --describe-config: what this version
// of the server accepts.
type Parameter struct {
	Name        string
	Context     string // internal, postmaster, sighup, superuser, user, ...
	Group       string
	Type        string // BOOLEAN, INTEGER, REAL, STRING or ENUM
	Min, Max    string // for INTEGER and REAL, in the parameter's base unit
	Description string
}

func (k *Checker) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(k.BinDir, "postgres"), args...)
	// The messages are parsed: keep them in English.
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LC_MESSAGES=C", "LANG=C")
	if k.Credential != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: k.Credential}
	}
	return cmd
}

// Parameters lists the parameters the binary knows, from
// postgres --describe-config (which the server allows as root). Parameters
// the server hides from the sample file (debugging ones) are not listed.
func (k *Checker) Parameters(ctx context.Context) ([]Parameter, error) {
	out, err := k.command(ctx, "--describe-config").Output()
	if err != nil {
		return nil, fmt.Errorf("pgconf: %s --describe-config: %w", filepath.Join(k.BinDir, "postgres"), exitError(err))
	}
	return parseDescribeConfig(out), nil
}

func parseDescribeConfig(out []byte) []Parameter {
	var ps []Parameter
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 8 {
			continue
		}
		ps = append(ps, Parameter{Name: f[0], Context: f[1], Group: f[2], Type: f[3], Min: f[5], Max: f[6], Description: f[7]})
	}
	return ps
}

func exitError(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}

var (
	reParam   = regexp.MustCompile(`parameter "([^"]+)"`)
	reUnknown = regexp.MustCompile(`^unrecognized configuration parameter "([^"]+)" in file "[^"]*" line ([0-9]+)`)
)

// Check runs the settings (the last one of each name counts) through the
// binary's own parser and checks, and returns every problem at once: an
// error joining one [InvalidSettingError] per bad setting, or nil.
func (k *Checker) Check(ctx context.Context, settings []Setting) error {
	if k.Credential == nil && os.Geteuid() == 0 {
		return ErrRoot
	}
	byName := map[string]Setting{}
	var names []string
	var problems []error
	for _, s := range settings {
		if err := checkName(s.Name); err != nil {
			problems = append(problems, &InvalidSettingError{Name: s.Name, Value: s.Value, File: s.File, Line: s.Line,
				Reason: "not a parameter name the configuration file grammar can carry"})
			continue
		}
		n := strings.ToLower(s.Name)
		if n == "data_directory" {
			continue // would send the server to read another directory
		}
		if _, ok := byName[n]; !ok {
			names = append(names, n)
		}
		byName[n] = s
	}
	sort.Strings(names)
	for attempt := 0; attempt < 2; attempt++ {
		msgs, err := k.run(ctx, names, byName)
		if err != nil {
			return err
		}
		var unknown []string
		for _, m := range msgs {
			if u := reUnknown.FindStringSubmatch(m.text); u != nil {
				line, _ := strconv.Atoi(u[2])
				if line >= 1 && line <= len(names) {
					unknown = append(unknown, names[line-1])
				}
			}
		}
		if len(unknown) > 0 && attempt == 0 {
			// The server stops at unknown names before it looks at values:
			// report them, and check the values of the rest.
			catalog, _ := k.Parameters(ctx)
			for _, n := range unknown {
				s := byName[n]
				problems = append(problems, &InvalidSettingError{Name: s.Name, Value: s.Value, File: s.File, Line: s.Line,
					Reason: "unrecognized configuration parameter" + suggest(n, catalog)})
				delete(byName, n)
			}
			names = names[:0]
			for n := range byName {
				names = append(names, n)
			}
			sort.Strings(names)
			continue
		}
		var unexplained []string
		before := len(problems)
		for _, m := range msgs {
			p := reParam.FindStringSubmatch(m.text)
			var s Setting
			ok := p != nil
			if ok {
				s, ok = byName[strings.ToLower(p[1])]
			}
			if !ok {
				if !strings.HasPrefix(m.text, "skipping missing configuration file") {
					unexplained = append(unexplained, m.text)
				}
				continue
			}
			reason := m.text
			for _, more := range []string{m.detail, m.hint} {
				if more != "" {
					reason += " (" + strings.TrimSuffix(more, ".") + ")"
				}
			}
			problems = append(problems, &InvalidSettingError{Name: s.Name, Value: s.Value, File: s.File, Line: s.Line, Reason: reason})
		}
		if len(msgs) > 0 && len(problems) == before {
			// Rejected, but not for a setting: never report success.
			return fmt.Errorf("pgconf: %s rejected the settings: %s", filepath.Join(k.BinDir, "postgres"), strings.Join(unexplained, "; "))
		}
		break
	}
	return errors.Join(problems...)
}

type serverMsg struct{ text, detail, hint string }

// run writes the settings to a scratch configuration and has postgres read
// it (postgres -C port), returning the LOG messages it printed. A zero exit
// status means the server accepted everything.
func (k *Checker) run(ctx context.Context, names []string, byName map[string]Setting) ([]serverMsg, error) {
	if len(names) == 0 {
		return nil, nil
	}
	dir, err := os.MkdirTemp(k.TempDir, "pgconf-check-")
	if err != nil {
		return nil, fmt.Errorf("pgconf: %w", err)
	}
	defer os.RemoveAll(dir)
	var b strings.Builder
	for _, n := range names {
		s := byName[n]
		b.WriteString(s.Name + " = " + Quote(s.Value) + "\n")
	}
	conf := filepath.Join(dir, MainFileName)
	if err := os.WriteFile(conf, []byte(b.String()), 0o600); err != nil {
		return nil, fmt.Errorf("pgconf: %w", err)
	}
	if k.Credential != nil {
		for _, p := range []string{dir, conf} {
			if err := os.Chown(p, int(k.Credential.Uid), int(k.Credential.Gid)); err != nil {
				return nil, fmt.Errorf("pgconf: %w", err)
			}
		}
	}
	out, err := k.command(ctx, "-D", dir, "-C", "port").CombinedOutput()
	if err == nil {
		return nil, nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ctx.Err() != nil {
		return nil, fmt.Errorf("pgconf: running %s: %w", filepath.Join(k.BinDir, "postgres"), err)
	}
	var msgs []serverMsg
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, "LOG:  "); i >= 0 {
			msgs = append(msgs, serverMsg{text: l[i+len("LOG:  "):]})
		} else if i := strings.Index(l, "DETAIL:  "); i >= 0 && len(msgs) > 0 {
			msgs[len(msgs)-1].detail = l[i+len("DETAIL:  "):]
		} else if i := strings.Index(l, "HINT:  "); i >= 0 && len(msgs) > 0 {
			msgs[len(msgs)-1].hint = l[i+len("HINT:  "):]
		}
	}
	if len(msgs) == 0 || !strings.Contains(string(out), "contains errors") {
		return nil, fmt.Errorf("pgconf: %s could not read the settings: %s", filepath.Join(k.BinDir, "postgres"), strings.TrimSpace(string(out)))
	}
	return msgs, nil
}

// suggest names a known parameter close to an unknown name, if any.
func suggest(name string, catalog []Parameter) string {
	best, bestD := "", 3
	for _, p := range catalog {
		if d := distance(name, strings.ToLower(p.Name)); d < bestD {
			best, bestD = p.Name, d
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean \"" + best + "\"?"
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Check validates the settings in effect in the configuration (see
// [Checker.Check]); problems name the file and line of each bad setting.
func (c *Config) Check(ctx context.Context, k *Checker) error {
	c.ensure()
	var settings []Setting
	for i := range c.entries {
		if e := &c.entries[i]; e.isSetting() {
			settings = append(settings, e.setting())
		}
	}
	return k.Check(ctx, settings)
}
