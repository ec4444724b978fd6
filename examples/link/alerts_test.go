package main

import (
	"context"
	"os"
	"regexp"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/stage/monitor"
)

// TestAlertRulesNameRealMetrics checks that every pgstage_ metric the
// example alerting rules use is one the collector exports: a rule on a
// misspelt metric never fires.
func TestAlertRulesNameRealMetrics(t *testing.T) {
	rules, err := os.ReadFile("../pgstage-alerts.yml")
	require.NoError(t, err)
	c := monitor.NewCollector(nil, monitor.Options{Clones: func(context.Context) (int, error) { return 0, nil }})
	ch := make(chan *prometheus.Desc, 64)
	c.Describe(ch)
	close(ch)
	known := map[string]bool{}
	nameRE := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		known[nameRE.FindStringSubmatch(d.String())[1]] = true
	}
	used := regexp.MustCompile(`\bpgstage_[a-z_]+`).FindAllString(string(rules), -1)
	require.NotEmpty(t, used)
	for _, name := range used {
		require.True(t, known[name], "the rules use %s, which the collector does not export", name)
	}
}
