package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/pgstage/pgstage/stage"
)

// printer writes results as text or JSON.
type printer struct{ json bool }

func (p *printer) emit(v any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func (p *printer) fail(err error) {
	if errors.As(err, new(errLogged)) {
		return
	}
	if p.json {
		p.emit(map[string]string{"error": err.Error()})
		return
	}
	fmt.Fprintln(os.Stderr, "error:", err)
	var f *stage.Fault
	if errors.As(err, &f) && f.NeedsResync {
		fmt.Fprintln(os.Stderr, "this fault needs a resync: link -config ... resync")
	}
}

func (p *printer) snapshot(s *stage.Snapshot) {
	if p.json {
		p.emit(s)
		return
	}
	fmt.Printf("snapshot %s: timeline %d, replayed up to %s (received %s), backup %s\n",
		s.Time.Format("2006-01-02 15:04:05Z07:00"), s.Timeline, s.ReplayLSN, s.ReceiveLSN, s.Backup)
	snapshotData(s)
}

func (p *printer) status(st stage.Status) {
	if p.json {
		p.emit(st)
		return
	}
	fmt.Printf("state:     %s\n", st.State)
	if st.Backup != nil {
		fmt.Printf("backup:    %s (%s, PostgreSQL %s)\n", st.Backup.Name, st.Backup.Location, st.Backup.PGVersion)
		for _, pb := range st.Backup.PassedOver {
			fmt.Printf("           passed over %s: %s\n", pb.Name, pb.Reason)
		}
	}
	if st.Running {
		fmt.Printf("replay:    %s (received %s, %d bytes behind)\n", st.ReplayLSN, st.ReceiveLSN, st.ReplayLagBytes)
	}
	if f := st.Fault; f != nil {
		fmt.Printf("fault:     %s since %s: %s\n           what to do: %s\n", f.Reason, f.Since.Format("2006-01-02 15:04:05Z07:00"), f.Message, stage.Advice(f.Reason))
	} else if f := st.LastFault; f != nil {
		fmt.Printf("last fault: %s from %s to %s\n", f.Reason, f.Since.Format("15:04:05"), f.Cleared.Format("15:04:05"))
	}
	fmt.Printf("snapshots: %d\n", st.Snapshots)
	if st.Job != "" {
		fmt.Printf("unfinished: %s at step %s: run it again\n", st.Job, st.Step)
	}
}
