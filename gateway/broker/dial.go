package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/codec"
	"github.com/stompgate/stompgate/gateway/config"
)

// The AMQP side of a session is reached through these two small
// interfaces, so that session tests can script a broker (errors, nacks,
// cancels, stalls) without one. *amqp.Channel satisfies Channel as is;
// amqpConn adapts *amqp.Connection.

// Conn is one AMQP connection, owned by one session.
type Conn interface {
	Channel() (Channel, error)
	NotifyClose(receiver chan *amqp.Error) chan *amqp.Error
	NotifyBlocked(receiver chan amqp.Blocking) chan amqp.Blocking
	// FrameMax is the negotiated frame_max, 0 if unlimited.
	FrameMax() int
	// IsClosed reports whether the connection is closed (by either side,
	// or lost), so a session can tell a dead connection from a closed
	// channel.
	IsClosed() bool
	// ServerProperties are the server properties of connection.start
	// (product, version, capabilities), used to pick a broker profile.
	ServerProperties() amqp.Table
	Close() error
}

// Channel is one AMQP channel: the publisher channel or the channel
// of one subscription. Its synchronous methods are called only from the
// session loop; Ack is also called by the writer goroutine for ack:auto
// deliveries (amqp091-go channels are safe for concurrent use).
type Channel interface {
	Confirm(noWait bool) error
	NotifyPublish(confirm chan amqp.Confirmation) chan amqp.Confirmation
	NotifyClose(c chan *amqp.Error) chan *amqp.Error
	NotifyCancel(c chan string) chan string
	NotifyFlow(c chan bool) chan bool
	QueueDeclare(name string, durable, autoDelete, exclusive, noWait bool, args amqp.Table) (amqp.Queue, error)
	QueueBind(name, key, exchange string, noWait bool, args amqp.Table) error
	QueueDelete(name string, ifUnused, ifEmpty, noWait bool) (int, error)
	Qos(prefetchCount, prefetchSize int, global bool) error
	Consume(queue, consumer string, autoAck, exclusive, noLocal, noWait bool, args amqp.Table) (<-chan amqp.Delivery, error)
	Cancel(consumer string, noWait bool) error
	PublishWithContext(ctx context.Context, exchange, key string, mandatory, immediate bool, msg amqp.Publishing) error
	GetNextPublishSeqNo() uint64
	Ack(tag uint64, multiple bool) error
	Nack(tag uint64, multiple, requeue bool) error
	Reject(tag uint64, requeue bool) error
	Close() error
}

// Login is what a session needs to open its AMQP connection.
type Login struct {
	Login, Passcode string
	VHost           string
	// ConnectionName is advertised as the connection_name client property.
	ConnectionName string
	// Avoid, when it is one of the amqp.url addresses (as BrokerURL
	// reports it), is tried last: a resuming session moves on from the
	// broker it lost.
	Avoid string
}

// BrokerURL is the address (scheme://host:port/) of the broker c is
// connected to, or "" if c does not know it (shared and fake connections
// report their underlying connection's, when they can).
func BrokerURL(c Conn) string {
	if u, ok := c.(interface{ BrokerURL() string }); ok {
		return u.BrokerURL()
	}
	return ""
}

// tryOrder is urls with avoid, if present, moved to the end, so the next
// URL after the lost one is tried first.
func tryOrder(urls []string, avoid string) []string {
	for i, u := range urls {
		if u == avoid {
			order := make([]string, 0, len(urls))
			order = append(order, urls[i+1:]...)
			order = append(order, urls[:i]...)
			return append(order, u)
		}
	}
	return urls
}

// Dialer opens an AMQP connection for one session.
type Dialer func(ctx context.Context, login Login) (Conn, error)

// amqpConn adapts *amqp.Connection to Conn.
type amqpConn struct {
	*amqp.Connection
	wire *coalescingConn // the socket under amqp091-go (under TLS when amqps)
	url  string          // the amqp.url address dialled
	// brokerJ: the broker is Qpid Broker-J, whose channels refuse what
	// would close the whole connection (qpid.go).
	brokerJ bool
}

