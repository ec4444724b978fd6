package pgcontrol_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgcontrol"
	"github.com/pgstage/pgstage/internal/pgtest"
)

// expected is what the server itself said about the fixture (see
// testdata/generate.sh).
type expected struct {
	Major              int    `json:"major"`
	SystemIdentifier   string `json:"system_identifier"`
	PgControlVersion   uint32 `json:"pg_control_version"`
	CatalogVersion     uint32 `json:"catalog_version_no"`
	CheckpointLSN      string `json:"checkpoint_lsn"`
	RedoLSN            string `json:"redo_lsn"`
	TimeLineID         uint32 `json:"timeline_id"`
	BlockSize          uint32 `json:"block_size"`
	WALBlockSize       uint32 `json:"wal_block_size"`
	WALSegmentSize     uint32 `json:"wal_segment_size"`
	MaxConnections     int    `json:"max_connections"`
	MaxWorkerProcesses int    `json:"max_worker_processes"`
	MaxWalSenders      int    `json:"max_wal_senders"`
	MaxPreparedXacts   int    `json:"max_prepared_xacts"`
	MaxLocksPerXact    int    `json:"max_locks_per_xact"`
	WALLevel           string `json:"wal_level"`
	State              string `json:"state"`
}

func TestParseFixtures(t *testing.T) {
	for major := 10; major <= 18; major++ {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", fmt.Sprintf("pg_control.%d", major)))
			require.NoError(t, err)
			j, err := os.ReadFile(filepath.Join("testdata", fmt.Sprintf("expected.%d.json", major)))
			require.NoError(t, err)
			var want expected
			require.NoError(t, json.Unmarshal(j, &want))

			cd, err := pgcontrol.Parse(b)
			require.NoError(t, err)
			assert.Equal(t, want.SystemIdentifier, strconv.FormatUint(cd.SystemIdentifier, 10), "system identifier")
			assert.Equal(t, want.PgControlVersion, cd.PgControlVersion)
			assert.Equal(t, want.CatalogVersion, cd.CatalogVersion)
			assert.True(t, cd.Covers(strconv.Itoa(major)), "layout %v covers %d", cd.Majors, major)
			assert.Equal(t, want.State, cd.State.String())
			assert.Equal(t, want.CheckpointLSN, cd.CheckpointLSN.String())
			assert.Equal(t, want.RedoLSN, cd.RedoLSN.String())
			assert.Equal(t, want.TimeLineID, cd.TimeLineID)
			assert.Equal(t, want.BlockSize, cd.BlockSize)
			assert.Equal(t, want.WALBlockSize, cd.WALBlockSize)
			assert.Equal(t, want.WALSegmentSize, cd.WALSegmentSize)
			assert.Equal(t, want.MaxConnections, cd.MaxConnections)
			assert.Equal(t, want.MaxWorkerProcesses, cd.MaxWorkerProcesses)
			if major >= 12 {
				assert.Equal(t, want.MaxWalSenders, cd.MaxWalSenders)
			} else {
				assert.Zero(t, cd.MaxWalSenders, "not recorded before 12")
			}
			assert.Equal(t, want.MaxPreparedXacts, cd.MaxPreparedXacts)
			assert.Equal(t, want.MaxLocksPerXact, cd.MaxLocksPerXact)
			assert.Equal(t, want.WALLevel, cd.WALLevel)
			assert.True(t, cd.WALLogHints)
			assert.True(t, cd.TrackCommitTimestamp)
			assert.Equal(t, uint32(8), cd.MaxAlign)
			assert.Equal(t, uint32(131072), cd.RelSegSize)
			assert.True(t, cd.Time.After(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), "update time %v: the fixtures were made in 2026", cd.Time)
			assert.False(t, cd.CheckpointTime.Before(cd.Time.Add(-time.Hour)), "checkpoint time %v long before the update %v", cd.CheckpointTime, cd.Time)
		})
	}
}

