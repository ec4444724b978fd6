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
)

// versionRange holds what differs between PostgreSQL majors, for majors in
// [from, to) (to 0: no upper bound). 9.x releases count as major 9.
type versionRange struct {
	from, to int
	walDir   string // directory restored WAL goes into
}

var versionTable = []versionRange{
	{from: 9, to: 10, walDir: "pg_xlog"},
	{from: 10, to: 0, walDir: "pg_wal"},
}

func forMajor(major int) versionRange {
	for _, r := range versionTable {
		if major >= r.from && (r.to == 0 || major < r.to) {
			return r
		}
	}
	return versionTable[len(versionTable)-1]
}

// parsePGVersion reads PG_VERSION ("15\n", "9.6\n") into the major number
// (9 for every 9.x release) and the text.
func parsePGVersion(data []byte) (int, string, error) {
	s := strings.TrimSpace(string(data))
	head, _, _ := strings.Cut(s, ".")
	n, err := strconv.Atoi(head)
	if err != nil || n < 7 || n > 99 || s == "" {
		return 0, s, fmt.Errorf("PG_VERSION holds %q, not a PostgreSQL major version", s)
	}
	return n, s, nil
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

// parseTablespaceMap reads tablespace_map: "<oid> <path>" per line; from
// PostgreSQL 14 a backslash escapes a following backslash, CR or LF in path.
func parseTablespaceMap(data []byte) ([]Tablespace, error) {
	var out []Tablespace
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		oidText, p, ok := strings.Cut(line, " ")
		oid, err := strconv.ParseUint(oidText, 10, 32)
		if !ok || err != nil || p == "" {
			return nil, fmt.Errorf("tablespace_map: bad line %q", line)
		}
		var b strings.Builder
		for i := 0; i < len(p); i++ {
			if p[i] == '\\' && i+1 < len(p) && (p[i+1] == '\\' || p[i+1] == '\r') {
				i++
			}
			b.WriteByte(p[i])
		}
		out = append(out, Tablespace{OID: uint32(oid), Location: b.String()})
	}
	return out, nil
}

func formatTablespaceMap(ts []Tablespace) ([]byte, error) {
	var b bytes.Buffer
	for _, t := range ts {
		if strings.ContainsAny(t.Location, "\n\r\\") {
			return nil, fmt.Errorf("tablespace location %q: newlines and backslashes are not supported", t.Location)
		}
		fmt.Fprintf(&b, "%d %s\n", t.OID, t.Location)
	}
	return b.Bytes(), nil
}

var walFileRe = regexp.MustCompile(`^[0-9A-F]{24}(\.partial)?$|^[0-9A-F]{8}\.history$`)

// isWALFile reports whether name is a WAL segment or timeline history file.
func isWALFile(name string) bool { return walFileRe.MatchString(name) }
