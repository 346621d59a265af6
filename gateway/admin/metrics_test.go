package admin

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

func TestMetricsFollowObserverEvents(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.SessionOpened("ws")
	m.SessionOpened("ws")
	m.SessionOpened("tcp")
	m.SessionClosed("ws", "protocol_error")
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
	m.SessionResumed(120*time.Millisecond, true)
	m.SessionResumed(2*time.Second, true)
	m.SessionResumed(30*time.Second, false)

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
		{"resumes ok", m.resumes.WithLabelValues("ok"), 2},
		{"resumes failed", m.resumes.WithLabelValues("failed"), 1},
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
	var hist dto.Metric
	if err := m.resumeSeconds.Write(&hist); err != nil {
		t.Fatal(err)
	}
	if n, sum := hist.GetHistogram().GetSampleCount(), hist.GetHistogram().GetSampleSum(); n != 2 || sum < 2.1 || sum > 2.2 {
		t.Errorf("resume_seconds has %d samples summing to %vs, want the 2 successful resumes (2.12 s)", n, sum)
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
