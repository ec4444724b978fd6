package snapclone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgstage/pgstage/internal/pgver"
)

// backupSession is one non-exclusive base backup on the staging: one
// session, held open from start to stop (closing it aborts the backup).
type backupSession struct {
	conn    *pgx.Conn
	r       rules
	major   pgver.Major
	slot    string // "" when no slot could be made
	segSize int64
	log     *slog.Logger
}

// backupResult is what the stop returned.
type backupResult struct {
	startLSN, stopLSN uint64
	startFile         string // the WAL segment of the start (redo) point
	label, spcmap     string
}

// startBackup connects to the staging and starts a non-exclusive backup
// with a fast checkpoint (on a standby: a restartpoint), after taking a
// physical slot that holds the WAL from before the start point. A slot
// that cannot be made (max_replication_slots = 0) is logged, not fatal: the
// WAL check after the copy still catches recycled segments.
func startBackup(ctx context.Context, connString string, want pgver.Major, label string, log *slog.Logger) (*backupSession, error) {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return nil, fmt.Errorf("snapclone: connecting to the staging for the base backup: %w", err)
	}
	b := &backupSession{conn: conn, log: log}
	ok := false
	defer func() {
		if !ok {
			b.close()
		}
	}()
	var num int
	var segSetting, segUnit string
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int, setting, coalesce(unit, '') FROM pg_settings WHERE name = 'wal_segment_size'").Scan(&num, &segSetting, &segUnit); err != nil {
		return nil, fmt.Errorf("snapclone: asking the staging its version: %w", err)
	}
	b.major = pgver.FromNum(num)
	if b.major != want {
		return nil, fmt.Errorf("%w: the connection reaches PostgreSQL %s but the data directory is %s: ConnString must name the staging itself", ErrInvalidConfig, b.major, want)
	}
	if b.segSize, err = settingBytes(segSetting, segUnit); err != nil {
		return nil, fmt.Errorf("snapclone: wal_segment_size: %w", err)
	}
	if b.r, err = rulesFor(b.major); err != nil {
		return nil, err
	}
	if !b.r.backupAPI {
		return nil, noBackupAPI(b.major)
	}
	slot := fmt.Sprintf("pgstage_snapshot_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	if _, err := conn.Exec(ctx, b.r.slotSQL, slot); err != nil {
		log.Warn("no slot to hold WAL during the snapshot; the WAL check after the copy still applies", "error", err)
	} else {
		b.slot = slot
	}
	if _, err := conn.Exec(ctx, b.r.startSQL, label, true); err != nil {
		return nil, fmt.Errorf("snapclone: starting the base backup on the staging: %w", err)
	}
	ok = true
	return b, nil
}

// noBackupAPI is the refusal for a running 9.4 or 9.5 staging.
func noBackupAPI(m pgver.Major) error {
	return fmt.Errorf("%w: PostgreSQL %s takes base backups only on a primary (exclusive mode), so a reflink or copy of a running %s staging cannot be made consistent: put the staging on btrfs (CreateDataDir; a subvolume snapshot needs no SQL), or stop the staging, snapshot the stopped data directory and start it again", ErrNoBackupAPI, m, m)
}

// stop ends the backup and returns what the copy needs.
func (b *backupSession) stop(ctx context.Context) (backupResult, error) {
	var res backupResult
	var lsn string
	if err := b.conn.QueryRow(ctx, b.r.stopSQL).Scan(&lsn, &res.label, &res.spcmap); err != nil {
		return res, fmt.Errorf("snapclone: stopping the base backup on the staging: %w", err)
	}
	var err error
	if res.stopLSN, err = parseLSN(lsn); err != nil {
		return res, err
	}
	if res.startLSN, res.startFile, err = labelStart(res.label); err != nil {
		return res, err
	}
	return res, nil
}

// close drops a non-temporary slot and closes the session, which aborts a
// backup still running.
func (b *backupSession) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if b.slot != "" && !b.r.tempSlot {
		if _, err := b.conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", b.slot); err != nil {
			b.log.Warn("could not drop the snapshot's slot on the staging: drop it by hand", "slot", b.slot, "error", err)
		}
	}
	_ = b.conn.Close(ctx)
}

