package replica

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstage/pgstage/internal/replconn"
)

// connectSource opens a physical replication connection to the source as
// the replication user (see [replconn.Connect]).
func (s *Standby) connectSource(ctx context.Context) (*pgconn.PgConn, error) {
	src := s.cfg.Source
	conn, err := replconn.Connect(ctx, replconn.Config{
		Host: src.Host, Port: src.Port, User: src.User, Password: src.Password.Reveal(), SSLMode: src.SSLMode,
		ApplicationName: s.cfg.ApplicationName,
	})
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
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
