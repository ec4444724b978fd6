package basebackup

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// tablespace is a row of the list BASE_BACKUP sends before the data.
type tablespace struct {
	oid  string // "" for the main data directory
	path string
	size int64 // kB, -1 when the source did not estimate it
}

// archiveName is how pg_basebackup names a tablespace's archive.
func (ts tablespace) archiveName() string {
	if ts.oid == "" {
		return "base.tar"
	}
	return ts.oid + ".tar"
}

// serverArchiveRe is what a 15+ source may name an archive: base.tar or
// <oid>.tar. Anything else is refused rather than written.
var serverArchiveRe = regexp.MustCompile(`^(base|[0-9]+)\.tar$`)

// receiver reads the answer to BASE_BACKUP: the start position, the
// tablespace list, the archives (one COPY each before 15; one COPY with
// typed messages from 15), the manifest (13+), and the end position.
type receiver struct {
	t           *taker
	results     int // result sets seen
	rows        [][][]byte
	inResult    bool
	copies      int // COPY OUT streams begun
	tablespaces []tablespace
	cur         *outFile
	curName     string
	curTar      bool // the current file is an archive the client must terminate
	onStart     func(start LSN, tli uint32) error
	end         LSN
	endTLI      uint32
	gotEnd      bool
}

// run reads messages until the command completes.
func (r *receiver) run(ctx context.Context) error {
	defer func() {
		if r.cur != nil {
			r.cur.abort()
		}
	}()
	conn := r.t.conn
	for {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			return err
		}
		if _, ok := msg.(*pgproto3.DataRow); !ok && r.inResult {
			if err := r.endResult(); err != nil {
				return err
			}
		}
		switch m := msg.(type) {
		case *pgproto3.RowDescription:
			r.inResult, r.rows = true, nil
		case *pgproto3.DataRow:
			row := make([][]byte, len(m.Values))
			for i, v := range m.Values {
				if v != nil {
					row[i] = append([]byte{}, v...)
				}
			}
			r.rows = append(r.rows, row)
		case *pgproto3.CopyOutResponse:
			if err := r.beginCopy(); err != nil {
				return err
			}
		case *pgproto3.CopyData:
			if err := r.copyData(m.Data); err != nil {
				return err
			}
		case *pgproto3.CopyDone:
			if err := r.closeCurrent(); err != nil {
				return err
			}
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(m)
		case *pgproto3.NoticeResponse:
			r.t.log.Info("basebackup: notice from the source", "message", m.Message)
		case *pgproto3.ReadyForQuery:
			if !r.gotEnd {
				return errors.New("the source ended BASE_BACKUP without an end position")
			}
			return nil
		}
	}
}

// endResult handles a complete result set: the start position, the
// tablespace list, then the end position.
func (r *receiver) endResult() error {
	r.inResult = false
	r.results++
	switch r.results {
	case 1, 3:
		if len(r.rows) != 1 || len(r.rows[0]) < 2 {
			return fmt.Errorf("unexpected BASE_BACKUP position result (%d rows)", len(r.rows))
		}
		lsn, err := parseLSN(string(r.rows[0][0]))
		if err != nil {
			return err
		}
		tli, err := strconv.ParseUint(string(r.rows[0][1]), 10, 32)
		if err != nil {
			return fmt.Errorf("timeline %q: %w", r.rows[0][1], err)
		}
		if r.results == 3 {
			r.end, r.endTLI, r.gotEnd = lsn, uint32(tli), true
			return nil
		}
		return r.onStart(lsn, uint32(tli))
	case 2:
		var total int64
		for _, row := range r.rows {
			ts := tablespace{size: -1}
			if len(row) >= 3 {
				ts.oid, ts.path = string(row[0]), string(row[1])
				if row[2] != nil {
					ts.size, _ = strconv.ParseInt(string(row[2]), 10, 64)
					total += ts.size * 1024
				}
			}
			if ts.oid != "" {
				if _, err := strconv.ParseUint(ts.oid, 10, 32); err != nil {
					return fmt.Errorf("tablespace OID %q from the source is not a number", ts.oid)
				}
			}
			r.tablespaces = append(r.tablespaces, ts)
		}
		r.t.progress.setTotal(total)
	}
	return nil
}

// beginCopy starts a COPY OUT: before 15, one per archive in the order of
// the tablespace list, then one for the manifest; from 15, one for all.
func (r *receiver) beginCopy() error {
	r.copies++
	if r.t.rules.newSyntax {
		return nil
	}
	i := r.copies - 1
	switch {
	case i < len(r.tablespaces):
		return r.open(r.tablespaces[i].archiveName(), true)
	case i == len(r.tablespaces) && r.t.rules.manifest:
		return r.open("backup_manifest", false)
	}
	return fmt.Errorf("the source sent more COPY streams (%d) than tablespaces (%d)", r.copies, len(r.tablespaces))
}

// copyData handles one CopyData message.
func (r *receiver) copyData(data []byte) error {
	if !r.t.rules.newSyntax {
		return r.write(data)
	}
	if len(data) == 0 {
		return errors.New("empty CopyData message from the source")
	}
	switch data[0] {
	case 'n': // new archive: name, tablespace path
		name, _, _ := cutCString(data[1:])
		if !serverArchiveRe.MatchString(name) {
			return fmt.Errorf("the source named an archive %q, not base.tar or <oid>.tar", name)
		}
		if err := r.closeCurrent(); err != nil {
			return err
		}
		return r.open(name, true)
	case 'd':
		return r.write(data[1:])
	case 'p': // the server's own count; ours is what arrived
		if len(data) < 9 {
			return errors.New("short progress message from the source")
		}
	case 'm':
		if err := r.closeCurrent(); err != nil {
			return err
		}
		return r.open("backup_manifest", false)
	default:
		return fmt.Errorf("unknown BASE_BACKUP message type %q from the source", data[0])
	}
	return nil
}

func cutCString(b []byte) (string, []byte, bool) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), b[i+1:], true
		}
	}
	return string(b), nil, false
}

func (r *receiver) open(name string, archive bool) error {
	c := None
	if archive {
		c = r.t.cfg.Compression
	}
	fileName := name + compressionRules[c].suffix
	f, err := createOut(r.t.folder.tmp, fileName, c, r.t.cfg.CompressionLevel)
	if err != nil {
		return r.t.pathErr(err)
	}
	r.t.addFile(fileName)
	r.cur, r.curName, r.curTar = f, fileName, archive
	return nil
}

func (r *receiver) write(p []byte) error {
	if r.cur == nil {
		return errors.New("the source sent data before naming its archive")
	}
	if _, err := r.cur.Write(p); err != nil {
		return r.t.pathErr(err)
	}
	if r.curTar {
		r.t.progress.add(int64(len(p)))
	}
	return nil
}

// closeCurrent ends the file being written; an archive from a source before
// 15 gets the two zero blocks the server leaves out.
func (r *receiver) closeCurrent() error {
	if r.cur == nil {
		return nil
	}
	f := r.cur
	r.cur = nil
	if r.curTar && !r.t.rules.terminatedTar {
		if _, err := f.Write(zeroBlock[:2*tarBlock]); err != nil {
			f.abort()
			return r.t.pathErr(err)
		}
	}
	if err := f.finish(r.t.cfg.NoSync); err != nil {
		return r.t.pathErr(err)
	}
	return nil
}
