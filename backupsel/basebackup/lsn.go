package basebackup

import (
	"fmt"
	"strconv"
	"strings"
)

// LSN is a WAL location, printed as PostgreSQL prints it ("0/3000028").
type LSN uint64

func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint32(l)) }

// parseLSN reads an LSN as the server sends it ("16/B374D848").
func parseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("%q is not a WAL location", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q is not a WAL location", s)
	}
	return LSN(h<<32 | l), nil
}

// segmentName is the WAL file name holding lsn, as XLogFileName makes it.
func segmentName(tli uint32, lsn LSN, segSize int64) string {
	segNo := uint64(lsn) / uint64(segSize)
	perID := uint64(0x100000000) / uint64(segSize)
	return fmt.Sprintf("%08X%08X%08X", tli, segNo/perID, segNo%perID)
}

// parseSize reads a size setting as SHOW prints it ("16MB", "1GB", "512kB").
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"kB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"B", 1}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%q is not a size", s)
			}
			return v * u.mult, nil
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return v, nil
}
