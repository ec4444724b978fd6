// Package monitor exposes a [stage.Linker] to the monitoring people already
// run: a Prometheus collector ([Collector], metric names prefixed
// "pgstage_") and a health endpoint ([Health]). An embedding program
// mounts them on its own mux; [Handler] mounts both, with the Go runtime
// and process metrics, for a program that has no mux of its own.
//
//	mux.Handle("/metrics", monitor.Handler(l, monitor.Options{}))
//
// # Reading at scrape time
//
// The collector asks the Linker when Prometheus scrapes, bounded by
// Options.Timeout, rather than keeping values a ticker refreshed: a scrape
// then tells the present (a walreceiver that died a second ago), there is
// no second clock to tune against the scrape interval, and a staging that
// nobody scrapes is not queried at all. A query that does not answer in
// time costs one scrape its server-side values, never the scrape: the
// state, faults, snapshots and backup come from the Linker's memory and
// are always there, and pgstage_replication_query_up says 0.
//
// # Metrics
//
//   - pgstage_state{state}: 1 for the staging's state (see [stage.State]),
//     0 for the others.
//   - pgstage_fault_open{reason}: 1 for the reason of the open fault.
//   - pgstage_faults_total{reason}: faults raised since the staging was
//     linked, from the state file, so a restart neither loses nor repeats
//     one. A fault is counted under its final reason: an outage found to
//     need a resync moves from its first reason to that one.
//   - pgstage_walreceiver_up: 1 while a walreceiver streams from the
//     source; 0 otherwise, also when the staging server cannot be asked.
//     Replay lag alone reads 0 for a dead walreceiver that had applied
//     everything it received: alert on this one.
//   - pgstage_receive_lsn_bytes, pgstage_replay_lsn_bytes: WAL positions
//     received and applied, as bytes since the start of WAL.
//   - pgstage_replay_lag_bytes: WAL received, not applied yet.
//   - pgstage_replay_lag_seconds: how old the last applied transaction is
//     while received WAL waits to be applied; 0 when replay has caught up
//     with what was received (an idle source is not a lag).
//   - pgstage_last_replayed_transaction_timestamp_seconds,
//     pgstage_last_message_received_timestamp_seconds: the commit time of
//     the last transaction applied, and when the source was last heard.
//   - pgstage_replay_paused: 1 while replay is paused.
//   - pgstage_replication_query_up: 1 when the staging server answered.
//   - pgstage_snapshots_total, pgstage_last_snapshot_timestamp_seconds.
//   - pgstage_clones: clones in use, when Options.Clones is set.
//   - pgstage_backup_info{backup,pg_version}: the backup in use (value 1);
//     pgstage_backup_timestamp_seconds and pgstage_backup_age_seconds when
//     its name carries a time.
//   - pgstage_status_up: 1 when the Linker's status could be read.
package monitor
