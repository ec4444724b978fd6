// Package pgcontrol reads PostgreSQL's control file, global/pg_control, for
// every major version from 9.4 to 18, without the server's pg_controldata.
//
// The staging server bundles pgstage runs ship no pg_controldata, and the one
// Debian ships reads only its own major. Yet a standby must know values that
// only pg_control holds before it starts: the source's hot-standby parameters
// (a hot standby refuses to start when its max_connections and friends are
// below the primary's), the system identifier, the WAL segment size.
//
// # Layouts
//
// The file is the C struct ControlFileData written in host byte order with
// the host's alignment. Its layout changes with pg_control_version (at byte 8),
// so [Parse] picks the layout by that number and checks the CRC the server
// stored after the struct: CRC-32C from 9.5, and before that the "legacy"
// CRC-32 variant of 9.4 (9.4 and 9.5 share pg_control_version 942, and the
// CRC algorithm is what tells them apart). Only little-endian 64-bit files
// (x86-64, arm64) are supported: a file from another architecture fails the
// checks with an error saying so.
//
// | pg_control_version | majors | change                                              |
// |--------------------|--------|-----------------------------------------------------|
// | 942                | 9.4    | legacy CRC-32                                       |
// | 942                | 9.5    | CRC-32C; commit-timestamp fields                    |
// | 960                | 9.6    | same layout as 9.5                                  |
// | 1002               | 10     | enableIntTimes gone; mock authentication nonce      |
// | 1100               | 11     | prevCheckPoint gone                                 |
// | 1201               | 12     | 64-bit nextXid in the checkpoint; max_wal_senders   |
// | 1300               | 13-16  | float4ByVal gone                                    |
// | 1700               | 17     | wal_level in the checkpoint (in former padding)     |
// | 1800               | 18     | default_char_signedness                             |
//
// The layouts follow src/include/catalog/pg_control.h of each branch; the
// files in testdata/ come from real initdb runs of 10 to 18 (see
// testdata/generate.sh), and a test compares the reader with Debian's
// pg_controldata 15 on a live data directory. The 9.4 to 9.6 layouts are
// derived from the headers only: no binaries of those majors run here.
package pgcontrol
