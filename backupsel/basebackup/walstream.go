package basebackup

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// statusInterval is how often the stream tells the source where it is, as
// pg_basebackup's default --status-interval.
const statusInterval = 10 * time.Second

// walStream streams the WAL from the segment holding the backup's start to
// its end position into pg_wal.tar, on a connection of its own, as
// pg_basebackup -X stream does.
type walStream struct {
	t     *taker
	tli   uint32
	start LSN
	end   chan LSN // the end position, once BASE_BACKUP has sent it

	conn     *pgconn.PgConn
	tar      *walTar
	out      *outFile
	pos      LSN // next byte expected
	endLSN   LSN
	endKnown bool
}

func (s *walStream) run(ctx context.Context) (err error) {
	t := s.t
	if s.conn, err = t.connect(ctx, "WAL stream connection"); err != nil {
		return err
	}
	defer s.conn.Close(context.Background())
	sysID, _, err := identifySystem(ctx, s.conn)
	if err != nil {
		return t.classify("WAL stream IDENTIFY_SYSTEM", err)
	}
	if sysID != t.sysID {
		return t.classify("WAL stream", fmt.Errorf("system identifier %d differs from the base backup connection's %d: Host names more than one server (a load balancer?)", sysID, t.sysID))
	}
	c := None
	if compressionRules[t.cfg.Compression].compressesWAL {
		c = t.cfg.Compression
	}
	name := "pg_wal.tar" + compressionRules[c].suffix
	if s.out, err = createOut(t.folder.tmp, name, c, t.cfg.CompressionLevel); err != nil {
		return t.pathErr(err)
	}
	t.addFile(name)
	defer func() {
		if err != nil {
			s.out.abort()
		}
	}()
	s.tar = &walTar{w: s.out, segSize: t.segSize, now: time.Now}

	if s.tli > 1 {
		if err := s.history(ctx); err != nil {
			return err
		}
	}
	slot := ""
	if t.rules.tempSlot {
		slot = fmt.Sprintf("pgstage_basebackup_%d", s.conn.PID())
		if _, err := simpleQuery(ctx, s.conn, t.rules.slotCommand(slot)); err != nil {
			return t.classify("creating the temporary replication slot "+slot, err)
		}
	}
	// From the start of the segment, as pg_basebackup: the segment is then
	// whole up to the backup's start.
	s.pos = s.start - LSN(uint64(s.start)%uint64(t.segSize))
	if err := s.startReplication(ctx, slot); err != nil {
		return t.classify("START_REPLICATION", err)
	}
	if err := s.receive(ctx); err != nil {
		var pe *pathError
		if errors.As(err, &pe) || ctx.Err() != nil {
			return err
		}
		return t.classify("WAL stream", err)
	}
	if err := s.tar.close(); err != nil {
		return t.pathErr(fmt.Errorf("writing %s: %w", s.out.path, err))
	}
	if err := s.out.finish(t.cfg.NoSync); err != nil {
		return t.pathErr(err)
	}
	s.stop()
	return nil
}

// history writes the timeline history file of the backup's timeline, and
// its .done marker, as pg_basebackup fetches it before streaming.
func (s *walStream) history(ctx context.Context) error {
	rows, err := simpleQuery(ctx, s.conn, fmt.Sprintf("TIMELINE_HISTORY %d", s.tli))
	if err != nil {
		return s.t.classify(fmt.Sprintf("TIMELINE_HISTORY %d", s.tli), err)
	}
	if len(rows) != 1 || len(rows[0]) != 2 {
		return s.t.classify("TIMELINE_HISTORY", errors.New("unexpected result"))
	}
	name := string(rows[0][0])
	if name != fmt.Sprintf("%08X.history", s.tli) {
		return s.t.classify("TIMELINE_HISTORY", fmt.Errorf("unexpected file name %q", name))
	}
	if err := s.tar.writeFile(name, rows[0][1]); err != nil {
		return s.t.pathErr(err)
	}
	if err := s.tar.writeFile("archive_status/"+name+".done", nil); err != nil {
		return s.t.pathErr(err)
	}
	return nil
}