var labelStartRE = regexp.MustCompile(`(?m)^START WAL LOCATION: ([0-9A-Fa-f]+/[0-9A-Fa-f]+) \(file ([0-9A-F]{24})\)`)

// labelStart reads the start (redo) point and its segment from a
// backup_label.
func labelStart(label string) (uint64, string, error) {
	m := labelStartRE.FindStringSubmatch(label)
	if m == nil {
		return 0, "", fmt.Errorf("snapclone: the backup_label the staging returned has no START WAL LOCATION line: %q", label)
	}
	lsn, err := parseLSN(m[1])
	return lsn, m[2], err
}

func parseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("snapclone: %q is not an LSN", s)
	}
	return h<<32 | l, nil
}

func formatLSN(l uint64) string { return fmt.Sprintf("%X/%X", l>>32, uint32(l)) }

// settingBytes reads a pg_settings value with its unit ("B", "8kB", "MB").
func settingBytes(setting, unit string) (int64, error) {
	n, err := strconv.ParseInt(setting, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", setting)
	}
	mult := int64(1)
	u := strings.TrimLeft(unit, "0123456789")
	if k := strings.TrimSuffix(unit, u); k != "" {
		mult, _ = strconv.ParseInt(k, 10, 64)
	}
	switch u {
	case "B", "":
	case "kB":
		mult *= 1 << 10
	case "MB":
		mult *= 1 << 20
	default:
		return 0, fmt.Errorf("unknown unit %q", unit)
	}
	return n * mult, nil
}

// walSegmentName is the file name part after the timeline of segment
// segno (the timeline is the first 8 hex digits).
func walSegmentName(segno uint64, segSize int64) string {
	perID := uint64(0x100000000) / uint64(segSize)
	return fmt.Sprintf("%08X%08X", segno/perID, segno%perID)
}

// lastSegment is the segment holding the last byte before stop: a stop
// point on a segment boundary needs nothing of the next one.
func lastSegment(stop uint64, segSize int64) uint64 {
	if stop > 0 {
		stop--
	}
	return stop / uint64(segSize)
}

var walFileRE = regexp.MustCompile(`^[0-9A-F]{24}$`)

// walFilter returns the exclude function that copies, of a WAL directory,
// the timeline history files and the segments from the start point's to
// the stop point's: not the recycled ones, renamed ahead for reuse.
func walFilter(res backupResult, segSize int64) func(rel string, dir bool) (bool, bool) {
	first := res.startFile[8:]
	last := walSegmentName(lastSegment(res.stopLSN, segSize), segSize)
	return func(rel string, dir bool) (bool, bool) {
		if dir {
			return false, true // archive_status: made, empty
		}
		name := filepath.Base(rel)
		if strings.HasSuffix(name, ".history") {
			return false, false
		}
		if walFileRE.MatchString(name) {
			return name[8:] < first || name[8:] > last, false
		}
		return true, false // xlogtemp.*, .partial, ...
	}
}

// checkWAL verifies that walDir holds every segment from the start point
// to the stop point.
func checkWAL(walDir string, res backupResult, segSize int64) error {
	entries, err := os.ReadDir(walDir)
	if err != nil {
		return fmt.Errorf("snapclone: %w", err)
	}
	have := map[string]bool{}
	for _, e := range entries {
		if walFileRE.MatchString(e.Name()) {
			have[e.Name()[8:]] = true
		}
	}
	var missing []error
	for seg := res.startLSN / uint64(segSize); seg <= lastSegment(res.stopLSN, segSize); seg++ {
		if name := walSegmentName(seg, segSize); !have[name] {
			missing = append(missing, fmt.Errorf("segment ...%s", name))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: from %s to %s the staging had already recycled %w; keep WAL longer on the staging (max_replication_slots > 0 lets the snapshot hold it with a slot, or raise wal_keep_size) and try again",
			ErrWALMissing, formatLSN(res.startLSN), formatLSN(res.stopLSN), errors.Join(missing...))
	}
	return nil
}
