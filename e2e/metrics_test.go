//go:build e2e

package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/stompgate/stompgate/gateway"
	"github.com/stompgate/stompgate/gateway/config"
)

// The admin listener against the real broker: /healthz, /readyz, and
// /metrics moving as sessions and messages flow.

func adminGet(t *testing.T, srv *gateway.Server, path string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + srv.AdminAddr().String() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// scrape returns every sample of /metrics by its series as printed, e.g.
// `stompgate_sessions_total{transport="tcp"}`.
func scrape(t *testing.T, srv *gateway.Server) map[string]float64 {
	t.Helper()
	code, body := adminGet(t, srv, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d", code)
	}
	samples := make(map[string]float64)
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples
}

func TestMetricsMoveWithTraffic(t *testing.T) {
	srv := startDeployedGateway(t, func(c *config.Config) { c.Admin.Listen = "127.0.0.1:0" })
	queue := newNames(t).queue("metrics")
	before := scrape(t, srv)

	conn := dialStomp(t, srv.Addr().String())
	sub, err := conn.Subscribe("/queue/"+queue, stomp.AckAuto)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	const messages = 3
	for i := 0; i < messages; i++ {
		if err := conn.Send("/queue/"+queue, "text/plain", []byte("m"), stomp.SendOpt.Receipt); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	for i := 0; i < messages; i++ {
		receiveWithin(t, sub, 5*time.Second)
	}
	during := scrape(t, srv)
	if err := conn.Disconnect(); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}

	delta := func(samples map[string]float64, series string) float64 { return samples[series] - before[series] }
	checks := []struct {
		series string
		want   float64
	}{
		{`stompgate_sessions_total{transport="tcp"}`, 1},
		{`stompgate_sessions_open{transport="tcp"}`, 1},
		// CONNECT itself is read before the session loop, which is where
		// FrameIn is reported (session.go), so it is not counted yet.
		{`stompgate_frames_in_total{command="SEND"}`, messages},
		{`stompgate_frames_in_total{command="SUBSCRIBE"}`, 1},
		{`stompgate_frames_out_total{command="CONNECTED"}`, 1},
		{`stompgate_frames_out_total{command="MESSAGE"}`, messages},
		{`stompgate_messages_published_total`, messages},
		{`stompgate_messages_delivered_total`, messages},
		{`stompgate_receipt_latency_seconds_count`, messages},
		{`stompgate_broker_connections_total{state="open"}`, 1},
		{`stompgate_broker_connections_open`, 1},
	}
	for _, c := range checks {
		if got := delta(during, c.series); got != c.want {
			t.Errorf("%s moved by %v during the session, want %v", c.series, got, c.want)
		}
	}
	if during[`stompgate_broker_profile_info{profile="rabbitmq"}`] != 1 {
		t.Errorf(`stompgate_broker_profile_info{profile="rabbitmq"} = %v, want 1`, during[`stompgate_broker_profile_info{profile="rabbitmq"}`])
	}

	// After DISCONNECT the session is counted closed, with its reason.
	deadline := time.Now().Add(5 * time.Second)
	for {
		after := scrape(t, srv)
		closed := delta(after, `stompgate_session_closes_total{reason="client_disconnect",transport="tcp"}`) == 1 &&
			delta(after, `stompgate_sessions_open{transport="tcp"}`) == 0 &&
			delta(after, `stompgate_broker_connections_open`) == 0 &&
			delta(after, `stompgate_frames_in_total{command="DISCONNECT"}`) == 1
		if closed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics after DISCONNECT did not show the closed session: closes %v, open %v, broker open %v",
				delta(after, `stompgate_session_closes_total{reason="client_disconnect",transport="tcp"}`),
				delta(after, `stompgate_sessions_open{transport="tcp"}`), delta(after, `stompgate_broker_connections_open`))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A refused login counts as an ERROR and a refused broker connection.
func TestMetricsCountErrors(t *testing.T) {
	srv := startDeployedGateway(t, func(c *config.Config) { c.Admin.Listen = "127.0.0.1:0" })
	before := scrape(t, srv)
	c, err := net.DialTimeout("tcp", srv.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write([]byte("CONNECT\naccept-version:1.2\nlogin:guest\npasscode:wrong\n\n\x00"))
	_, _ = io.Copy(io.Discard, c)
	deadline := time.Now().Add(5 * time.Second)
	for {
		after := scrape(t, srv)
		if after[`stompgate_errors_total{message="Bad CONNECT"}`]-before[`stompgate_errors_total{message="Bad CONNECT"}`] == 1 &&
			after[`stompgate_broker_connections_total{state="refused"}`]-before[`stompgate_broker_connections_total{state="refused"}`] == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("errors_total and broker refusals did not move: %v, %v",
				after[`stompgate_errors_total{message="Bad CONNECT"}`], after[`stompgate_broker_connections_total{state="refused"}`])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMetricsHealthAndReadiness(t *testing.T) {
	t.Run("broker up", func(t *testing.T) {
		srv := startDeployedGateway(t, func(c *config.Config) { c.Admin.Listen = "127.0.0.1:0" })
		if code, body := adminGet(t, srv, "/healthz"); code != http.StatusOK {
			t.Errorf("/healthz: %d %q", code, body)
		}
		if code, body := adminGet(t, srv, "/readyz"); code != http.StatusOK || body != "ready\n" {
			t.Errorf("/readyz: %d %q, want 200 ready", code, body)
		}
	})
	t.Run("broker unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := ln.Addr().String()
		_ = ln.Close()
		srv := startDeployedGateway(t, func(c *config.Config) {
			c.Admin.Listen = "127.0.0.1:0"
			c.AMQP.URL = "amqp://" + dead + "/"
		})
		if code, _ := adminGet(t, srv, "/healthz"); code != http.StatusOK {
			t.Errorf("/healthz: %d, want 200 (the process is up)", code)
		}
		if code, body := adminGet(t, srv, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, dead) {
			t.Errorf("/readyz: %d %q, want 503 naming %s", code, body, dead)
		}
	})
}
