package monitor

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgstage/pgstage/replica"
	"github.com/pgstage/pgstage/stage"
	"github.com/pgstage/pgstage/walwatch"
)

// Linker is what the collector and the health handler use of a
// [stage.Linker].
type Linker interface {
	Status(ctx context.Context) (stage.Status, error)
	Replication(ctx context.Context) (replica.Replay, error)
	Faults() []stage.Fault
}

var _ Linker = (*stage.Linker)(nil)

// Options tune the collector and the health handler; zero fields mean the
// defaults documented on each.
type Options struct {
	// Timeout bounds what one scrape or health check asks of the Linker;
	// default 5s, half Prometheus' default scrape timeout.
	Timeout time.Duration
	// Clones, if set, says how many clones of the staging are in use
	// (pgstage_clones); without it the metric is not exported.
	Clones func(ctx context.Context) (int, error)
	// Now is the clock for ages; default time.Now.
	Now func() time.Time
}

// DefaultTimeout is Options.Timeout's default.
const DefaultTimeout = 5 * time.Second

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// states and reasons are exported with 0 when not current, so that a rule
// or a graph finds the series before the first fault.
var (
	states = []stage.State{stage.StateUnlinked, stage.StateDisabled, stage.StateFaulted,
		stage.StateStopped, stage.StateStreaming, stage.StateStarting}
	reasons = []walwatch.Reason{walwatch.ReasonPrimaryUnreachable, walwatch.ReasonAuthRefused,
		walwatch.ReasonStreamLost, walwatch.ReasonTimeout, walwatch.ReasonTerminatedByPrimary,
		walwatch.ReasonWALRemoved, walwatch.ReasonTimelineDiverged, walwatch.ReasonWrongPrimary,
		walwatch.ReasonStartFailed, walwatch.ReasonReceiverStopped, walwatch.ReasonReceiverCrashed,
		walwatch.ReasonPromoted, walwatch.ReasonUnknown}
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("pgstage_"+name, help, labels, nil)
}

var (
	descState         = desc("state", "1 for the staging's state, 0 for the others.", "state")
	descStatusUp      = desc("status_up", "1 when the staging's status could be read.")
	descFaultOpen     = desc("fault_open", "1 for the reason of the open replication fault.", "reason")
	descFaults        = desc("faults_total", "Replication faults raised since the staging was linked, by final reason.", "reason")
	descQueryUp       = desc("replication_query_up", "1 when the staging server answered the replication query.")
	descReceiverUp    = desc("walreceiver_up", "1 while a walreceiver streams from the source; 0 otherwise, also when the server cannot be asked.")
	descReceiveLSN    = desc("receive_lsn_bytes", "End of the WAL received from the source, in bytes since the start of WAL.")
	descReplayLSN     = desc("replay_lsn_bytes", "End of the WAL applied, in bytes since the start of WAL.")
	descLagBytes      = desc("replay_lag_bytes", "WAL received but not applied yet.")
	descLagSeconds    = desc("replay_lag_seconds", "Age of the last applied transaction while received WAL waits to be applied; 0 once replay caught up.")
	descLastReplayed  = desc("last_replayed_transaction_timestamp_seconds", "Commit time of the last transaction applied.")
	descLastMessage   = desc("last_message_received_timestamp_seconds", "When the staging last heard from the source.")
	descPaused        = desc("replay_paused", "1 while replay is paused.")
	descSnapshots     = desc("snapshots_total", "Snapshots taken since the staging was linked.")
	descLastSnapshot  = desc("last_snapshot_timestamp_seconds", "When the last snapshot was taken.")
	descClones        = desc("clones", "Clones of the staging in use.")
	descBackupInfo    = desc("backup_info", "The backup the staging was restored from (value 1).", "backup", "pg_version")
	descBackupTime    = desc("backup_timestamp_seconds", "When the backup in use was taken, from its name.")
	descBackupAge     = desc("backup_age_seconds", "Age of the backup in use, from its name.")
	descClonesQueryUp = desc("clones_query_up", "1 when the clone count could be read.")
	allDescs          = []*prometheus.Desc{descState, descStatusUp, descFaultOpen, descFaults, descQueryUp, descReceiverUp, descReceiveLSN, descReplayLSN, descLagBytes, descLagSeconds, descLastReplayed, descLastMessage, descPaused, descSnapshots, descLastSnapshot, descBackupInfo, descBackupTime, descBackupAge}
	cloneDescs        = []*prometheus.Desc{descClones, descClonesQueryUp}
)

