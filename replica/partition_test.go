package replica_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
)

// A network that drops every packet without a reset: with the default
// Liveness the standby ends the stream on its own (it would wait 60 s for
// wal_receiver_timeout and minutes for TCP otherwise), and streams again
// once the network heals. The delay is logged, never asserted: it depends
// on the machine's load.
func TestSilentPartition(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		n := pgtest.NewNetns(t)
		p := pgtest.StartPrimary(t, major, pgtest.Options{
			Settings: map[string]string{"listen_addresses": "'*'"},
			HBA:      n.HBA(),
		})
		n.Move(t, p)
		b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Form: pgtest.Forms(major)[0]})
		s, _ := newStandby(t, p, b, nil)
		_, err := s.Setup(context.Background())
		require.NoError(t, err)
		startStreaming(t, s)
		id := p.InsertRows(t, 1)
		seesRow(t, s, id)

		n.Cut(t)
		cut := time.Now()
		var notStreaming, logged time.Duration
		var fault string
		waitLong(t, func() bool {
			if r, err := s.Replay(context.Background()); err == nil && !r.Streaming() && notStreaming == 0 {
				notStreaming = time.Since(cut)
			}
			if line := faultLine(s.LogTail(100)); line != "" && logged == 0 {
				logged, fault = time.Since(cut), line
			}
			return notStreaming > 0 && logged > 0
		}, "the standby to notice the partition")
		t.Logf("PostgreSQL %d, partition: not streaming after %v, logged after %v: %s",
			major, notStreaming.Round(10*time.Millisecond), logged.Round(10*time.Millisecond), fault)

		n.Heal(t)
		healed := time.Now()
		waitLong(t, func() bool {
			r, err := s.Replay(context.Background())
			return err == nil && r.Streaming()
		}, "streaming to resume after the network healed")
		t.Logf("PostgreSQL %d, healed: streaming again after %v", major, time.Since(healed).Round(10*time.Millisecond))
		id = p.InsertRows(t, 1)
		seesRow(t, s, id)
	})
}

// faultLine is the first line of text that says the walreceiver lost the
// source: its own timeout, or the connection timed out by TCP.
func faultLine(text string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "terminating walreceiver due to timeout") ||
			strings.Contains(line, "could not receive data from WAL stream") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// waitLong polls cond until it holds, failing after two minutes: a bound
// on the test, far above any expected delay, not a timing assertion.
func waitLong(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited two minutes for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
