package monitor

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pgstage/pgstage/stage"
)

// health is the body of a health answer.
type health struct {
	State stage.State  `json:"state"`
	Fault *stage.Fault `json:"fault,omitempty"`
	// Advice says what to do about the fault.
	Advice string `json:"advice,omitempty"`
	// Error says why the status could not be read.
	Error string `json:"error,omitempty"`
}

// Health returns a handler that answers 200 while the staging streams and
// 503 otherwise, with a JSON body naming the state and the open fault, if
// any (a load balancer or an uptime check reads the code; a person the
// body).
func Health(l Linker, opts Options) http.Handler {
	opts = opts.withDefaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), opts.Timeout)
		defer cancel()
		var h health
		code := http.StatusServiceUnavailable
		st, err := l.Status(ctx)
		switch {
		case err != nil:
			h.State, h.Error = "unknown", err.Error()
		default:
			h.State, h.Fault = st.State, st.Fault
			if st.Fault != nil {
				h.Advice = stage.Advice(st.Fault.Reason)
			}
			if st.State == stage.StateStreaming {
				code = http.StatusOK
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(h)
	})
}

// Handler returns a mux serving /metrics (the Collector, with the Go
// runtime and process metrics, on a registry of its own) and /healthz
// (Health).
func Handler(l Linker, opts Options) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(l, opts),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.Handle("GET /healthz", Health(l, opts))
	return mux
}
