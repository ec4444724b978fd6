package snapclone

// Internal: the parsers of what the staging returns are unexported.

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLabelStart(t *testing.T) {
	for _, tc := range []struct {
		name, label, file string
		lsn               uint64
		ok                bool
	}{
		{"15", "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: standby\n", "000000010000000000000002", 0x2000028, true},
		{"high", "START WAL LOCATION: 1A/FF000028 (file 000000030000001A000000FF)\n", "000000030000001A000000FF", 0x1AFF000028, true},
		{"none", "CHECKPOINT LOCATION: 0/2000060\n", "", 0, false},
		{"bad lsn", "START WAL LOCATION: 0/x (file 000000010000000000000002)\n", "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lsn, file, err := labelStart(tc.label)
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.lsn, lsn)
			assert.Equal(t, tc.file, file)
		})
	}
}

func TestSettingBytes(t *testing.T) {
	for _, tc := range []struct {
		setting, unit string
		want          int64
	}{{"16777216", "B", 16 << 20}, {"2048", "8kB", 16 << 20}, {"64", "MB", 64 << 20}} {
		got, err := settingBytes(tc.setting, tc.unit)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "%s %s", tc.setting, tc.unit)
	}
	_, err := settingBytes("1", "GB")
	assert.Error(t, err)
}

func TestWALSegmentName(t *testing.T) {
	assert.Equal(t, "0000000000000002", walSegmentName(2, 16<<20))
	assert.Equal(t, "0000000100000000", walSegmentName(256, 16<<20))
	assert.Equal(t, "0000000100000000", walSegmentName(4096, 1<<20))
}

func FuzzLabelStart(f *testing.F) {
	f.Add("START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n")
	f.Add("START WAL LOCATION: 1A/FF000028 (file 000000030000001A000000FF)\nSTART TIMELINE: 3\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, label string) {
		lsn, file, err := labelStart(label)
		if err != nil {
			return
		}
		if len(file) != 24 {
			t.Fatalf("segment file %q", file)
		}
		back, err := parseLSN(formatLSN(lsn))
		if err != nil || back != lsn {
			t.Fatalf("LSN %X does not survive formatting: %v", lsn, err)
		}
		if !strings.Contains(label, "START WAL LOCATION: ") {
			t.Fatal("accepted a label without START WAL LOCATION")
		}
	})
}
