package basebackup

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Sentinels a caller branches on. Every error Take returns that fits one of
// them wraps it (errors.Is), and says what to do in its text.
var (
	// ErrInvalidConfig: the Config is wrong; nothing was connected to or
	// written.
	ErrInvalidConfig = errors.New("basebackup: invalid configuration")
	// ErrRefused: the source will not serve this backup as configured (wrong
	// password, no replication line in pg_hba.conf, a role without
	// REPLICATION, wal_level minimal). Retrying will not help until the
	// configuration is changed.
	ErrRefused = errors.New("basebackup: the source refused the backup")
	// ErrBusy: the source has no WAL sender, connection or replication slot
	// free right now. Retrying later may work.
	ErrBusy = errors.New("basebackup: the source is busy")
	// ErrBackupPath: the backup path cannot hold the backup (missing, not
	// writable, full, or changed by another writer).
	ErrBackupPath = errors.New("basebackup: backup path problem")
)

// sourceError is a failure of the source, naming it, the role and what to
// do.
type sourceError struct {
	sentinel error // ErrRefused, ErrBusy or nil
	where    string
	hint     string
	err      error
}

func (e *sourceError) Error() string {
	s := "basebackup: " + e.where + ": " + e.err.Error()
	if e.hint != "" {
		s += ": " + e.hint
	}
	return s
}

func (e *sourceError) Unwrap() []error {
	if e.sentinel == nil {
		return []error{e.err}
	}
	return []error{e.sentinel, e.err}
}

// classify turns a failure on connection purpose (which says what the
// connection was for) into a sourceError with a hint from its SQLSTATE.
func (t *taker) classify(purpose string, err error) error {
	where := fmt.Sprintf("%s (source %s:%d, role %s)", purpose, t.cfg.Host, t.cfg.Port, t.cfg.User)
	se := &sourceError{where: where, err: err}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		var ce *pgconn.ConnectError
		if errors.As(err, &ce) {
			se.hint = "check Host and Port, and that the source listens there (listen_addresses, firewall)"
		}
		return se
	}
	switch {
	case pe.Code == "28P01":
		se.sentinel, se.hint = ErrRefused, fmt.Sprintf("check the password of role %s (Config.Password) against the source", t.cfg.User)
	case pe.Code == "28000" && strings.Contains(pe.Message, "pg_hba.conf"):
		se.sentinel, se.hint = ErrRefused, fmt.Sprintf("add a line \"host replication %s <this host's address>/32 scram-sha-256\" to pg_hba.conf on the source and reload it (a line for database \"all\" does not cover replication)", t.cfg.User)
	case pe.Code == "28000" || pe.Code == "42501":
		se.sentinel, se.hint = ErrRefused, fmt.Sprintf("role %s needs the REPLICATION attribute (ALTER ROLE ... REPLICATION) and LOGIN", t.cfg.User)
	case pe.Code == "53300":
		se.sentinel, se.hint = ErrBusy, "a backup needs two WAL senders at once (one for the files, one for the WAL): raise max_wal_senders on the source (needs a restart) or retry when other WAL senders have ended"
	case pe.Code == "53400":
		se.sentinel, se.hint = ErrBusy, "the backup holds its WAL with a temporary replication slot: raise max_replication_slots on the source or drop an unused slot"
	case pe.Code == "55000" && strings.Contains(pe.Message, "WAL level"):
		se.sentinel, se.hint = ErrRefused, "set wal_level = replica (or logical) on the source and restart it"
	}
	return se
}

// pathError is a problem with the backup path or the partial folder.
type pathError struct {
	path string
	what string
	hint string
	err  error
}

func (e *pathError) Error() string {
	s := fmt.Sprintf("basebackup: %s %s", e.what, e.path)
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	if e.hint != "" {
		s += ": " + e.hint
	}
	return s
}

func (e *pathError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrBackupPath}
	}
	return []error{ErrBackupPath, e.err}
}
