package stage

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgstage/pgstage/backupsel"
	"github.com/pgstage/pgstage/internal/pgver"
	"github.com/pgstage/pgstage/internal/replconn"
)

// sourceInfo is what a replication connection to the source told.
type sourceInfo struct {
	SystemIdentifier uint64
	Timeline         uint32
	WALPosition      string
	ServerVersion    string // server_version, e.g. "15.8"
	WALLevel         string // "" when the server cannot SHOW over replication (9.x)
	MaxWALSenders    int
}

// connectReplication opens a physical replication connection to the
// source (see [replconn.Connect]), the whole of it bounded by
// ConnectTimeout.
func connectReplication(ctx context.Context, src Source) (*pgconn.PgConn, error) {
	ctx, cancel := context.WithTimeout(ctx, src.ConnectTimeout)
	defer cancel()
	return replconn.Connect(ctx, replconn.Config{
		Host: src.Host, Port: src.Port, User: src.User, Password: src.Password.Reveal(), SSLMode: src.SSLMode,
		ApplicationName: "pgstage_preflight", ConnectTimeout: src.ConnectTimeout,
	})
}

// identifySource connects to the source as the replication role and asks
// IDENTIFY_SYSTEM, wal_level and max_wal_senders. A connection that
// succeeds holds a WAL sender slot, so a free WAL sender exists.
func identifySource(ctx context.Context, src Source) (*sourceInfo, error) {
	conn, err := connectReplication(ctx, src)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	si := &sourceInfo{ServerVersion: conn.ParameterStatus("server_version")}
	res, err := conn.Exec(ctx, "IDENTIFY_SYSTEM").ReadAll()
	if err != nil {
		return nil, fmt.Errorf("IDENTIFY_SYSTEM on %s:%d: %w", src.Host, src.Port, err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) < 3 {
		return nil, fmt.Errorf("IDENTIFY_SYSTEM on %s:%d: unexpected answer", src.Host, src.Port)
	}
	row := res[0].Rows[0]
	if si.SystemIdentifier, err = strconv.ParseUint(string(row[0]), 10, 64); err != nil {
		return nil, fmt.Errorf("IDENTIFY_SYSTEM: system identifier %q: %w", row[0], err)
	}
	tl, _ := strconv.ParseUint(string(row[1]), 10, 32)
	si.Timeline = uint32(tl)
	si.WALPosition = string(row[2])
	// SHOW works on replication connections from PostgreSQL 10.
	if v, err := showOne(ctx, conn, "wal_level"); err == nil {
		si.WALLevel = v
	}
	if v, err := showOne(ctx, conn, "max_wal_senders"); err == nil {
		si.MaxWALSenders, _ = strconv.Atoi(v)
	}
	return si, nil
}

func showOne(ctx context.Context, conn *pgconn.PgConn, name string) (string, error) {
	res, err := conn.Exec(ctx, "SHOW "+name).ReadAll()
	if err != nil {
		return "", err
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) != 1 {
		return "", fmt.Errorf("SHOW %s: unexpected answer", name)
	}
	return string(res[0].Rows[0][0]), nil
}

// problems checks what the source said against the backup.
func (si *sourceInfo) problems(b *backupsel.Backup) []*Problem {
	var out []*Problem
	switch si.WALLevel {
	case "", "replica", "logical", "hot_standby", "archive":
	default:
		out = append(out, &Problem{Check: "source", What: fmt.Sprintf("the source has wal_level = %s, streaming needs replica or logical", si.WALLevel),
			Do: "set wal_level = replica on the source and restart it"})
	}
	if b == nil {
		return out
	}
	if b.SystemIdentifier != 0 && b.SystemIdentifier != si.SystemIdentifier {
		out = append(out, &Problem{Check: "source", What: fmt.Sprintf("the backup %s belongs to database system %d, the source is system %d", b.Name, b.SystemIdentifier, si.SystemIdentifier),
			Do: "take the backup from this source, or point Source at the server the backup came from"})
	}
	sm, serr := pgver.Parse(si.ServerVersion)
	bm, berr := pgver.Parse(b.PGVersion)
	if serr == nil && berr == nil && sm != bm {
		out = append(out, &Problem{Check: "source", What: fmt.Sprintf("the source runs PostgreSQL %s, the backup %s is PostgreSQL %s", si.ServerVersion, b.Name, b.PGVersion),
			Do: "take a new backup of the source"})
	}
	return out
}