// BrokerURL is the amqp.url address c was dialled at.
func (c amqpConn) BrokerURL() string { return c.url }

// WriteHolder is implemented by broker connections whose socket writes a
// session loop can hold back across consecutive publishes (coalescingConn).
type WriteHolder interface {
	HoldWrites()
	ReleaseWrites()
	FlushHeld()
}

// WriteHolderOf returns b's WriteHolder, or nil: for a shared
// connection that of its pooled connection.
func WriteHolderOf(b Conn) WriteHolder {
	switch c := b.(type) {
	case WriteHolder:
		return c
	case interface{ WriteHolder() WriteHolder }:
		return c.WriteHolder()
	}
	return nil
}

func (c amqpConn) HoldWrites()    { c.wire.holdWrites() }
func (c amqpConn) ReleaseWrites() { c.wire.releaseWrites() }
func (c amqpConn) FlushHeld()     { c.wire.flushHeld() }

func (c amqpConn) Channel() (Channel, error) {
	ch, err := c.Connection.Channel()
	if err != nil {
		return nil, channelMaxError(err, c.Config.ChannelMax)
	}
	if c.brokerJ {
		return brokerJChannel{ch}, nil
	}
	return ch, nil
}

// ChannelMax is the channel-max negotiated on c's AMQP connection (for a
// shared connection, its pooled connection's), 0 if unknown or unlimited.
// Qpid Broker-J negotiates 256 whatever the client asks.
func ChannelMax(c Conn) int {
	switch c := c.(type) {
	case interface{ ChannelMax() int }:
		return c.ChannelMax()
	case amqpConn:
		return int(c.Config.ChannelMax)
	case *sharedConn:
		return ChannelMax(c.pc.real)
	}
	return 0
}

// channelMaxError turns amqp091-go's local "channel id space exhausted"
// (504, raised before any frame is sent; the connection stays open) into
// an ERROR that names the limit: each subscription and temp queue of a
// session needs a channel of its own, plus one to publish.
func channelMaxError(err error, channelMax uint16) error {
	if !errors.Is(err, amqp.ErrChannelMax) {
		return err
	}
	return &codec.ProtocolError{
		Message: "Too many subscriptions",
		Detail: fmt.Sprintf("The broker allows %d channels per AMQP connection (channel-max) and this one has none left: "+
			"each subscription and temp queue needs one, plus one for sending.\n", channelMax),
	}
}

// Close closes the AMQP connection, waiting at most brokerCloseTimeout for
// the broker's close-ok, so a stalled broker cannot hold a session open.
func (c amqpConn) Close() error {
	return c.CloseDeadline(time.Now().Add(brokerCloseTimeout))
}

const brokerCloseTimeout = 2 * time.Second

func (c amqpConn) ServerProperties() amqp.Table { return c.Properties }

func (c amqpConn) FrameMax() int { return c.Config.FrameSize }

// NewDialer returns the dialer used in production. Only the scheme,
// host and port of cfg.URL are used (semantics 1): credentials come from
// the client's CONNECT and the vhost from its host header.
func NewDialer(cfg config.AMQPConfig, version string) (Dialer, error) {
	urls, err := config.BrokerURLs(cfg.URL)
	if err != nil {
		return nil, err
	}
	tlsConfig, err := config.AMQPTLS(cfg.TLS) // tls.go; nil: amqp091-go's defaults
	if err != nil {
		return nil, err
	}
	dial := func(ctx context.Context, login Login) (Conn, error) {
		var lastErr error
		for _, u := range tryOrder(urls, login.Avoid) {
			conn, err := dialAMQP(ctx, cfg, version, tlsConfig, u, login)
			if err == nil {
				return conn, nil
			}
			lastErr = err
			// A broker that answered and refused decides; only an
			// unreachable one makes us try the next URL.
			if !errors.Is(err, ErrUnreachable) {
				return nil, err
			}
		}
		return nil, lastErr
	}
	if cfg.SharedConnections {
		return NewSharedDialer(dial, cfg.SessionsPerConnection), nil
	}
	return dial, nil
}

