package replica_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/secret"
	"github.com/pgstage/pgstage/replica"
)

// leakyPassword is recognisable raw and in every escaped form, and its hex
// and decimal spellings are checked too.
const leakyPassword = `hunter2'\:pw`

// The password shows in no verb of fmt, in no slog handler and in no JSON,
// whether printed alone, in a Source, in a Config or through pointers.
func TestPasswordNeverPrints(t *testing.T) {
	src := replica.Source{Host: "db1", User: "repl", Password: leakyPassword}
	cfg := replica.Config{DataDir: "/d/data", BinDir: "/b", Source: src}
	s, err := replica.New(cfg)
	require.NoError(t, err)
	values := map[string]any{
		"password": src.Password, "source": src, "config": cfg, "*config": &cfg, "*source": &src,
		"standby": s, "slice": []replica.Source{src}, "map": map[string]replica.Password{"k": src.Password},
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "% x", "%d", "%10.3s", "%T"}
	for name, v := range values {
		for _, verb := range verbs {
			t.Run(name+" "+verb, func(t *testing.T) {
				assertNoPassword(t, fmt.Sprintf(verb, v))
			})
		}
		t.Run(name+" json", func(t *testing.T) {
			b, err := json.Marshal(v)
			if name == "standby" {
				return // no exported fields: {}
			}
			require.NoError(t, err)
			assertNoPassword(t, string(b))
		})
		for hname, h := range map[string]func(*bytes.Buffer) slog.Handler{
			"slog json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
			"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		} {
			t.Run(name+" "+hname, func(t *testing.T) {
				var buf bytes.Buffer
				slog.New(h(&buf)).Info("msg", "v", v, slog.Group("g", "v", v))
				require.NotEmpty(t, buf.String())
				assertNoPassword(t, buf.String())
			})
		}
	}
	assert.Equal(t, leakyPassword, src.Password.Reveal())
	assert.Equal(t, replica.Redacted, src.Password.String())
	assert.Equal(t, "", replica.Password("").String(), "no password stays visible as none")
}

func assertNoPassword(t *testing.T, text string) {
	t.Helper()
	for _, form := range []string{
		"hunter2", fmt.Sprintf("%x", "hunter2"), fmt.Sprintf("%X", "hunter2"), fmt.Sprintf("% x", "hunter2"),
		fmt.Sprint([]byte("hunter2")), "104 117 110",
	} {
		assert.NotContains(t, text, form, "%s", text)
	}
	assert.False(t, secret.Contains(text, leakyPassword), "%s", text)
}