// Collector is a prometheus.Collector for one staging. It asks the Linker
// at each scrape (see the package documentation for why).
type Collector struct {
	l    Linker
	opts Options
}

// NewCollector returns the collector for l; register it with a
// prometheus.Registry.
func NewCollector(l Linker, opts Options) *Collector {
	return &Collector{l: l, opts: opts.withDefaults()}
}

// Describe sends the descriptors of every metric Collect may send.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
	if c.opts.Clones != nil {
		for _, d := range cloneDescs {
			ch <- d
		}
	}
}

// Collect asks the Linker and sends the metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	now := c.opts.Now()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	timestamp := func(d *prometheus.Desc, t time.Time) {
		if !t.IsZero() {
			gauge(d, float64(t.UnixNano())/1e9)
		}
	}

	// What the Linker remembers: always there.
	byReason := map[walwatch.Reason]int{}
	for _, f := range c.l.Faults() {
		byReason[f.Reason]++
	}
	for _, r := range withExtra(reasons, byReason) {
		counter(descFaults, float64(byReason[r]), string(r))
	}

	st, err := c.l.Status(ctx)
	gauge(descStatusUp, bool01(err == nil))
	if err == nil {
		for _, s := range states {
			gauge(descState, bool01(st.State == s), string(s))
		}
		open := map[walwatch.Reason]int{}
		if st.Fault != nil {
			open[st.Fault.Reason] = 1
		}
		for _, r := range withExtra(reasons, open) {
			gauge(descFaultOpen, float64(open[r]), string(r))
		}
		counter(descSnapshots, float64(st.Snapshots))
		if st.LastSnapshot != nil {
			timestamp(descLastSnapshot, st.LastSnapshot.Time)
		}
		if b := st.Backup; b != nil {
			gauge(descBackupInfo, 1, b.Name, b.PGVersion)
			if !b.Time.IsZero() {
				timestamp(descBackupTime, b.Time)
				gauge(descBackupAge, now.Sub(b.Time).Seconds())
			}
		}
	}

	// What only the server tells, within the time left.
	rp, err := c.l.Replication(ctx)
	gauge(descQueryUp, bool01(err == nil))
	gauge(descReceiverUp, bool01(err == nil && rp.Streaming()))
	if err == nil {
		gauge(descReceiveLSN, float64(rp.ReceiveLSN))
		gauge(descReplayLSN, float64(rp.ReplayLSN))
		gauge(descLagBytes, float64(rp.Behind()))
		lag := 0.0
		if rp.Behind() > 0 && !rp.LastReplayed.IsZero() {
			lag = max(now.Sub(rp.LastReplayed).Seconds(), 0)
		}
		gauge(descLagSeconds, lag)
		timestamp(descLastReplayed, rp.LastReplayed)
		timestamp(descLastMessage, rp.LastMessage)
		gauge(descPaused, bool01(rp.Paused))
	}

	if c.opts.Clones != nil {
		n, err := c.opts.Clones(ctx)
		gauge(descClonesQueryUp, bool01(err == nil))
		if err == nil {
			gauge(descClones, float64(n))
		}
	}
}

// withExtra returns the known reasons and any other reason seen, so that a
// reason a newer walwatch adds is exported too.
func withExtra(known []walwatch.Reason, seen map[walwatch.Reason]int) []walwatch.Reason {
	out := append([]walwatch.Reason(nil), known...)
	for r := range seen {
		if !contains(known, r) {
			out = append(out, r)
		}
	}
	return out
}

func contains(rs []walwatch.Reason, r walwatch.Reason) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