func dialAMQP(ctx context.Context, cfg config.AMQPConfig, version string, tlsConfig *tls.Config, brokerURL string, login Login) (Conn, error) {
	deadline := time.Now().Add(cfg.DialTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	timeout := time.Until(deadline)
	var wire *coalescingConn // set by Dial, which DialConfig calls once
	amqpCfg := amqp.Config{
		SASL:      []amqp.Authentication{&amqp.PlainAuth{Username: login.Login, Password: login.Passcode}},
		Vhost:     login.VHost,
		Heartbeat: cfg.Heartbeat,
		Locale:    "en_US",
		Properties: amqp.Table{
			"product":                  "stompgate",
			"version":                  version,
			"connection_name":          login.ConnectionName,
			"qpid.close_when_no_route": false,
			"capabilities":             amqp.Table{"authentication_failure_close": true, "consumer_cancel_notify": true, "connection.blocked": true, "publisher_confirms": true, "basic.nack": true},
		},
		// DefaultDial bounds both the TCP connect and the handshake.
		Dial: func(network, addr string) (net.Conn, error) {
			conn, err := amqp.DefaultDial(timeout)(network, addr)
			if err != nil {
				return nil, err
			}
			wire = newCoalescingConn(conn)
			return closeOnReadErrorConn{wire}, nil
		},
	}
	if tlsConfig != nil && strings.HasPrefix(brokerURL, "amqps://") {
		// amqp091-go writes ServerName into the config it is given, so
		// each dial gets its own copy.
		if u, err := url.Parse(brokerURL); err == nil {
			amqpCfg.TLSClientConfig = config.WithServerName(tlsConfig.Clone(), u.Hostname())
		}
	}
	conn, err := amqp.DialConfig(brokerURL, amqpCfg)
	if err != nil {
		return nil, ClassifyDialError(err)
	}
	return amqpConn{Connection: conn, wire: wire, url: brokerURL, brokerJ: isBrokerJ(conn.Properties)}, nil
}

// Errors of a failed AMQP dial, turned into ERROR frames by the session
// (semantics 2.3).
var (
	// ErrAccessRefused: the broker refused the credentials.
	ErrAccessRefused = errors.New("access refused")
	// ErrVHostRefused: the vhost is unknown or refused to this user.
	ErrVHostRefused = errors.New("vhost access denied")
	// ErrUnreachable: no AMQP handshake could be completed.
	ErrUnreachable = errors.New("broker unreachable")
)

func ClassifyDialError(err error) error {
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) {
		// amqp.ErrVhost has code 403 too: check it before the codes.
		switch {
		// Qpid Broker-J refuses a login with 530 "Authentication failed"
		// (FINDINGS "Login"), the code RabbitMQ uses for a vhost.
		case amqpErr.Code == amqp.NotAllowed && amqpErr.Reason == "Authentication failed":
			return fmt.Errorf("%w: %w", ErrAccessRefused, err)
		case amqpErr == amqp.ErrVhost || amqpErr.Code == amqp.NotAllowed:
			return fmt.Errorf("%w: %w", ErrVHostRefused, err)
		// Qpid Broker-J: 404 "Unknown virtual host: 'x'" (FINDINGS "Vhost").
		case amqpErr.Code == amqp.NotFound && strings.HasPrefix(amqpErr.Reason, "Unknown virtual host"):
			return fmt.Errorf("%w: %w", ErrVHostRefused, err)
		case amqpErr == amqp.ErrCredentials || amqpErr.Code == amqp.AccessRefused:
			return fmt.Errorf("%w: %w", ErrAccessRefused, err)
		}
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, err)
}

// closeOnReadErrorConn closes the socket as soon as a read fails: a missed
// heartbeat (read deadline), EOF or reset. amqp091-go's shutdown takes each
// channel's lock before it closes the socket, while a publish holds that
// lock across its socket write; with a broker that stopped reading (stalled
// link, full socket buffers) that write never returns and the session, and
// Server.Shutdown with it, would hang forever. Closing here fails the write
// at once (issue 4, e2e TestFaultStallFullSocket).
type closeOnReadErrorConn struct{ net.Conn }

func (c closeOnReadErrorConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		_ = c.Conn.Close()
	}
	return n, err
}
