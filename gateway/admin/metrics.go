package admin

// Prometheus metrics: Metrics implements the gateway's Observer and is
// served by the admin handler's /metrics (admin.go). Every name starts
// with stompgate_. Label values come from fixed sets (transports, STOMP
// commands, close reasons, broker states) or are capped (ERROR messages,
// broker profiles), so a misbehaving client cannot grow the series count.

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stompgate/stompgate/gateway/codec"
)

// maxLabelValues caps the distinct values of a free-text label; further
// values are counted under "other".
const maxLabelValues = 64

// Metrics is the Prometheus Observer. Safe for concurrent use.
type Metrics struct {
	sessionsOpen     *prometheus.GaugeVec
	sessionsTotal    *prometheus.CounterVec
	sessionCloses    *prometheus.CounterVec
	framesIn         *prometheus.CounterVec
	framesOut        *prometheus.CounterVec
	published        prometheus.Counter
	delivered        prometheus.Counter
	receiptLatency   prometheus.Histogram
	errors           *prometheus.CounterVec
	brokerConns      *prometheus.CounterVec
	brokerConnsOpen  prometheus.Gauge
	brokerProfile    *prometheus.GaugeVec
	resumes          *prometheus.CounterVec
	resumeSeconds    prometheus.Histogram
	accessDenied     *prometheus.CounterVec
	accessDeniedCap  labelCap
	errorMessages    labelCap
	brokerProfileCap labelCap
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sessionsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stompgate_sessions_open",
			Help: "STOMP connections currently open, by transport (tcp, tls, ws, wss).",
		}, []string{"transport"}),
		sessionsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stompgate_sessions_total",
			Help: "STOMP connections accepted, by transport (tcp, tls, ws, wss).",
		}, []string{"transport"}),
		sessionCloses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stompgate_session_closes_total",
			Help: "STOMP connections ended, by transport and close reason.",
		}, []string{"transport", "reason"}),
		framesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stompgate_frames_in_total",
			Help: "STOMP frames decoded from clients, by command.",
		}, []string{"command"}),
		framesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stompgate_frames_out_total",
			Help: "STOMP frames queued for clients, by command.",
		}, []string{"command"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stompgate_messages_published_total",
			Help: "Messages published to the broker (SENDs, including committed transactions).",
		}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stompgate_messages_delivered_total",
			Help: "MESSAGE frames queued for clients.",
		}),
		receiptLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "stompgate_receipt_latency_seconds",
			Help:    "Time from a SEND's arrival to its RECEIPT (the broker's publisher confirm).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms .. ~4 s
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stompgate_errors_total",
			Help: "ERROR frames sent, by their message header.",
		}, []string{"message"}),
		brokerConns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stompgate_broker_connections_total",
			Help: "AMQP connection events by state: open, refused, unreachable, closed.",
		}, []string{"state"}),
		brokerConnsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stompgate_broker_connections_open",
			Help: "AMQP connections currently open (one per STOMP session).",
		}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stompgate_session_resumes_total",
			Help: "Sessions whose AMQP connection died and that were resumed on a new one (result ok) or ended (result failed); amqp.resume_sessions.",
		}, []string{"result"}),
		resumeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "stompgate_session_resume_seconds",
			Help:    "Time from a lost AMQP connection to the session running on a new one.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 13), // 10 ms .. ~41 s
		}),
		accessDenied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stompgate_access_denied_total",
			Help: "SENDs and SUBSCRIBEs refused by acl.rules, by deciding rule (rule_<index>, 0-based) or default_deny (no rule matched); subscriptions ended by a reload count too.",
		}, []string{"rule"}),
		brokerProfile: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stompgate_broker_profile_info",
			Help: "1 for each broker profile that sessions have identified.",
		}, []string{"profile"}),
	}
	m.errorMessages.limit = maxLabelValues
	m.brokerProfileCap.limit = 8
	m.accessDeniedCap.limit = maxLabelValues
	reg.MustRegister(m.sessionsOpen, m.sessionsTotal, m.sessionCloses, m.framesIn, m.framesOut,
		m.published, m.delivered, m.receiptLatency, m.errors, m.brokerConns, m.brokerConnsOpen, m.brokerProfile,
		m.resumes, m.resumeSeconds, m.accessDenied)
	// Pre-create the series that dashboards and alerts expect at zero.
	for _, t := range []string{"tcp", "tls", "ws", "wss"} {
		m.sessionsOpen.WithLabelValues(t)
		m.sessionsTotal.WithLabelValues(t)
	}
	for _, s := range []string{"open", "refused", "unreachable", "closed"} {
		m.brokerConns.WithLabelValues(s)
	}
	return m
}

