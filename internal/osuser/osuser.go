// Package osuser is pgstage's one lookup of the unprivileged OS user that
// PostgreSQL servers and their files belong to.
//
// PostgreSQL refuses to run as root. A process running as root therefore
// runs the servers as a named user ("postgres" unless told otherwise); any
// other process runs them as itself.
package osuser

import (
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
)

// DefaultName is the user servers run as when root names none.
const DefaultName = "postgres"

// User is an OS user: its name, ids and supplementary groups.
type User struct {
	Name     string
	UID, GID int
	Groups   []int
	Home     string
}

// Lookup finds the user called name.
func Lookup(name string) (User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return User{}, err
	}
	return fromUser(u), nil
}

// LookupID finds the user with uid.
func LookupID(uid int) (User, error) {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return User{}, err
	}
	return fromUser(u), nil
}

func fromUser(u *user.User) User {
	ou := User{Name: u.Username, Home: u.HomeDir}
	ou.UID, _ = strconv.Atoi(u.Uid)
	ou.GID, _ = strconv.Atoi(u.Gid)
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.Atoi(id); err == nil {
				ou.Groups = append(ou.Groups, g)
			}
		}
	}
	return ou
}

// RunAs returns the user PostgreSQL servers run as: name (DefaultName if
// empty) when this process is root, else this process's own user.
func RunAs(name string) (User, error) {
	if os.Geteuid() != 0 {
		return Current(), nil
	}
	if name == "" {
		name = DefaultName
	}
	u, err := Lookup(name)
	if err != nil {
		return User{}, fmt.Errorf("OS user %q: %w (PostgreSQL refuses to run as root: create the user or name another)", name, err)
	}
	if u.UID == 0 {
		return User{}, fmt.Errorf("OS user %q has uid 0 (PostgreSQL refuses to run as root: name an unprivileged user)", name)
	}
	return u, nil
}

// Current is this process's user. Its name may be empty where the user
// database has no entry for the uid (as in some containers).
func Current() User {
	u, err := LookupID(os.Geteuid())
	if err != nil {
		return User{UID: os.Geteuid(), GID: os.Getegid()}
	}
	u.UID, u.GID = os.Geteuid(), os.Getegid()
	return u
}

// InGroup reports whether gid is the user's primary or a supplementary
// group.
func (u User) InGroup(gid int) bool {
	return gid == u.GID || slices.Contains(u.Groups, gid)
}

// Chown gives path (not what a symbolic link points to) to the user when
// this process is root; otherwise the files are already the user's.
func (u User) Chown(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return os.Lchown(path, u.UID, u.GID)
}
