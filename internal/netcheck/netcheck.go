// Package netcheck tells whether a PostgreSQL server could take a port: it
// binds the port on the TCP addresses the server would listen on, and
// knocks on the Unix socket the server would create. replica checks before
// it starts the staging server, stage in its preflight and before a
// resync.
package netcheck

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// InUseError says what already uses the port: a TCP address that could not
// be bound (Addr, with the bind error in Err), or a Unix socket where a
// server answers (Socket).
type InUseError struct {
	Port   int
	Addr   string // as bound: "" means every address
	Socket string
	Err    error
}

func (e *InUseError) Error() string {
	if e.Socket != "" {
		return fmt.Sprintf("a server answers on %s", e.Socket)
	}
	return fmt.Sprintf("port %d on %q: %v", e.Port, e.Addr, e.Err)
}

func (e *InUseError) Unwrap() error { return e.Err }

// PortFree returns nil when nothing holds port, or an *InUseError for the
// first thing that does.
//
// addrs are listen_addresses entries: "*" means every address, "localhost"
// the IPv4 loopback, "" is skipped. Only EADDRINUSE counts as in use: an
// address this host does not have fails to bind for the server too, which
// PostgreSQL tolerates while one address works, so it is not a reason to
// refuse.
//
// socketDirs are unix_socket_directories entries ("" is skipped); the
// socket is .s.PGSQL.<port> in each, and a socket file nobody answers on (left by a
// crashed server) is not in use: the server replaces it.
func PortFree(port int, addrs, socketDirs []string) error {
	p := strconv.Itoa(port)
	for _, addr := range addrs {
		addr = strings.TrimSpace(addr)
		switch addr {
		case "":
			continue
		case "*":
			addr = ""
		case "localhost":
			addr = "127.0.0.1"
		}
		l, err := net.Listen("tcp", net.JoinHostPort(addr, p))
		if errors.Is(err, syscall.EADDRINUSE) {
			return &InUseError{Port: port, Addr: addr, Err: err}
		}
		if l != nil {
			l.Close()
		}
	}
	for _, dir := range socketDirs {
		dir = strings.TrimSpace(dir)
		if dir == "" {
			continue
		}
		sock := filepath.Join(dir, ".s.PGSQL."+p)
		if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
			c.Close()
			return &InUseError{Port: port, Socket: sock}
		}
	}
	return nil
}
