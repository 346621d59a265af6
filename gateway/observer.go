package gateway

import (
	"time"

	"github.com/stompgate/stompgate/gateway/admin"
)

// Observer receives session events, for metrics. Implementations must be
// cheap and safe for concurrent use: sessions call them from their own
// goroutines (session loop, writer) without locks of their own.
type Observer interface {
	// SessionOpened: a connection was accepted on transport ("tcp",
	// "tls", "ws", "wss").
	SessionOpened(transport string)
	// SessionClosed: the connection ended, for reason (a CloseReason).
	SessionClosed(transport, reason string)
	// FrameIn: a client frame was decoded.
	FrameIn(command string)
	// FrameOut: a frame was queued for the client.
	FrameOut(command string)
	// ErrorSent: an ERROR with this message header was queued.
	ErrorSent(message string)
	// Published: a message was published to the broker.
	Published()
	// Delivered: a MESSAGE was queued for the client.
	Delivered()
	// ReceiptLatency: a SEND's RECEIPT went out d after the SEND arrived.
	ReceiptLatency(d time.Duration)
	// BrokerConnection: an AMQP connection attempt ended in state
	// ("open", "refused", "unreachable") or an open one "closed".
	BrokerConnection(state string)
	// BrokerProfile: a session's broker was identified as profile.
	BrokerProfile(profile string)
	// SessionResumed: a session whose AMQP connection died was resumed
	// on a new one (ok) or ended after trying for d (amqp.resume_sessions).
	SessionResumed(d time.Duration, ok bool)
	// AccessDenied: acl.rules refused a SEND or SUBSCRIBE, or a reload
	// ended a subscription; rule is "rule_<index>" (0-based) or
	// "default_deny" when no rule matched.
	AccessDenied(rule string)
}

// The admin package's Prometheus metrics are an Observer.
var _ Observer = (*admin.Metrics)(nil)

// nopObserver is the Observer used when none is configured.
type nopObserver struct{}

func (nopObserver) SessionOpened(string)               {}
func (nopObserver) SessionClosed(string, string)       {}
func (nopObserver) FrameIn(string)                     {}
func (nopObserver) FrameOut(string)                    {}
func (nopObserver) ErrorSent(string)                   {}
func (nopObserver) Published()                         {}
func (nopObserver) Delivered()                         {}
func (nopObserver) ReceiptLatency(time.Duration)       {}
func (nopObserver) BrokerConnection(string)            {}
func (nopObserver) BrokerProfile(string)               {}
func (nopObserver) SessionResumed(time.Duration, bool) {}
func (nopObserver) AccessDenied(string)                {}

// teeObserver sends every event to each of its observers.
type teeObserver []Observer

func (t teeObserver) SessionOpened(transport string) {
	for _, o := range t {
		o.SessionOpened(transport)
	}
}

func (t teeObserver) SessionClosed(transport, reason string) {
	for _, o := range t {
		o.SessionClosed(transport, reason)
	}
}

func (t teeObserver) FrameIn(command string) {
	for _, o := range t {
		o.FrameIn(command)
	}
}

func (t teeObserver) FrameOut(command string) {
	for _, o := range t {
		o.FrameOut(command)
	}
}

func (t teeObserver) ErrorSent(message string) {
	for _, o := range t {
		o.ErrorSent(message)
	}
}

func (t teeObserver) Published() {
	for _, o := range t {
		o.Published()
	}
}

func (t teeObserver) Delivered() {
	for _, o := range t {
		o.Delivered()
	}
}

func (t teeObserver) ReceiptLatency(d time.Duration) {
	for _, o := range t {
		o.ReceiptLatency(d)
	}
}

func (t teeObserver) BrokerConnection(state string) {
	for _, o := range t {
		o.BrokerConnection(state)
	}
}

func (t teeObserver) BrokerProfile(profile string) {
	for _, o := range t {
		o.BrokerProfile(profile)
	}
}

func (t teeObserver) SessionResumed(d time.Duration, ok bool) {
	for _, o := range t {
		o.SessionResumed(d, ok)
	}
}

func (t teeObserver) AccessDenied(rule string) {
	for _, o := range t {
		o.AccessDenied(rule)
	}
}
