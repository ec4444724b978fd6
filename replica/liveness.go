package replica

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Liveness is how soon the standby notices a source it no longer hears
// from. A network that drops packets without a reset (a partition, a dead
// host, a firewall) is seen only through timeouts: with PostgreSQL's
// defaults the walreceiver waits 60 s (wal_receiver_timeout), and a
// reconnect to such a host blocks in TCP connect for minutes. With these
// defaults the stream ends, and the walreceiver logs "terminating
// walreceiver due to timeout", within about 10 s of the last message.
//
// Zero fields mean the defaults below; a negative field leaves the setting
// to the server's (or libpq's) own default.
type Liveness struct {
	// ReceiverTimeout is wal_receiver_timeout: the walreceiver ends a stream
	// on which nothing arrived for this long; at half of it, it asks the
	// source for a reply, so an idle but healthy stream is not ended.
	// Default 8s.
	ReceiverTimeout time.Duration
	// StatusInterval is wal_receiver_status_interval (whole seconds): how
	// often the standby reports its position unasked, which also keeps the
	// source's wal_sender_timeout from ending a healthy stream. Default 2s.
	StatusInterval time.Duration
	// ConnectTimeout is primary_conninfo's connect_timeout (whole seconds;
	// libpq uses at least 2): a reconnect to an unreachable source gives up
	// after it instead of after TCP's minutes. Default 5s.
	ConnectTimeout time.Duration
	// KeepalivesIdle and KeepalivesInterval (whole seconds) and
	// KeepalivesCount are primary_conninfo's TCP keepalive settings: an idle
	// connection whose peer is gone fails after idle + interval * count.
	// Defaults 5s, 1s and 3.
	KeepalivesIdle, KeepalivesInterval time.Duration
	KeepalivesCount                    int
	// TCPUserTimeout is primary_conninfo's tcp_user_timeout (libpq 12+;
	// not written before): a connection whose sent data stays
	// unacknowledged this long fails. Default ReceiverTimeout.
	TCPUserTimeout time.Duration
}

// withDefaults fills the zero fields.
func (l Liveness) withDefaults() Liveness {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&l.ReceiverTimeout, 8*time.Second)
	def(&l.StatusInterval, 2*time.Second)
	def(&l.ConnectTimeout, 5*time.Second)
	def(&l.KeepalivesIdle, 5*time.Second)
	def(&l.KeepalivesInterval, time.Second)
	if l.KeepalivesCount == 0 {
		l.KeepalivesCount = 3
	}
	def(&l.TCPUserTimeout, max(l.ReceiverTimeout, 0))
	return l
}

// settings are the server settings to write on the standby, in order.
func (l Liveness) settings() [][2]string {
	var kv [][2]string
	if l.ReceiverTimeout > 0 {
		kv = append(kv, [2]string{"wal_receiver_timeout", confDuration(l.ReceiverTimeout)})
	}
	if l.StatusInterval > 0 {
		kv = append(kv, [2]string{"wal_receiver_status_interval", seconds(l.StatusInterval) + "s"})
	}
	return kv
}

// conninfo adds the connection settings to primary_conninfo's keywords.
func (l Liveness) conninfo(r *rules, kv map[string]string) {
	if l.ConnectTimeout > 0 {
		kv["connect_timeout"] = seconds(l.ConnectTimeout)
	}
	if l.KeepalivesIdle > 0 || l.KeepalivesInterval > 0 || l.KeepalivesCount > 0 {
		kv["keepalives"] = "1"
	}
	if l.KeepalivesIdle > 0 {
		kv["keepalives_idle"] = seconds(l.KeepalivesIdle)
	}
	if l.KeepalivesInterval > 0 {
		kv["keepalives_interval"] = seconds(l.KeepalivesInterval)
	}
	if l.KeepalivesCount > 0 {
		kv["keepalives_count"] = strconv.Itoa(l.KeepalivesCount)
	}
	if l.TCPUserTimeout > 0 && r.tcpUserTimeout {
		kv["tcp_user_timeout"] = strconv.FormatInt(l.TCPUserTimeout.Milliseconds(), 10)
	}
}

// seconds is d in whole seconds, rounded up, at least 1 (pg_ctl -t 0
// gives up at once; libpq and the server take whole seconds).
func seconds(d time.Duration) string {
	return strconv.FormatInt(max(int64(math.Ceil(d.Seconds())), 1), 10)
}

// confDuration spells d for a milliseconds setting: "8s", "2500ms".
func confDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", max(d.Milliseconds(), 1))
}
