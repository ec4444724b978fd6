package backupsel

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/pgstage/pgstage/internal/pgver"
)

// versionRules holds what differs between PostgreSQL majors.
type versionRules struct {
	walDir string // directory restored WAL goes into
	// tsMapEscapes: the characters of a tablespace location that
	// tablespace_map precedes with a backslash. Until 13 only CR and LF
	// (do_pg_start_backup; the reader takes any other backslash as is);
	// from 14 backslash too, and the reader drops every backslash and keeps
	// the character after it.
	tsMapEscapes string
}

// versions covers every major: a version newer than pgstage knows gets the
// newest rules.
var versions = pgver.Table[versionRules]{
	{Range: pgver.Before(pgver.V10), Rules: versionRules{walDir: "pg_xlog", tsMapEscapes: "\n\r"}},
	{Range: pgver.Range{From: pgver.V10, To: pgver.V14}, Rules: versionRules{walDir: "pg_wal", tsMapEscapes: "\n\r"}},
	{Range: pgver.Since(pgver.V14), Rules: versionRules{walDir: "pg_wal", tsMapEscapes: "\n\r\\"}},
}

// rulesFor returns the rules of major; one outside every row (unknown)
// gets the newest.
func rulesFor(major pgver.Major) versionRules {
	if r, ok := versions.For(major); ok {
		return r
	}
	return versions[len(versions)-1].Rules
}

// parsePGVersion reads PG_VERSION ("15\n", "9.6\n").
func parsePGVersion(data []byte) (pgver.Major, error) {
	m, err := pgver.Parse(string(data))
	if err != nil {
		return 0, fmt.Errorf("PG_VERSION holds %q, not a PostgreSQL major version", strings.TrimSpace(string(data)))
	}
	return m, nil
}

// systemIdentifier reads the database system identifier from global/pg_control.
// ControlFileData in src/include/catalog/pg_control.h starts with
// "uint64 system_identifier" in every release from 9.4 to 18; the file is in
// the byte order of the machine that wrote it, little-endian on the x86-64 and
// ARM64 servers pgstage supports.
func systemIdentifier(pgControl []byte) (uint64, error) {
	if len(pgControl) < 8 {
		return 0, fmt.Errorf("global/pg_control is %d bytes, too short", len(pgControl))
	}
	return binary.LittleEndian.Uint64(pgControl[:8]), nil
}

// BackupLabel holds the fields of the backup_label file pg_basebackup writes.
type BackupLabel struct {
	StartWALLocation string // e.g. 0/2000028
	StartWALFile     string // the first WAL segment the backup needs
	CheckpointLoc    string
	BackupMethod     string
	BackupFrom       string
	StartTime        string
	Label            string
	StartTimeline    uint32 // 11+; 0 when absent
}

var startWALRe = regexp.MustCompile(`^([0-9A-Fa-f]+/[0-9A-Fa-f]+) \(file ([0-9A-F]{24})\)$`)

func parseBackupLabel(data []byte) (BackupLabel, error) {
	var l BackupLabel
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		switch k {
		case "START WAL LOCATION":
			m := startWALRe.FindStringSubmatch(v)
			if m == nil {
				return l, fmt.Errorf("backup_label: cannot read START WAL LOCATION %q", v)
			}
			l.StartWALLocation, l.StartWALFile = m[1], m[2]
		case "CHECKPOINT LOCATION":
			l.CheckpointLoc = v
		case "BACKUP METHOD":
			l.BackupMethod = v
		case "BACKUP FROM":
			l.BackupFrom = v
		case "START TIME":
			l.StartTime = v
		case "LABEL":
			l.Label = v
		case "START TIMELINE":
			tl, err := strconv.ParseUint(v, 10, 32)
			if err == nil {
				l.StartTimeline = uint32(tl)
			}
		}
	}
	if l.StartWALFile == "" {
		return l, errors.New("backup_label has no START WAL LOCATION")
	}
	return l, nil
}

// Tablespace is a tablespace of the backup.
type Tablespace struct {
	OID      uint32
	Location string // where the source had it (from tablespace_map or the pg_tblspc link)
}

