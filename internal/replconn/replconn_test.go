package replconn_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/replconn"
	"github.com/pgstage/pgstage/internal/secret"
)

// A password with the characters libpq, passfiles and conf files escape.
const password = `s3cr' t\:pw`

// seen is what the fake server was sent on one connection.
type seen struct {
	params   map[string]string
	password string
}

// fakeSource accepts one connection on loopback, asks for a cleartext
// password, and then either accepts (reporting server_version 15.8) or
// refuses with a message that quotes the password, as a careless server
// or proxy might. It returns the address and what it was sent.
func fakeSource(t *testing.T, accept bool) (string, int, <-chan seen) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	out := make(chan seen, 1)
	go func() {
		defer close(out)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		be := pgproto3.NewBackend(c, c)
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return
		}
		sm, ok := msg.(*pgproto3.StartupMessage)
		if !ok {
			return
		}
		s := seen{params: sm.Parameters}
		be.Send(&pgproto3.AuthenticationCleartextPassword{})
		if be.Flush() != nil || be.SetAuthType(pgproto3.AuthTypeCleartextPassword) != nil {
			return
		}
		if msg, err := be.Receive(); err == nil {
			if pm, ok := msg.(*pgproto3.PasswordMessage); ok {
				s.password = pm.Password
			}
		}
		if accept {
			be.Send(&pgproto3.AuthenticationOk{})
			be.Send(&pgproto3.ParameterStatus{Name: "server_version", Value: "15.8"})
			be.Send(&pgproto3.BackendKeyData{ProcessID: 1, SecretKey: []byte{0, 0, 0, 1}})
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		} else {
			be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01",
				Message: `password authentication failed for user "repl" (password was ` + s.password + `)`})
		}
		be.Flush()
		out <- s
		if accept { // wait for the client's Terminate
			be.Receive()
		}
	}()
	addr := l.Addr().(*net.TCPAddr)
	return addr.IP.String(), addr.Port, out
}

func config(host string, port int) replconn.Config {
	return replconn.Config{Host: host, Port: port, User: "repl", Password: password, SSLMode: "disable", ApplicationName: "pgstage test"}
}

func TestConnect(t *testing.T) {
	host, port, got := fakeSource(t, true)
	conn, err := replconn.Connect(context.Background(), config(host, port))
	require.NoError(t, err)
	assert.Equal(t, "15.8", conn.ParameterStatus("server_version"))
	require.NoError(t, conn.Close(context.Background()))
	s := <-got
	assert.Equal(t, password, s.password, "the password is sent when asked for")
	for k, want := range map[string]string{"user": "repl", "database": "replication", "replication": "true", "application_name": "pgstage test"} {
		assert.Equal(t, want, s.params[k], "startup parameter %s", k)
	}
	for k, v := range s.params {
		assert.False(t, secret.Contains(v, password), "startup parameter %s holds the password", k)
	}
}

func TestConnectRefusedHidesPassword(t *testing.T) {
	host, port, got := fakeSource(t, false)
	_, err := replconn.Connect(context.Background(), config(host, port))
	require.Error(t, err)
	<-got
	assert.Contains(t, err.Error(), "replication connection to the source "+host+":"+strconv.Itoa(port)+" as repl: ")
	assert.False(t, secret.Contains(err.Error(), password), "got %q, which holds the password", err)
	assert.Contains(t, err.Error(), secret.Mask)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "got %T, want a *pgconn.PgError inside", err)
	assert.Equal(t, "28P01", pgErr.Code)
}

func TestConnectBadSettings(t *testing.T) {
	cfg := config("127.0.0.1", 1)
	cfg.SSLMode = "sometimes"
	_, err := replconn.Connect(context.Background(), cfg)
	require.ErrorContains(t, err, "source connection settings: ")
	assert.False(t, secret.Contains(err.Error(), password))
}
