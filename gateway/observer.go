package gateway

import "time"

// Observer receives session events, for metrics. Implementations must be
// cheap and safe for concurrent use: sessions call them from their own
// goroutines (session loop, writer) without locks of their own.
type Observer interface {
	// SessionOpened: a connection was accepted on transport ("tcp",
	// "tls", "ws", "wss").
	SessionOpened(transport string)
	// SessionClosed: the connection ended, for reason.
	SessionClosed(transport string, reason CloseReason)
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
}

// nopObserver is the Observer used when none is configured.
type nopObserver struct{}

func (nopObserver) SessionOpened(string)              {}
func (nopObserver) SessionClosed(string, CloseReason) {}
func (nopObserver) FrameIn(string)                    {}
func (nopObserver) FrameOut(string)                   {}
func (nopObserver) ErrorSent(string)                  {}
func (nopObserver) Published()                        {}
func (nopObserver) Delivered()                        {}
func (nopObserver) ReceiptLatency(time.Duration)      {}
func (nopObserver) BrokerConnection(string)           {}
func (nopObserver) BrokerProfile(string)              {}
