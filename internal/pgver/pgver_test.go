package pgver_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgver"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want pgver.Major
	}{
		{"9.4", pgver.V9_4},
		{"9.6\n", pgver.V9_6},
		{"9.6.24", pgver.V9_6},
		{"10", pgver.V10},
		{"15.4", pgver.V15},
		{"15.4 (Debian 15.4-1.pgdg120+1)", pgver.V15},
		{"postgres (PostgreSQL) 18.1", pgver.V18},
		{"17beta2", pgver.V17},
		{"16devel", pgver.V16},
		{" 18 ", pgver.V18},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := pgver.Parse(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got, "got %v, want %v", got, tt.want)
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for _, in := range []string{"", "9", "x", "9.x", "abc15", "-1", "100", "9.100"} {
		t.Run(in, func(t *testing.T) {
			_, err := pgver.Parse(in)
			assert.Error(t, err, "Parse(%q) accepted", in)
		})
	}
}

func TestFromNumAndString(t *testing.T) {
	assert.Equal(t, pgver.V9_6, pgver.FromNum(90624))
	assert.Equal(t, pgver.V15, pgver.FromNum(150004))
	assert.Equal(t, "9.6", pgver.V9_6.String())
	assert.Equal(t, "18", pgver.V18.String())
	assert.Equal(t, "unknown", pgver.Major(0).String())
	assert.True(t, pgver.V9_4.Supported())
	assert.False(t, pgver.Major(903).Supported())
	assert.False(t, pgver.Major(1900).Supported())
}

func TestJSON(t *testing.T) {
	b, err := json.Marshal(struct{ V pgver.Major }{pgver.V9_5})
	require.NoError(t, err)
	assert.JSONEq(t, `{"V":"9.5"}`, string(b))
	var back struct{ V pgver.Major }
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, pgver.V9_5, back.V)
}

func TestTable(t *testing.T) {
	table := pgver.Table[string]{
		{Range: pgver.Range{From: pgver.V9_4, To: pgver.V10}, Rules: "pg_xlog"},
		{Range: pgver.Since(pgver.V10), Rules: "pg_wal"},
	}
	for _, tt := range []struct {
		m    pgver.Major
		want string
		ok   bool
	}{
		{pgver.V9_4, "pg_xlog", true},
		{pgver.V9_6, "pg_xlog", true},
		{pgver.V10, "pg_wal", true},
		{pgver.V18, "pg_wal", true},
		{903, "", false},
	} {
		got, ok := table.For(tt.m)
		assert.Equal(t, tt.ok, ok, "For(%v) ok", tt.m)
		assert.Equal(t, tt.want, got, "For(%v): got %q, want %q", tt.m, got, tt.want)
	}
	assert.True(t, pgver.Before(pgver.V12).Contains(pgver.V11))
	assert.False(t, pgver.Before(pgver.V12).Contains(pgver.V12))
}
