package stage

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A hook command must not inherit the source password, however the
// embedding process holds it in its environment.
func TestHookBaseEnvDropsPassword(t *testing.T) {
	const pw = `hook's s3cret`
	t.Setenv("PGPASSWORD", pw)
	t.Setenv("PGSTAGE_SOURCE_PASSWORD", pw)
	t.Setenv("MY_APP_SECRET", pw)
	t.Setenv("MY_APP_DSN", "password="+strings.ReplaceAll(pw, "'", `\'`))
	t.Setenv("PGSTAGE_KEEP", "kept")
	t.Setenv("HOOK_UNRELATED", "kept too")

	env := strings.Join(hookBaseEnv(pw), "\n")
	assert.NotContains(t, env, "s3cret")
	assert.NotContains(t, env, "PGPASSWORD=")
	assert.Contains(t, env, "PGSTAGE_KEEP=kept")
	assert.Contains(t, env, "HOOK_UNRELATED=kept too")
}
