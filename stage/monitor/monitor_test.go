package monitor_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/replica"
	"github.com/pgstage/pgstage/stage"
	"github.com/pgstage/pgstage/stage/monitor"
	"github.com/pgstage/pgstage/walwatch"
)

// fakeLinker answers with what the test set.
type fakeLinker struct {
	st             stage.Status
	stErr          error
	rp             replica.Replay
	rpErr          error
	faults         []stage.Fault
	blockUntilDone bool // Replication waits for its context to end
}

func (f *fakeLinker) Status(context.Context) (stage.Status, error) { return f.st, f.stErr }
func (f *fakeLinker) Faults() []stage.Fault                        { return f.faults }
func (f *fakeLinker) Replication(ctx context.Context) (replica.Replay, error) {
	if f.blockUntilDone {
		<-ctx.Done()
		return replica.Replay{}, ctx.Err()
	}
	return f.rp, f.rpErr
}

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// gather collects c and returns each sample as name{labels} -> value.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[key(mf.GetName(), m)] = value(m)
		}
	}
	return out
}

func key(name string, m *dto.Metric) string {
	for _, lp := range m.GetLabel() {
		name += "{" + lp.GetName() + "=" + lp.GetValue() + "}"
	}
	return name
}

func value(m *dto.Metric) float64 {
	if m.Gauge != nil {
		return m.GetGauge().GetValue()
	}
	return m.GetCounter().GetValue()
}

func TestCollector(t *testing.T) {
	backupTime := now.Add(-48 * time.Hour)
	streaming := stage.Status{State: stage.StateStreaming, Linked: true, Running: true, Snapshots: 3,
		LastSnapshot: &stage.Snapshot{Time: now.Add(-time.Minute)},
		Backup:       &stage.BackupInfo{Name: "PostgreSQL_T20261129120000", PGVersion: "15", Time: backupTime}}
	fault := &stage.Fault{Reason: walwatch.ReasonPrimaryUnreachable, Since: now.Add(-time.Minute)}
	faulted := streaming
	faulted.State, faulted.Fault = stage.StateFaulted, fault
	past := []stage.Fault{{Reason: walwatch.ReasonPrimaryUnreachable, Cleared: now}, *fault}

	cases := []struct {
		name  string
		l     *fakeLinker
		clone func(context.Context) (int, error)
		want  map[string]float64
		none  []string // metrics that must be absent
	}{
		{
			name: "streaming",
			l: &fakeLinker{st: streaming, rp: replica.Replay{Receiver: "streaming", ReceiveLSN: 0x3000100, ReplayLSN: 0x3000000,
				LastReplayed: now.Add(-10 * time.Second), LastMessage: now.Add(-time.Second)}},
			clone: func(context.Context) (int, error) { return 2, nil },
			want: map[string]float64{
				"pgstage_state{state=streaming}": 1, "pgstage_state{state=faulted}": 0,
				"pgstage_walreceiver_up": 1, "pgstage_replication_query_up": 1, "pgstage_status_up": 1,
				"pgstage_receive_lsn_bytes": 0x3000100, "pgstage_replay_lsn_bytes": 0x3000000,
				"pgstage_replay_lag_bytes": 0x100, "pgstage_replay_lag_seconds": 10,
				"pgstage_last_replayed_transaction_timestamp_seconds":                   float64(now.Add(-10 * time.Second).Unix()),
				"pgstage_fault_open{reason=primary-unreachable}":                        0,
				"pgstage_faults_total{reason=primary-unreachable}":                      0,
				"pgstage_snapshots_total":                                               3,
				"pgstage_backup_info{backup=PostgreSQL_T20261129120000}{pg_version=15}": 1,
				"pgstage_backup_age_seconds":                                            48 * 3600,
				"pgstage_clones":                                                        2,
			},
		},
		{
			// All applied, receiver dead: lag says 0, walreceiver_up says 0.
			name: "dead receiver, nothing behind",
			l: &fakeLinker{st: faulted, faults: past, rp: replica.Replay{ReceiveLSN: 0x3000000, ReplayLSN: 0x3000000,
				LastReplayed: now.Add(-time.Hour)}},
			want: map[string]float64{
				"pgstage_state{state=faulted}": 1, "pgstage_state{state=streaming}": 0,
				"pgstage_walreceiver_up": 0, "pgstage_replay_lag_bytes": 0, "pgstage_replay_lag_seconds": 0,
				"pgstage_fault_open{reason=primary-unreachable}":   1,
				"pgstage_fault_open{reason=wal-removed}":           0,
				"pgstage_faults_total{reason=primary-unreachable}": 2,
			},
			none: []string{"pgstage_clones"},
		},
		{
			name: "server does not answer in time",
			l:    &fakeLinker{st: faulted, blockUntilDone: true},
			want: map[string]float64{"pgstage_replication_query_up": 0, "pgstage_walreceiver_up": 0, "pgstage_status_up": 1},
			none: []string{"pgstage_replay_lag_bytes", "pgstage_receive_lsn_bytes"},
		},
		{
			name: "status fails",
			l:    &fakeLinker{stErr: errors.New("boom"), rpErr: errors.New("boom")},
			want: map[string]float64{"pgstage_status_up": 0, "pgstage_walreceiver_up": 0},
			none: []string{"pgstage_state{state=streaming}", "pgstage_backup_age_seconds"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := gather(t, monitor.NewCollector(tc.l, monitor.Options{Timeout: 50 * time.Millisecond, Clones: tc.clone, Now: func() time.Time { return now }}))
			for k, v := range tc.want {
				require.Contains(t, got, k)
				require.InDelta(t, v, got[k], 1e-6, "%s: got %v, want %v", k, got[k], v)
			}
			for _, k := range tc.none {
				require.NotContains(t, got, k)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	fault := &stage.Fault{Reason: walwatch.ReasonWALRemoved, Message: "requested WAL segment has already been removed", NeedsResync: true}
	cases := []struct {
		name     string
		l        *fakeLinker
		code     int
		state    string
		hasFault bool
		hasError bool
	}{
		{"streaming", &fakeLinker{st: stage.Status{State: stage.StateStreaming}}, http.StatusOK, "streaming", false, false},
		{"faulted", &fakeLinker{st: stage.Status{State: stage.StateFaulted, Fault: fault}}, http.StatusServiceUnavailable, "faulted", true, false},
		{"starting", &fakeLinker{st: stage.Status{State: stage.StateStarting}}, http.StatusServiceUnavailable, "starting", false, false},
		{"status fails", &fakeLinker{stErr: errors.New("no state file")}, http.StatusServiceUnavailable, "unknown", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(monitor.Handler(tc.l, monitor.Options{}))
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/healthz")
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tc.code, resp.StatusCode)
			var body struct {
				State  string       `json:"state"`
				Fault  *stage.Fault `json:"fault"`
				Advice string       `json:"advice"`
				Error  string       `json:"error"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			require.Equal(t, tc.state, body.State)
			require.Equal(t, tc.hasFault, body.Fault != nil)
			require.Equal(t, tc.hasError, body.Error != "")
			if tc.hasFault {
				require.Equal(t, fault.Reason, body.Fault.Reason)
				require.NotEmpty(t, body.Advice)
			}
		})
	}
}
