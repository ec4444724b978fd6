package replica_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/replica"
)

// A walreceiver says "streaming" in pg_stat_wal_receiver from the moment it
// starts, before the source has accepted its START_REPLICATION. Under load
// that window is long enough for a status poll to land in it: a standby
// whose source refuses the stream (WAL already removed) was once reported
// streaming. Here a proxy between standby and source withholds
// START_REPLICATION, holding the window open: neither WaitStreaming nor
// Replay (the stage's replay monitor) may call that streaming, and both
// must once the proxy lets it through.
func TestWaitStreamingNeedsTheSourcesAnswer(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		p := pgtest.StartPrimary(t, major, pgtest.Options{})
		b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Form: pgtest.Forms(major)[0]})
		px := newWithholdingProxy(t, net.JoinHostPort(p.Host, strconv.Itoa(p.Port)))
		s, _ := newStandby(t, p, b, func(c *replica.Config) {
			c.Source.Host, c.Source.Port = "127.0.0.1", px.port
		})
		_, err := s.Setup(context.Background())
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		require.NoError(t, s.Start(ctx))

		// The window is open: the walreceiver has connected, its
		// START_REPLICATION is held, and the view already says streaming.
		select {
		case <-px.held:
		case <-ctx.Done():
			t.Fatal("the walreceiver never sent START_REPLICATION through the proxy")
		}
		require.Eventually(t, func() bool {
			v, err := standbyQuery(ctx, s, "SELECT coalesce(status, '') FROM pg_stat_wal_receiver")
			return err == nil && v == "streaming"
		}, 30*time.Second, 50*time.Millisecond, "pg_stat_wal_receiver should say streaming before the source answers")

		short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
		_, err = s.WaitStreaming(short)
		cancelShort()
		require.Error(t, err, "a walreceiver whose START_REPLICATION is unanswered is not streaming")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		rp, err := s.Replay(ctx)
		require.NoError(t, err)
		assert.Equal(t, "streaming", rp.Receiver)
		assert.NotZero(t, rp.ReceiverPID)
		assert.False(t, rp.Answered, "the source has not answered: %+v", rp)

		px.release()
		st, err := s.WaitStreaming(ctx)
		require.NoError(t, err)
		assert.Equal(t, "pg_stat_wal_receiver", st.Method)
		id := p.InsertRows(t, 1)
		seesRow(t, s, id)
		rp, err = s.Replay(ctx)
		require.NoError(t, err)
		assert.True(t, rp.Streaming() && rp.Answered, "the source has sent WAL: %+v", rp)
	})
}

// withholdingProxy forwards PostgreSQL connections to a source, but holds a
// connection's START_REPLICATION (and what follows it) until release.
type withholdingProxy struct {
	port      int
	held      chan struct{} // closed when a START_REPLICATION is first held
	heldOnce  sync.Once
	open      chan struct{} // closed by release
	closeOnce sync.Once
}

func newWithholdingProxy(t *testing.T, target string) *withholdingProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	px := &withholdingProxy{port: l.Addr().(*net.TCPAddr).Port, held: make(chan struct{}), open: make(chan struct{})}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		px.release()
		l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { px.serve(c, target) })
		}
	})
	return px
}

func (px *withholdingProxy) release() { px.closeOnce.Do(func() { close(px.open) }) }

func (px *withholdingProxy) serve(c net.Conn, target string) {
	defer c.Close()
	u, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer u.Close()
	go func() {
		io.Copy(c, u)
		c.Close()
	}()
	px.frontend(c, u)
}

// frontend copies the client's messages to the source one at a time: the
// untyped startup packets (an SSL or GSS request answered "no" by the test
// source, then the startup message), then typed messages, holding a simple
// Query that starts with START_REPLICATION until release.
func (px *withholdingProxy) frontend(c, u net.Conn) {
	for startup := true; ; {
		var head [5]byte
		n := 5
		if startup {
			n = 4
		}
		if _, err := io.ReadFull(c, head[:n]); err != nil {
			return
		}
		size := binary.BigEndian.Uint32(head[n-4 : n])
		if size < 4 || size > 1<<24 {
			return
		}
		body := make([]byte, size-4)
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		if startup && len(body) >= 4 && binary.BigEndian.Uint32(body) == 3<<16 {
			startup = false // the StartupMessage itself: typed messages follow
		}
		if !startup && n == 5 && head[0] == 'Q' && strings.HasPrefix(strings.TrimSpace(string(body)), "START_REPLICATION") {
			px.heldOnce.Do(func() { close(px.held) })
			<-px.open
		}
		if _, err := u.Write(append(head[:n:n], body...)); err != nil {
			return
		}
	}
}