func TestParseErrors(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "pg_control.15"))
	require.NoError(t, err)
	flip := func(off int) []byte {
		b := append([]byte(nil), good...)
		b[off] ^= 0x40
		return b
	}
	bigEndian := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(bigEndian[8:], 1300)

	tests := []struct {
		name string
		in   []byte
		want error
		text string
	}{
		{"empty", nil, pgcontrol.ErrShort, "0 bytes"},
		{"cut before crc", good[:200], pgcontrol.ErrShort, "needs 292"},
		{"unknown version", func() []byte { b := append([]byte(nil), good...); b[8] = 7; return b }(), pgcontrol.ErrVersion, "not a pg_control file"},
		{"big endian", bigEndian, pgcontrol.ErrVersion, "big-endian"},
		{"flipped max_connections", flip(180), pgcontrol.ErrChecksum, "13-16 layout"},
		{"flipped crc", flip(288), pgcontrol.ErrChecksum, "stored"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pgcontrol.Parse(tc.in)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.want)
			var fe *pgcontrol.FormatError
			require.ErrorAs(t, err, &fe)
			assert.Contains(t, err.Error(), tc.text)
		})
	}
}

func TestReadFileNamesPath(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "global"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "global", "pg_control"), make([]byte, 8192), 0o600))
	_, err := pgcontrol.ReadFile(dir)
	require.ErrorIs(t, err, pgcontrol.ErrVersion)
	assert.Contains(t, err.Error(), filepath.Join(dir, "global", "pg_control"))

	_, err = pgcontrol.ReadFile(filepath.Join(dir, "absent"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// synth builds a control file for the layouts no binary here can write
// (9.4-9.6): the values sit at the offsets pg_control.h gives, and the CRC is
// the one that layout uses, so the test checks that 9.4 and 9.5 (same
// pg_control_version 942) are told apart by their CRC.
func synth(version uint32, crcAt int, legacy bool, fields map[int]uint32) []byte {
	b := make([]byte, 8192)
	binary.LittleEndian.PutUint64(b[0:], 6400000000000000001)
	binary.LittleEndian.PutUint32(b[8:], version)
	for off, v := range fields {
		binary.LittleEndian.PutUint32(b[off:], v)
	}
	var sum uint32
	if legacy {
		// 9.4's CRC, written out independently of the package: the standard
		// table, shifted the other way.
		crc := ^uint32(0)
		for _, c := range b[:crcAt] {
			crc = crc32.IEEETable[byte(crc>>24)^c] ^ (crc << 8)
		}
		sum = ^crc
	} else {
		sum = crc32.Checksum(b[:crcAt], crc32.MakeTable(crc32.Castagnoli))
	}
	binary.LittleEndian.PutUint32(b[crcAt:], sum)
	return b
}

func TestParseOldLayouts(t *testing.T) {
	const floatLo, floatHi = 0x00000000, 0x4132D687 // 1234567.0
	tests := []struct {
		name    string
		version uint32
		crcAt   int
		legacy  bool
		fields  map[int]uint32
		want    string
	}{
		{"9.4", 942, 240, true, map[int]uint32{16: 6, 164: 2, 172: 150, 176: 12, 180: 5, 184: 80, 192: floatLo, 196: floatHi, 212: 16 << 20}, "9.4"},
		{"9.5", 942, 256, false, map[int]uint32{16: 6, 172: 3, 180: 150, 184: 12, 188: 5, 192: 80, 208: floatLo, 212: floatHi, 228: 16 << 20}, "9.5"},
		{"9.6", 960, 256, false, map[int]uint32{16: 6, 172: 1, 180: 150, 184: 12, 188: 5, 192: 80, 208: floatLo, 212: floatHi, 228: 16 << 20}, "9.6"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cd, err := pgcontrol.Parse(synth(tc.version, tc.crcAt, tc.legacy, tc.fields))
			require.NoError(t, err)
			assert.Equal(t, []string{tc.want}, cd.Majors)
			assert.Equal(t, pgcontrol.StateInProduction, cd.State)
			assert.Equal(t, 150, cd.MaxConnections)
			assert.Equal(t, 12, cd.MaxWorkerProcesses)
			assert.Equal(t, 5, cd.MaxPreparedXacts)
			assert.Equal(t, 80, cd.MaxLocksPerXact)
			assert.Equal(t, 0, cd.MaxWalSenders)
			assert.Equal(t, uint32(16<<20), cd.WALSegmentSize)
			assert.Equal(t, map[string]string{"9.4": "hot_standby", "9.5": "logical", "9.6": "replica"}[tc.name], cd.WALLevel)
		})
	}
}

// TestAgainstPgControldata compares the reader with Debian's pg_controldata
// 15 on a data directory written by the real server 15.
func TestAgainstPgControldata(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		if major != 15 {
			t.Skip("Debian's pg_controldata reads only 15")
		}
		controldata := filepath.Join(pgtest.ClientBinDir(t), "pg_controldata")
		dir := pgtest.TempDir(t)
		data := filepath.Join(dir, "data")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := pgtest.Command(ctx, filepath.Join(pgtest.BinDir(t, major), "initdb"),
			"-D", data, "-U", "postgres", "-A", "trust", "--wal-segsize=64").CombinedOutput()
		require.NoError(t, err, "%s", out)

		cd, err := pgcontrol.ReadFile(data)
		require.NoError(t, err)
		cmd := exec.CommandContext(ctx, controldata, data)
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		out, err = cmd.Output()
		require.NoError(t, err)
		got := map[string]string{}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok {
				got[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
		want := map[string]string{
			"pg_control version number":            strconv.Itoa(int(cd.PgControlVersion)),
			"Catalog version number":               strconv.Itoa(int(cd.CatalogVersion)),
			"Database system identifier":           strconv.FormatUint(cd.SystemIdentifier, 10),
			"Database cluster state":               cd.State.String(),
			"Latest checkpoint location":           cd.CheckpointLSN.String(),
			"Latest checkpoint's REDO location":    cd.RedoLSN.String(),
			"Latest checkpoint's TimeLineID":       strconv.Itoa(int(cd.TimeLineID)),
			"Latest checkpoint's NextOID":          strconv.Itoa(int(cd.NextOID)),
			"Latest checkpoint's NextXID":          fmt.Sprintf("%d:%d", cd.NextXID>>32, uint32(cd.NextXID)),
			"wal_level setting":                    cd.WALLevel,
			"max_connections setting":              strconv.Itoa(cd.MaxConnections),
			"max_worker_processes setting":         strconv.Itoa(cd.MaxWorkerProcesses),
			"max_wal_senders setting":              strconv.Itoa(cd.MaxWalSenders),
			"max_prepared_xacts setting":           strconv.Itoa(cd.MaxPreparedXacts),
			"max_locks_per_xact setting":           strconv.Itoa(cd.MaxLocksPerXact),
			"Database block size":                  strconv.Itoa(int(cd.BlockSize)),
			"WAL block size":                       strconv.Itoa(int(cd.WALBlockSize)),
			"Bytes per WAL segment":                strconv.Itoa(int(cd.WALSegmentSize)),
			"Blocks per segment of large relation": strconv.Itoa(int(cd.RelSegSize)),
			"Data page checksum version":           strconv.Itoa(int(cd.DataChecksumVersion)),
		}
		for k, v := range want {
			assert.Equal(t, got[k], v, "pg_controldata %q", k)
		}
		assert.Equal(t, uint32(64<<20), cd.WALSegmentSize)
	})
}

func FuzzParse(f *testing.F) {
	for major := 10; major <= 18; major++ {
		b, err := os.ReadFile(filepath.Join("testdata", fmt.Sprintf("pg_control.%d", major)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:512])
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		cd, err := pgcontrol.Parse(b)
		if err == nil && cd == nil {
			t.Fatal("nil data without error")
		}
		if err != nil && !errors.Is(err, pgcontrol.ErrShort) && !errors.Is(err, pgcontrol.ErrVersion) && !errors.Is(err, pgcontrol.ErrChecksum) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}
