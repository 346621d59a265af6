package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

func TestMetricsFollowObserverEvents(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.SessionOpened("ws")
	m.SessionOpened("ws")
	m.SessionOpened("tcp")
	m.SessionClosed("ws", CloseProtocolError)
	m.FrameIn("SEND")
	m.FrameIn("SEND")
	m.FrameIn("BOGUS")
	m.FrameOut("RECEIPT")
	m.ErrorSent("Bad CONNECT")
	m.Published()
	m.Delivered()
	m.Delivered()
	m.ReceiptLatency(3 * time.Millisecond)
	m.BrokerConnection("open")
	m.BrokerConnection("open")
	m.BrokerConnection("closed")
	m.BrokerConnection("refused")
	m.BrokerProfile("rabbitmq")

	checks := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"sessions_open ws", m.sessionsOpen.WithLabelValues("ws"), 1},
		{"sessions_total ws", m.sessionsTotal.WithLabelValues("ws"), 2},
		{"sessions_total tcp", m.sessionsTotal.WithLabelValues("tcp"), 1},
		{"closes ws protocol_error", m.sessionCloses.WithLabelValues("ws", "protocol_error"), 1},
		{"frames_in SEND", m.framesIn.WithLabelValues("SEND"), 2},
		{"frames_in other", m.framesIn.WithLabelValues("other"), 1},
		{"frames_out RECEIPT", m.framesOut.WithLabelValues("RECEIPT"), 1},
		{"errors Bad CONNECT", m.errors.WithLabelValues("Bad CONNECT"), 1},
		{"published", m.published, 1},
		{"delivered", m.delivered, 2},
		{"broker open events", m.brokerConns.WithLabelValues("open"), 2},
		{"broker refused events", m.brokerConns.WithLabelValues("refused"), 1},
		{"broker connections open", m.brokerConnsOpen, 1},
		{"broker profile", m.brokerProfile.WithLabelValues("rabbitmq"), 1},
	}
	for _, c := range checks {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.receiptLatency); n != 1 {
		t.Errorf("receipt latency series = %d, want 1", n)
	}
	// Every name carries the stompgate_ prefix.
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "stompgate_") {
			t.Errorf("metric %s lacks the stompgate_ prefix", f.GetName())
		}
	}
}

// Free-text labels are capped so a client cannot grow the series count.
func TestMetricsCapErrorMessages(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	for i := 0; i < maxLabelValues+10; i++ {
		m.ErrorSent(fmt.Sprintf("message %d", i))
	}
	if n := testutil.CollectAndCount(m.errors); n != maxLabelValues+1 {
		t.Errorf("error series = %d, want %d (the cap plus \"other\")", n, maxLabelValues+1)
	}
	if got := testutil.ToFloat64(m.errors.WithLabelValues("other")); got != 10 {
		t.Errorf("other = %v, want 10", got)
	}
}

// fakeAMQPListener answers like an AMQP broker's first byte: a method frame.
func fakeAMQPListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			header := make([]byte, len(amqpProtocolHeader))
			if _, err := io.ReadFull(c, header); err == nil && string(header) == string(amqpProtocolHeader) {
				_, _ = c.Write([]byte{1, 0, 0})
			}
			_ = c.Close()
		}
	}()
	return ln.Addr().String()
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestAdminEndpoints(t *testing.T) {
	tests := []struct {
		name      string
		brokerURL string
		wantReady int
	}{
		{"broker answers", "amqp://" + fakeAMQPListener(t) + "/", http.StatusOK},
		{"second URL answers", "amqp://" + closedPort(t) + "/,amqp://" + fakeAMQPListener(t) + "/", http.StatusOK},
		{"broker down", "amqp://" + closedPort(t) + "/", http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Listen = "127.0.0.1:0"
			cfg.Admin.Listen = "127.0.0.1:0"
			cfg.Admin.Pprof = true
			cfg.AMQP.URL = tt.brokerURL
			log, _ := logtest.NewNullLogger()
			srv, err := NewServer(cfg, log)
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.Listen(); err != nil {
				t.Fatal(err)
			}
			base := "http://" + srv.AdminAddr().String()
			served := make(chan error, 1)
			go func() { served <- srv.Serve() }()
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(ctx)
				<-served
			}()
			waitFor(t, "Serve to start", func() bool {
				srv.mu.Lock()
				defer srv.mu.Unlock()
				return srv.serving
			})

			if code, body := httpGet(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
				t.Errorf("/healthz: %d %q", code, body)
			}
			if code, body := httpGet(t, base+"/readyz"); code != tt.wantReady {
				t.Errorf("/readyz: %d %q, want %d", code, body, tt.wantReady)
			}
			code, body := httpGet(t, base+"/metrics")
			if code != http.StatusOK || !strings.Contains(body, `stompgate_sessions_total{transport="tcp"} 0`) ||
				!strings.Contains(body, "go_goroutines") {
				t.Errorf("/metrics: %d, body lacks the gateway or Go metrics:\n%.500s", code, body)
			}
			if code, _ := httpGet(t, base+"/debug/pprof/cmdline"); code != http.StatusOK {
				t.Errorf("/debug/pprof/cmdline: %d, want 200 with admin.pprof", code)
			}
		})
	}
}

// A TCP session moves the metrics, labelled with its transport.
func TestAdminMetricsCountSessions(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.STOMP.ErrorLinger = 50 * time.Millisecond
	log, _ := logtest.NewNullLogger()
	srv, err := NewServer(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv.dial = func(context.Context, brokerLogin) (brokerConn, error) {
		return nil, fmt.Errorf("%w: test broker is down", errBrokerUnreachable)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-served
	}()
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("CONNECT\nlogin:a\npasscode:b\n\n\x00"))
	_, _ = io.Copy(io.Discard, c) // the ERROR, then the close
	_ = c.Close()
	waitFor(t, "session metrics", func() bool {
		_, body := httpGet(t, "http://"+srv.AdminAddr().String()+"/metrics")
		return strings.Contains(body, `stompgate_sessions_total{transport="tcp"} 1`) &&
			strings.Contains(body, `stompgate_sessions_open{transport="tcp"} 0`) &&
			strings.Contains(body, `stompgate_session_closes_total{reason="protocol_error",transport="tcp"} 1`) &&
			strings.Contains(body, `stompgate_errors_total{message="Bad CONNECT"} 1`) &&
			strings.Contains(body, `stompgate_broker_connections_total{state="unreachable"} 1`) &&
			strings.Contains(body, `stompgate_frames_out_total{command="ERROR"} 1`)
	})
}

// During a graceful shutdown /readyz says so while the admin listener is
// still up.
func TestReadinessWhileShuttingDown(t *testing.T) {
	srv := &Server{probe: &brokerProbe{}}
	srv.serving = true
	if why := srv.readiness(context.Background()); why != "" {
		// brokerProbe with no URLs reports no error: ready.
		t.Fatalf("readiness = %q, want ready", why)
	}
	srv.closing = true
	if why := srv.readiness(context.Background()); why != "shutting down" {
		t.Errorf("readiness while closing = %q, want \"shutting down\"", why)
	}
}