func (s *walStream) startReplication(ctx context.Context, slot string) error {
	cmd := fmt.Sprintf("START_REPLICATION PHYSICAL %s TIMELINE %d", s.pos, s.tli)
	if slot != "" {
		cmd = fmt.Sprintf("START_REPLICATION SLOT %s PHYSICAL %s TIMELINE %d", quoteIdent(slot), s.pos, s.tli)
	}
	s.conn.Frontend().Send(&pgproto3.Query{String: cmd})
	if err := s.conn.Frontend().Flush(); err != nil {
		return err
	}
	for {
		msg, err := s.conn.ReceiveMessage(ctx)
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.CopyBothResponse:
			return nil
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(m)
		}
	}
}

// receive writes WAL until the end position is reached.
func (s *walStream) receive(ctx context.Context) error {
	nextStatus := time.Now().Add(statusInterval)
	for {
		if !s.endKnown {
			select {
			case e := <-s.end:
				s.endLSN, s.endKnown = e, true
			default:
			}
		}
		if s.endKnown && s.pos >= s.endLSN {
			return nil
		}
		if time.Now().After(nextStatus) {
			if err := s.status(false); err != nil {
				return err
			}
			nextStatus = time.Now().Add(statusInterval)
		}
		// A short deadline, so that an end position arriving while the
		// source is idle is seen; a timeout leaves the connection usable.
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		msg, err := s.conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && pgconn.Timeout(err) {
				continue
			}
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if err := s.copyData(m.Data); err != nil {
				return err
			}
		case *pgproto3.CopyDone:
			return fmt.Errorf("the source ended timeline %d at %s before the backup's end: it was promoted or its upstream switched timelines during the backup; take a new backup", s.tli, s.pos)
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(m)
		}
	}
}

func (s *walStream) copyData(d []byte) error {
	if len(d) == 0 {
		return errors.New("empty message in the WAL stream")
	}
	switch d[0] {
	case 'w':
		if len(d) < 25 {
			return errors.New("short XLogData message")
		}
		at := LSN(binary.BigEndian.Uint64(d[1:9]))
		if at != s.pos {
			return fmt.Errorf("WAL arrived for %s, expected %s", at, s.pos)
		}
		return s.writeWAL(d[25:])
	case 'k':
		if len(d) < 18 {
			return errors.New("short keepalive message")
		}
		if d[17] != 0 {
			return s.status(true)
		}
	}
	return nil
}

// writeWAL appends WAL at s.pos, splitting it into segment members.
func (s *walStream) writeWAL(data []byte) error {
	seg := uint64(s.t.segSize)
	for len(data) > 0 {
		if s.tar.cur == "" {
			if err := s.tar.startSegment(segmentName(s.tli, s.pos, s.t.segSize)); err != nil {
				return s.t.pathErr(fmt.Errorf("writing %s: %w", s.out.path, err))
			}
		}
		room := seg - uint64(s.pos)%seg
		n := min(uint64(len(data)), room)
		if err := s.tar.write(data[:n]); err != nil {
			return s.t.pathErr(err)
		}
		s.pos += LSN(n)
		data = data[n:]
		if n == room {
			if err := s.tar.endSegment(); err != nil {
				return s.t.pathErr(fmt.Errorf("writing %s: %w", s.out.path, err))
			}
		}
	}
	return nil
}

// status sends a standby status update. It reports what was written and
// nothing flushed, so the temporary slot keeps every segment until the
// connection ends.
func (s *walStream) status(reply bool) error {
	var b [34]byte
	b[0] = 'r'
	binary.BigEndian.PutUint64(b[1:], uint64(s.pos))
	binary.BigEndian.PutUint64(b[25:], uint64(time.Since(pgEpoch).Microseconds()))
	if reply {
		b[33] = 1
	}
	s.conn.Frontend().Send(&pgproto3.CopyData{Data: b[:]})
	return s.conn.Frontend().Flush()
}

var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// stop ends the stream politely; the connection is closed after it anyway.
func (s *walStream) stop() {
	s.conn.Frontend().Send(&pgproto3.CopyDone{})
	if s.conn.Frontend().Flush() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		msg, err := s.conn.ReceiveMessage(ctx)
		if err != nil {
			return
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			return
		}
	}
}
