package replconn

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestConninfo(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"defaults", Config{Host: "db1", Port: 5432, User: "repl"},
			`host='db1' port='5432' user='repl' dbname='replication' replication='true' connect_timeout='10'`},
		{"everything, quoted", Config{Host: "db 1", Port: 5433, User: `o'neil\x`, Password: "pw", SSLMode: "require", ApplicationName: "pgstage", ConnectTimeout: 30 * time.Second},
			`host='db 1' port='5433' user='o\'neil\\x' dbname='replication' replication='true' application_name='pgstage' sslmode='require' connect_timeout='30'`},
		{"timeout rounded down", Config{Host: "h", Port: 1, User: "u", ConnectTimeout: 2500 * time.Millisecond},
			`host='h' port='1' user='u' dbname='replication' replication='true' connect_timeout='2'`},
		{"timeout at least a second", Config{Host: "h", Port: 1, User: "u", ConnectTimeout: time.Millisecond},
			`host='h' port='1' user='u' dbname='replication' replication='true' connect_timeout='1'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.cfg.conninfo())
		})
	}
}
