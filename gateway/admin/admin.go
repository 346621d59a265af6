package admin

// The admin HTTP handler (admin.listen): /healthz, /readyz, /metrics and,
// with admin.pprof, /debug/pprof/. The gateway's Server runs the listener;
// it stays up during a graceful shutdown, so /readyz can report "shutting
// down" while sessions drain.

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stompgate/stompgate/gateway/config"
)

// brokerProbeTTL is how long a broker probe result is reused, so frequent
// /readyz polls do not each open a connection to the broker.
const brokerProbeTTL = 2 * time.Second

// brokerProbeTimeout bounds one probe of one broker address.
const brokerProbeTimeout = 2 * time.Second

// NewHandler returns the admin mux. ready reports why the gateway is
// not ready, or "" when it is.
func NewHandler(reg *prometheus.Registry, ready func(context.Context) string, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	// /healthz: the process is up and serving HTTP (a liveness probe).
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	// /readyz: a broker is reachable and the STOMP listeners accept (a
	// readiness probe: take the pod out of the Service otherwise).
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if why := ready(r.Context()); why != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not ready: "+why+"\n")
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// NewRegistry returns a registry with the gateway's metrics and the
// standard Go runtime and process collectors.
func NewRegistry() (*prometheus.Registry, *Metrics) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg, NewMetrics(reg)
}

// BrokerProbe checks that an AMQP broker answers at one of the amqp.url
// addresses: it connects (with TLS for amqps://), sends the AMQP 0-9-1
// protocol header and expects a method frame (connection.start) back, then
// hangs up. Results are cached for brokerProbeTTL.
type BrokerProbe struct {
	urls []string // from config.BrokerURLs: scheme://host:port/
	tls  *tls.Config

	mu      sync.Mutex // guards the cached result; held during a probe
	checked time.Time
	lastErr error
}

// NewBrokerProbe probes the brokers of cfg.URL.
func NewBrokerProbe(cfg config.AMQPConfig) (*BrokerProbe, error) {
	urls, err := config.BrokerURLs(cfg.URL)
	if err != nil {
		return nil, err
	}
	tc, err := config.AMQPTLS(cfg.TLS)
	if err != nil {
		return nil, err
	}
	return &BrokerProbe{urls: urls, tls: tc}, nil
}

// Check returns nil when a broker answered within the last brokerProbeTTL.
func (p *BrokerProbe) Check(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.checked.IsZero() && time.Since(p.checked) < brokerProbeTTL {
		return p.lastErr
	}
	var err error
	for _, u := range p.urls {
		if err = p.probe(ctx, u); err == nil {
			break
		}
	}
	p.checked, p.lastErr = time.Now(), err
	return err
}

// amqpProtocolHeader opens an AMQP 0-9-1 connection.
var amqpProtocolHeader = []byte("AMQP\x00\x00\x09\x01")

func (p *BrokerProbe) probe(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, brokerProbeTimeout)
	defer cancel()
	var conn net.Conn
	if u.Scheme == "amqps" {
		d := &tls.Dialer{Config: config.WithServerName(p.tls, u.Hostname())}
		if d.Config == nil {
			d.Config = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
		}
		conn, err = d.DialContext(ctx, "tcp", u.Host)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", u.Host)
	}
	if err != nil {
		return fmt.Errorf("broker %s: %w", u.Host, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write(amqpProtocolHeader); err != nil {
		return fmt.Errorf("broker %s: %w", u.Host, err)
	}
	var frameType [1]byte
	if _, err := io.ReadFull(conn, frameType[:]); err != nil {
		return fmt.Errorf("broker %s: no AMQP answer: %w", u.Host, err)
	}
	// A frame type 1 (method) is connection.start; "A" would be the
	// broker's own protocol header, refusing our version.
	if frameType[0] != 1 {
		return fmt.Errorf("broker %s: not an AMQP 0-9-1 broker (first byte %q)", u.Host, frameType[0])
	}
	return nil
}
