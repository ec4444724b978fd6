package replica

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstage/pgstage/internal/secret"
)

// connectSource opens a physical replication connection to the source as
// the replication user. The password goes into the connection config, not
// into a connection string.
func (s *Standby) connectSource(ctx context.Context) (*pgconn.PgConn, error) {
	src := s.cfg.Source
	kv := map[string]string{
		"host":             src.Host,
		"port":             strconv.Itoa(src.Port),
		"user":             src.User,
		"sslmode":          src.SSLMode,
		"replication":      "true",
		"application_name": s.cfg.ApplicationName,
		"connect_timeout":  "10",
	}
	pc, err := pgconn.ParseConfig(conninfo(kv))
	if err != nil {
		return nil, fmt.Errorf("replica: source connection settings: %w", err)
	}
	pc.Password = src.Password
	conn, err := pgconn.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, secret.Error(fmt.Errorf("replica: replication connection to the source %s:%d as %s: %w", src.Host, src.Port, src.User, err), src.Password)
	}
	return conn, nil
}

// createSlot creates the physical slot on the source unless it exists, and
// reports whether it made it. From 9.6 the slot reserves WAL at once, so the
// source keeps WAL from now on even before the standby first connects.
func (s *Standby) createSlot(ctx context.Context, r *rules) (bool, error) {
	conn, err := s.connectSource(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	// SlotName is checked against [a-z0-9_]{1,63} in New: no quoting needed,
	// and double quotes keep the name as it is.
	cmd := `CREATE_REPLICATION_SLOT "` + s.cfg.SlotName + `" PHYSICAL`
	if r.slotReserveWAL {
		cmd += " RESERVE_WAL"
	}
	_, err = conn.Exec(ctx, cmd).ReadAll()
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42710" { // duplicate_object
		s.log.Info("replica: replication slot exists on the source", "slot", s.cfg.SlotName)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("replica: creating replication slot %s on the source: %w", s.cfg.SlotName, err)
	}
	s.log.Info("replica: replication slot created on the source", "slot", s.cfg.SlotName)
	return true, nil
}
