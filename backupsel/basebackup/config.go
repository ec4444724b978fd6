package basebackup

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config says which source to back up, as whom, and where to. Zero fields
// mean the documented defaults.
type Config struct {
	// Host and Port of the source; Port 0 means 5432.
	Host string
	Port int
	// User is a role with the REPLICATION attribute; Password its password,
	// which goes into the connection's settings and nowhere else.
	User     string
	Password string
	// SSLMode is libpq's sslmode; "" leaves pgconn's default (PGSSLMODE,
	// else prefer).
	SSLMode string
	// ConnectTimeout bounds each connection attempt; 0 means 10 s.
	ConnectTimeout time.Duration

	// BackupPath is the existing directory the backup folder is made in.
	BackupPath string
	// Time names the folder PostgreSQL_T<YYYYMMDDhhmmss>, in UTC so that
	// names keep their order across daylight saving changes; zero means
	// the time the backup starts.
	Time time.Time

	// Compression of the archives, client-side; CompressionLevel 0 means the
	// method's default (gzip 1-9, lz4 1-12, zstd 1-22).
	Compression      Compression
	CompressionLevel int
	// FastCheckpoint asks the source for an immediate checkpoint, as
	// pg_basebackup --checkpoint=fast; the default is a spread checkpoint,
	// which can take up to checkpoint_timeout before data flows.
	FastCheckpoint bool
	// MaxRate limits how fast the source sends the data files, in bytes per
	// second (the server's MAX_RATE, between 32 kB/s and 1 GB/s); 0 means
	// no limit. The WAL stream is not limited, as with pg_basebackup -r.
	MaxRate int64
	// Label is the backup_label's LABEL; "" means "pgstage base backup".
	Label string
	// Progress, if set, is called as archive data arrives with the bytes
	// received so far and the source's estimate of the total (never less
	// than done), and once at the end with done == total. Setting it makes
	// the source estimate the size first (BASE_BACKUP PROGRESS), which
	// reads the data directory's metadata once more.
	Progress func(done, total int64)
	// NoSync skips fsync of the files and folders, as pg_basebackup
	// --no-sync: only for tests and throw-away copies.
	NoSync bool
	// Logger receives a line per step; nil means discard.
	Logger *slog.Logger
}

const (
	minRate = 32 << 10
	maxRate = 1 << 30
)

// check reports every problem of cfg at once.
func (cfg Config) check() error {
	var problems []error
	if cfg.Host == "" {
		problems = append(problems, errors.New("Host is empty: name the source server"))
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		problems = append(problems, fmt.Errorf("Port %d is not a TCP port", cfg.Port))
	}
	if cfg.User == "" {
		problems = append(problems, errors.New("User is empty: name a role with the REPLICATION attribute"))
	}
	if cfg.BackupPath == "" {
		problems = append(problems, errors.New("BackupPath is empty: name the directory to write the backup into"))
	}
	rule, ok := compressionRules[cfg.Compression]
	switch {
	case !ok:
		problems = append(problems, fmt.Errorf("Compression %v is not one of none, gzip, lz4, zstd", cfg.Compression))
	case cfg.CompressionLevel != 0 && rule.newCompression == nil:
		problems = append(problems, fmt.Errorf("CompressionLevel %d given without a Compression", cfg.CompressionLevel))
	case cfg.CompressionLevel != 0 && (cfg.CompressionLevel < rule.minLevel || cfg.CompressionLevel > rule.maxLevel):
		problems = append(problems, fmt.Errorf("CompressionLevel %d is outside %d-%d for %v", cfg.CompressionLevel, rule.minLevel, rule.maxLevel, cfg.Compression))
	}
	if cfg.MaxRate != 0 && (cfg.MaxRate < minRate || cfg.MaxRate > maxRate) {
		problems = append(problems, fmt.Errorf("MaxRate %d bytes/s is outside the source's range, 32 kB/s to 1 GB/s (0: no limit)", cfg.MaxRate))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(problems...))
}
