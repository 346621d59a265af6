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

	logtest "github.com/sirupsen/logrus/hooks/test"
	"github.com/stompgate/stompgate/gateway/admin"
	"github.com/stompgate/stompgate/gateway/broker"
	"github.com/stompgate/stompgate/gateway/config"
)

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
			header := make([]byte, len(amqpHeader))
			if _, err := io.ReadFull(c, header); err == nil && string(header) == amqpHeader {
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
			cfg := config.DefaultConfig()
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
	cfg := config.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.STOMP.ErrorLinger = 50 * time.Millisecond
	log, _ := logtest.NewNullLogger()
	srv, err := NewServer(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv.dial = func(context.Context, broker.Login) (broker.Conn, error) {
		return nil, fmt.Errorf("%w: test broker is down", broker.ErrUnreachable)
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
	srv := &Server{probe: &admin.BrokerProbe{}}
	srv.serving = true
	if why := srv.readiness(context.Background()); why != "" {
		// admin.BrokerProbe with no URLs reports no error: ready.
		t.Fatalf("readiness = %q, want ready", why)
	}
	srv.closing = true
	if why := srv.readiness(context.Background()); why != "shutting down" {
		t.Errorf("readiness while closing = %q, want \"shutting down\"", why)
	}
}

// amqpHeader opens an AMQP 0-9-1 connection.
const amqpHeader = "AMQP\x00\x00\x09\x01"
