// Package admin is stompgate's operational HTTP surface: the admin handler
// (NewHandler: /healthz, /readyz, /metrics and, with admin.pprof,
// /debug/pprof/), the Prometheus metrics (Metrics, which implements the
// gateway's Observer interface) and the broker probe behind /readyz
// (BrokerProbe).
//
// The gateway's Server owns the admin listener and its http.Server, and
// passes its readiness as a function, so this package knows nothing of
// sessions. Metrics' label values come from fixed sets or are capped, so a
// client cannot grow the number of series.
//
// Goroutines: none of its own (net/http runs the handlers). Imports: the
// standard library, the Prometheus client, gateway/config and
// gateway/codec (command names). Never the session core (package gateway).
package admin