// parseTablespaceMap reads tablespace_map: "<oid> <path>" per line, where
// an escaped LF or CR (and from 14 an escaped backslash) belongs to the
// path. An unescaped CR ends a line too, as in PostgreSQL's reader.
func parseTablespaceMap(data []byte, major pgver.Major) ([]Tablespace, error) {
	all := strings.Contains(rulesFor(major).tsMapEscapes, "\\")
	var out []Tablespace
	var line []byte
	flush := func() error {
		if len(line) == 0 {
			return nil
		}
		oidText, p, ok := strings.Cut(string(line), " ")
		oid, err := strconv.ParseUint(oidText, 10, 32)
		if !ok || err != nil || p == "" {
			return fmt.Errorf("tablespace_map: bad line %q", line)
		}
		out = append(out, Tablespace{OID: uint32(oid), Location: p})
		line = line[:0]
		return nil
	}
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c == '\\' && all && i+1 == len(data) {
			break // PostgreSQL drops a backslash at the end of the file
		}
		if c == '\\' && i+1 < len(data) && (all || data[i+1] == '\n' || data[i+1] == '\r') {
			i++
			line = append(line, data[i])
			continue
		}
		if c == '\n' || c == '\r' {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		line = append(line, c)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// formatTablespaceMap writes tablespace_map as PostgreSQL major writes it.
// Before 14 a location with a backslash before CR, LF or its end cannot be
// written so that PostgreSQL reads it back.
func formatTablespaceMap(ts []Tablespace, major pgver.Major) ([]byte, error) {
	escapes := rulesFor(major).tsMapEscapes
	var b bytes.Buffer
	for _, t := range ts {
		if !strings.Contains(escapes, "\\") {
			l := t.Location + "\n"
			if strings.Contains(l, "\\\n") || strings.Contains(l, "\\\r") {
				return nil, fmt.Errorf("tablespace %d location %q: PostgreSQL %s cannot read a backslash before a line end in tablespace_map", t.OID, t.Location, major)
			}
		}
		fmt.Fprintf(&b, "%d ", t.OID)
		for i := 0; i < len(t.Location); i++ {
			if strings.IndexByte(escapes, t.Location[i]) >= 0 {
				b.WriteByte('\\')
			}
			b.WriteByte(t.Location[i])
		}
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

var walFileRe = regexp.MustCompile(`^[0-9A-F]{24}(\.partial)?$|^[0-9A-F]{8}\.history$`)

// isWALFile reports whether name is a WAL segment or timeline history file.
func isWALFile(name string) bool { return walFileRe.MatchString(name) }

// walMagic maps XLOG_PAGE_MAGIC, the first two bytes of every WAL page, to
// the major version whose server writes it. The values were read from a
// fresh initdb of each major here, and TestSelectRealBackups checks them
// against every major's real backups. A magic not listed (9.x, a future
// major, a big-endian source) is not guessed: Select then reads base.tar.
var walMagic = map[uint16]pgver.Major{
	0xD097: pgver.V10, 0xD098: pgver.V11, 0xD101: pgver.V12, 0xD106: pgver.V13, 0xD10D: pgver.V14,
	0xD110: pgver.V15, 0xD113: pgver.V16, 0xD116: pgver.V17, 0xD118: pgver.V18,
}

// walLongHeaderLen is the size of XLogLongPageHeaderData, the header of a
// WAL segment's first page: xlp_magic (2 bytes), xlp_info (2), xlp_tli
// (4), xlp_pageaddr (8), xlp_rem_len (4) and padding to 24, then
// xlp_sysid (8), xlp_seg_size (4), xlp_xlog_blcksz (4).
const walLongHeaderLen = 40

// xlpLongHeader is the xlp_info bit of a page with the long header.
const xlpLongHeader = 0x0002

// walIdentity reads the major version and the system identifier from the
// first page header of a WAL segment (little-endian, as every platform
// PostgreSQL runs on in practice writes it).
func walIdentity(head []byte) (major pgver.Major, sysid uint64, ok bool) {
	if len(head) < walLongHeaderLen {
		return 0, 0, false
	}
	major, ok = walMagic[binary.LittleEndian.Uint16(head[0:2])]
	if !ok || binary.LittleEndian.Uint16(head[2:4])&xlpLongHeader == 0 {
		return 0, 0, false
	}
	sysid = binary.LittleEndian.Uint64(head[24:32])
	return major, sysid, sysid != 0
}
