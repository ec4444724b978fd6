package basebackup

import (
	"fmt"
	"strings"

	"github.com/pgstage/pgstage/internal/pgver"
)

// rules is what differs between source majors in taking a backup.
type rules struct {
	// newSyntax: BASE_BACKUP (OPTION 'value', ...) and one COPY stream
	// whose CopyData messages start with a type byte ('n', 'd', 'p', 'm');
	// before 15, bare keywords and one COPY stream per archive.
	newSyntax bool
	// terminatedTar: the server ends each tar with its two zero blocks;
	// before 15 the client adds them, as pg_basebackup does.
	terminatedTar bool
	// manifest: the server sends backup_manifest (13+).
	manifest bool
	// tablespaceMap: TABLESPACE_MAP puts tablespace_map in base.tar (9.5+);
	// 9.4 has symbolic links in the tar instead.
	tablespaceMap bool
	// tempSlot: a temporary physical slot keeps the WAL the backup needs
	// until it is streamed (10+).
	tempSlot bool
	// showSegSize: SHOW works on a replication connection (10+); before
	// it, the WAL segment size is the compiled-in 16 MB pg_basebackup
	// assumes too.
	showSegSize bool
}

var versionRules = pgver.Table[rules]{
	{Range: pgver.Since(pgver.V15), Rules: rules{newSyntax: true, terminatedTar: true, manifest: true, tablespaceMap: true, tempSlot: true, showSegSize: true}},
	{Range: pgver.Range{From: pgver.V13, To: pgver.V15}, Rules: rules{manifest: true, tablespaceMap: true, tempSlot: true, showSegSize: true}},
	{Range: pgver.Range{From: pgver.V10, To: pgver.V13}, Rules: rules{tablespaceMap: true, tempSlot: true, showSegSize: true}},
	{Range: pgver.Range{From: pgver.V9_5, To: pgver.V10}, Rules: rules{tablespaceMap: true}},
	{Range: pgver.Range{From: pgver.V9_4, To: pgver.V9_5}, Rules: rules{}},
}

// defaultSegSize is the WAL segment size sources before 10 were built with
// unless configured otherwise at compile time.
const defaultSegSize = 16 << 20

// baseBackupCommand spells the BASE_BACKUP command pg_basebackup -F t -X
// stream sends, in the source's syntax. maxRateKB is 0 for no limit.
func (r rules) baseBackupCommand(label string, progress, fast bool, maxRateKB int64) string {
	var opts []string
	add := func(newForm, oldForm string) {
		if r.newSyntax {
			opts = append(opts, newForm)
		} else {
			opts = append(opts, oldForm)
		}
	}
	add("LABEL "+quote(label), "LABEL "+quote(label))
	if progress {
		add("PROGRESS", "PROGRESS")
	}
	if fast {
		add("CHECKPOINT 'fast'", "FAST")
	}
	// WAL comes on the second connection: do not wait for it to be archived.
	add("WAIT false", "NOWAIT")
	if maxRateKB > 0 {
		add(fmt.Sprintf("MAX_RATE %d", maxRateKB), fmt.Sprintf("MAX_RATE %d", maxRateKB))
	}
	if r.tablespaceMap {
		add("TABLESPACE_MAP", "TABLESPACE_MAP")
	}
	if r.manifest {
		add("MANIFEST 'yes'", "MANIFEST 'yes'")
	}
	if r.newSyntax {
		return "BASE_BACKUP (" + strings.Join(opts, ", ") + ")"
	}
	return "BASE_BACKUP " + strings.Join(opts, " ")
}

// slotCommand creates the temporary physical slot that holds the WAL from
// the backup's start until it is streamed.
func (r rules) slotCommand(name string) string {
	if r.newSyntax {
		return fmt.Sprintf("CREATE_REPLICATION_SLOT %s TEMPORARY PHYSICAL (RESERVE_WAL)", quoteIdent(name))
	}
	return fmt.Sprintf("CREATE_REPLICATION_SLOT %s TEMPORARY PHYSICAL RESERVE_WAL", quoteIdent(name))
}

// quote quotes s as a replication-grammar string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
