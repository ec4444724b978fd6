package replica

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgstage/pgstage/internal/osuser"
)

// Source is the primary the standby streams from.
type Source struct {
	Host string // host name or IP address (required)
	Port int    // default 5432
	// User is the replication role; Password its password. The password is
	// written to a password file only, never to a configuration file,
	// process argument, log line or error.
	User     string
	Password Password
	// SSLMode is libpq's sslmode for the replication connection; empty
	// leaves libpq's default (prefer).
	SSLMode string
}

// Config describes a standby. Zero fields mean the defaults documented on
// each field.
type Config struct {
	// DataDir is the data directory restored from a base backup (required).
	DataDir string
	// BinDir holds the staging server's postgres and pg_ctl (required). Its
	// major must be the data directory's.
	BinDir string
	// Name names the staging; default the base name of DataDir. It is the
	// default application_name.
	Name string
	// Port is the staging server's port; default 5432.
	Port int
	// SocketDir is unix_socket_directories; default "/tmp". Setup creates a
	// missing one for the OS user, and refuses one the user cannot write in.
	SocketDir string
	// ListenAddresses is listen_addresses; default "localhost".
	ListenAddresses string

	Source Source
	// ApplicationName is what the source's pg_stat_replication shows for
	// this standby; default Name, with characters other than letters,
	// digits, '_', '-' and '.' replaced by '_'.
	ApplicationName string
	// SlotName sets primary_slot_name. A slot keeps WAL on the source while
	// the staging is down (so it can catch up after any outage), and for
	// the same reason fills the source's disk if the staging never returns:
	// drop the slot on the source when dropping the staging.
	SlotName string
	// CreateSlot creates SlotName on the source as a physical slot, over a
	// replication connection, if it does not exist yet.
	CreateSlot bool

	// PassFile is the password file the standby's libpq reads; default
	// ".<base name of DataDir>.pgpass" beside DataDir, outside it so that
	// snapshots of the data directory do not carry the password. The OS user
	// must be able to reach it.
	PassFile string
	// LogFile receives the server's stderr (pg_ctl -l); default
	// DataDir/pgstage.log. With logging_collector on, the server logs to its
	// log_directory and this file holds only what comes before.
	LogFile string
	// OSUser is the user the server runs as when this process is root
	// (PostgreSQL refuses root); default "postgres". Files this package
	// writes belong to that user. Ignored when not root: the server then
	// runs as the current user.
	OSUser string

	// QueryUser and QueryDatabase are used to ask the standby (over its Unix
	// socket, without password) for pg_stat_wal_receiver; defaults
	// "postgres" and "postgres". When that connection cannot be made (for
	// another reason than the standby still starting up), WaitStreaming
	// falls back on the server log and the walreceiver process.
	QueryUser, QueryDatabase string

	// Liveness bounds how soon the standby notices a source it no longer
	// hears from (see [Liveness]); the zero value means about 10 s.
	Liveness Liveness

	// StartTimeout bounds pg_ctl start; default 5 minutes (a standby that
	// must replay much WAL before it opens takes long).
	StartTimeout time.Duration
	// StopTimeout bounds the fast shutdown before Stop falls back on an
	// immediate one; default 1 minute.
	StopTimeout time.Duration

	// Logger receives progress; nil discards.
	Logger *slog.Logger
}

// Standby is one staging standby. Its methods are safe to call from one
// goroutine at a time.
type Standby struct {
	cfg Config
	log *slog.Logger
	// user is the OS user the server runs as and its files belong to;
	// asUser says this process is root and must switch to it.
	user   osuser.User
	asUser bool

	checked Major // the major version found to match the binaries, 0 before

	qconn *pgconn.PgConn // kept between queries (see queryRow)
	// qprepared names the statements prepared on qconn (see preparedRow).
	qprepared map[string]bool

	logStart int64 // size of the log when Start began
	// startedAt is when Start began: a collector file not written since
	// is an earlier run's (current_logfiles is stale until the collector
	// starts, so a server that fails before it would be judged by it).
	startedAt time.Time
	// collectorDir is the log_directory when logging_collector is on, ""
	// when off or not known yet.
	collectorDir string
}