// SessionOpened implements Observer.
func (m *Metrics) SessionOpened(transport string) {
	m.sessionsOpen.WithLabelValues(transport).Inc()
	m.sessionsTotal.WithLabelValues(transport).Inc()
}

// SessionClosed implements Observer.
func (m *Metrics) SessionClosed(transport, reason string) {
	m.sessionsOpen.WithLabelValues(transport).Dec()
	m.sessionCloses.WithLabelValues(transport, reason).Inc()
}

// FrameIn implements Observer.
func (m *Metrics) FrameIn(command string) { m.framesIn.WithLabelValues(commandLabel(command)).Inc() }

// FrameOut implements Observer.
func (m *Metrics) FrameOut(command string) { m.framesOut.WithLabelValues(commandLabel(command)).Inc() }

// ErrorSent implements Observer.
func (m *Metrics) ErrorSent(message string) {
	m.errors.WithLabelValues(m.errorMessages.value(message)).Inc()
}

// Published implements Observer.
func (m *Metrics) Published() { m.published.Inc() }

// Delivered implements Observer.
func (m *Metrics) Delivered() { m.delivered.Inc() }

// ReceiptLatency implements Observer.
func (m *Metrics) ReceiptLatency(d time.Duration) { m.receiptLatency.Observe(d.Seconds()) }

// BrokerConnection implements Observer.
func (m *Metrics) BrokerConnection(state string) {
	switch state {
	case "open":
		m.brokerConnsOpen.Inc()
	case "closed":
		m.brokerConnsOpen.Dec()
	case "refused", "unreachable":
	default:
		state = "other"
	}
	m.brokerConns.WithLabelValues(state).Inc()
}

// BrokerProfile implements Observer.
func (m *Metrics) BrokerProfile(profile string) {
	m.brokerProfile.WithLabelValues(m.brokerProfileCap.value(profile)).Set(1)
}

// SessionResumed implements Observer.
func (m *Metrics) SessionResumed(d time.Duration, ok bool) {
	if !ok {
		m.resumes.WithLabelValues("failed").Inc()
		return
	}
	m.resumes.WithLabelValues("ok").Inc()
	m.resumeSeconds.Observe(d.Seconds())
}

// stompCommands are the commands counted by name; anything else is "other".
var stompCommands = map[string]bool{
	codec.CmdConnect: true, codec.CmdStomp: true, codec.CmdSend: true, codec.CmdSubscribe: true,
	codec.CmdUnsubscribe: true, codec.CmdAck: true, codec.CmdNack: true, codec.CmdBegin: true,
	codec.CmdCommit: true, codec.CmdAbort: true, codec.CmdDisconnect: true,
	codec.CmdConnected: true, codec.CmdMessage: true, codec.CmdReceipt: true, codec.CmdError: true,
}

func commandLabel(command string) string {
	if stompCommands[command] {
		return command
	}
	return "other"
}

// labelCap admits at most limit distinct label values; later new values
// become "other".
type labelCap struct {
	limit int
	mu    sync.Mutex
	seen  map[string]struct{}
}

func (c *labelCap) value(v string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[v]; ok {
		return v
	}
	if len(c.seen) >= c.limit {
		return "other"
	}
	if c.seen == nil {
		c.seen = make(map[string]struct{})
	}
	c.seen[v] = struct{}{}
	return v
}

// AccessDenied implements Observer.
func (m *Metrics) AccessDenied(rule string) {
	m.accessDenied.WithLabelValues(m.accessDeniedCap.value(rule)).Inc()
}