var slotNameRE = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// New checks cfg and fills in the defaults. Every problem is reported at
// once.
func New(cfg Config) (*Standby, error) {
	var errs []error
	if cfg.DataDir == "" {
		errs = append(errs, errors.New("DataDir is required: the restored data directory"))
	} else if abs, err := filepath.Abs(cfg.DataDir); err == nil {
		cfg.DataDir = abs
	}
	if cfg.BinDir == "" {
		errs = append(errs, errors.New("BinDir is required: the directory holding the staging postgres and pg_ctl"))
	}
	if cfg.Source.Host == "" {
		errs = append(errs, errors.New("Source.Host is required"))
	}
	if cfg.Source.User == "" {
		errs = append(errs, errors.New("Source.User is required: the replication role"))
	}
	// A line break would end the passfile line early, and libpq reads the
	// passfile line by line: such a password can never authenticate.
	if strings.ContainsAny(cfg.Source.User, "\r\n") {
		errs = append(errs, errors.New("Source.User holds a line break: a passfile line cannot carry it; use a role name without one"))
	}
	if strings.ContainsAny(cfg.Source.Password.Reveal(), "\r\n") {
		errs = append(errs, errors.New("Source.Password holds a line break: a passfile line cannot carry it; change the role's password"))
	}
	if cfg.Source.Port == 0 {
		cfg.Source.Port = 5432
	}
	if cfg.Port == 0 {
		cfg.Port = 5432
	}
	if cfg.Port < 1 || cfg.Port > 65535 || cfg.Source.Port < 1 || cfg.Source.Port > 65535 {
		errs = append(errs, fmt.Errorf("ports must be 1 to 65535 (staging %d, source %d)", cfg.Port, cfg.Source.Port))
	}
	if cfg.SlotName != "" && !slotNameRE.MatchString(cfg.SlotName) {
		errs = append(errs, fmt.Errorf("SlotName %q: use 1 to 63 lower-case letters, digits and underscores", cfg.SlotName))
	}
	if cfg.CreateSlot && cfg.SlotName == "" {
		errs = append(errs, errors.New("CreateSlot needs SlotName"))
	}
	if cfg.Name == "" && cfg.DataDir != "" {
		cfg.Name = filepath.Base(cfg.DataDir)
	}
	if cfg.ApplicationName == "" {
		cfg.ApplicationName = sanitizeAppName(cfg.Name)
	}
	if len(cfg.ApplicationName) >= 64 {
		errs = append(errs, fmt.Errorf("ApplicationName %q: at most 63 bytes", cfg.ApplicationName))
	}
	if cfg.SocketDir == "" {
		cfg.SocketDir = "/tmp"
	}
	if cfg.ListenAddresses == "" {
		cfg.ListenAddresses = "localhost"
	}
	if cfg.PassFile == "" && cfg.DataDir != "" {
		cfg.PassFile = filepath.Join(filepath.Dir(cfg.DataDir), "."+filepath.Base(cfg.DataDir)+".pgpass")
	}
	if cfg.LogFile == "" && cfg.DataDir != "" {
		cfg.LogFile = filepath.Join(cfg.DataDir, "pgstage.log")
	}
	if cfg.QueryUser == "" {
		cfg.QueryUser = "postgres"
	}
	if cfg.QueryDatabase == "" {
		cfg.QueryDatabase = "postgres"
	}
	cfg.Liveness = cfg.Liveness.withDefaults()
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 5 * time.Minute
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = time.Minute
	}
	s := &Standby{cfg: cfg, log: cfg.Logger, asUser: os.Geteuid() == 0}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	u, err := osuser.RunAs(cfg.OSUser)
	if err != nil {
		errs = append(errs, fmt.Errorf("OSUser: %w", err))
	}
	s.user = u
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return s, nil
}

func sanitizeAppName(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}

// Config returns the configuration with its defaults filled in.
func (s *Standby) Config() Config { return s.cfg }

// Format shows the standby by its data directory, for every verb: the
// configuration inside holds the password, and fmt would print the fields
// of an unexported struct without asking them how.
func (s *Standby) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "replica.Standby(%s)", s.cfg.DataDir)
}
