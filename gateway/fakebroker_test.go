package gateway

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stompgate/stompgate/gateway/broker"
)

// fakeBroker is a scripted AMQP side for session tests (style.md practice
// 13). It is the session's broker.Dialer; every connection and channel it
// hands out records the calls made on it, so a test can assert which
// declares, binds, publishes and acks a STOMP frame caused, and push
// broker-side events (deliveries, confirms, closes, cancels, flow control)
// into the session.
//
// The notification semantics mirror amqp091-go v1.16 with recovery off: a
// close by the broker sends the *amqp.Error to NotifyClose listeners, then
// closes every Notify channel (NotifyPublish, NotifyFlow and NotifyCancel
// included) and every consumer's delivery channel; a client Close closes
// them without sending anything.
type fakeBroker struct {
	mu sync.Mutex // guards the fields below
	// dialErr, when set, is returned by dial instead of a connection.
	dialErr error
	// frameMax is what FrameMax reports.
	frameMax int
	// hook, when set, runs at the start of every broker.Channel method
	// that talks to the broker, on the caller's goroutine. A non-nil
	// error is returned by the call; the hook may also panic or block.
	hook func(ch *fakeChannel, method string) error
	// backlog, when set, returns deliveries that are already waiting in
	// the consumer's channel when Consume returns (a queue with messages).
	backlog func(ch *fakeChannel, queue, consumerTag string) []string
	logins  []broker.Login
	conns   []*fakeConn
}

func newFakeBroker() *fakeBroker { return &fakeBroker{frameMax: 131072} }

// dial is the broker.Dialer given to sessions.
func (b *fakeBroker) dial(_ context.Context, login broker.Login) (broker.Conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.logins = append(b.logins, login)
	if b.dialErr != nil {
		return nil, b.dialErr
	}
	c := &fakeConn{broker: b, frameMax: b.frameMax, url: fmt.Sprintf("amqp://broker-%d:5672/", len(b.conns))}
	b.conns = append(b.conns, c)
	return c, nil
}

func (b *fakeBroker) setHook(hook func(ch *fakeChannel, method string) error) {
	b.mu.Lock()
	b.hook = hook
	b.mu.Unlock()
}

func (b *fakeBroker) dialLogins() []broker.Login {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]broker.Login(nil), b.logins...)
}

func (b *fakeBroker) connCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// conn waits for the i-th connection dialled.
func (b *fakeBroker) conn(t *testing.T, i int) *fakeConn {
	t.Helper()
	var c *fakeConn
	eventually(t, fmt.Sprintf("AMQP connection #%d dialled", i), func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.conns) > i {
			c = b.conns[i]
			return true
		}
		return false
	})
	return c
}

// fakeConn is one AMQP connection of a fakeBroker.
type fakeConn struct {
	broker   *fakeBroker
	frameMax int
	url      string // BrokerURL: one address per dial

	mu       sync.Mutex // guards the fields below
	channels []*fakeChannel
	closes   []chan *amqp.Error
	blocks   []chan amqp.Blocking
	closed   bool
}

var _ broker.Conn = (*fakeConn)(nil)

func (c *fakeConn) Channel() (broker.Channel, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, amqp.ErrClosed
	}
	ch := &fakeChannel{conn: c, index: len(c.channels), consumers: map[string]*fakeConsumer{}}
	c.channels = append(c.channels, ch)
	return ch, nil
}

func (c *fakeConn) NotifyClose(receiver chan *amqp.Error) chan *amqp.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		close(receiver)
	} else {
		c.closes = append(c.closes, receiver)
	}
	return receiver
}

func (c *fakeConn) NotifyBlocked(receiver chan amqp.Blocking) chan amqp.Blocking {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		close(receiver)
	} else {
		c.blocks = append(c.blocks, receiver)
	}
	return receiver
}

func (c *fakeConn) FrameMax() int { return c.frameMax }

func (c *fakeConn) IsClosed() bool { return c.isClosed() }

func (c *fakeConn) BrokerURL() string { return c.url }

// ServerProperties: the lead added this method to broker.Conn (broker profiles).
func (c *fakeConn) ServerProperties() amqp.Table { return amqp.Table{"product": "RabbitMQ"} }

// Close is the session closing its AMQP connection.
func (c *fakeConn) Close() error {
	if !c.shutdown(nil) {
		return amqp.ErrClosed
	}
	return nil
}

// closeWithError is the broker closing the connection (connection.close,
// Server true) or the link dying (Server false), as amqp091-go reports it.
func (c *fakeConn) closeWithError(e *amqp.Error) { c.shutdown(e) }

func (c *fakeConn) shutdown(e *amqp.Error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.closed = true
	if e != nil {
		for _, l := range c.closes {
			select {
			case l <- e:
			default:
			}
		}
	}
	for _, ch := range c.channels {
		ch.shutdown(e)
	}
	for _, l := range c.closes {
		close(l)
	}
	for _, l := range c.blocks {
		close(l)
	}
	c.closes, c.blocks = nil, nil
	return true
}

func (c *fakeConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// block sends connection.blocked / connection.unblocked and waits until the
// session took the notification, so that what the test does next happens
// after the session loop saw it.
func (c *fakeConn) block(t *testing.T, active bool) {
	t.Helper()
	c.mu.Lock()
	listeners := append([]chan amqp.Blocking(nil), c.blocks...)
	c.mu.Unlock()
	if len(listeners) == 0 {
		t.Fatal("nobody listens for connection.blocked")
	}
	for _, l := range listeners {
		select {
		case l <- amqp.Blocking{Active: active, Reason: "low on memory"}:
		case <-time.After(waitBound):
			t.Fatal("NotifyBlocked listener is full")
		}
	}
	eventually(t, "the session took the blocked notification", func() bool {
		for _, l := range listeners {
			if len(l) > 0 {
				return false
			}
		}
		return true
	})
}

// channel waits for the i-th channel opened on c (0 is the publisher
// channel, then one per subscription in SUBSCRIBE order).
func (c *fakeConn) channel(t *testing.T, i int) *fakeChannel {
	t.Helper()
	var ch *fakeChannel
	eventually(t, fmt.Sprintf("AMQP channel #%d opened", i), func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.channels) > i {
			ch = c.channels[i]
			return true
		}
		return false
	})
	return ch
}

// publisher waits for the session's publisher channel: the one with a
// NotifyFlow listener (the session watches channel.flow only there).
func (c *fakeConn) publisher(t *testing.T) *fakeChannel {
	t.Helper()
	return c.channelWhere(t, "the publisher channel opened", isPublisher)
}

// openPublisher waits for an open publisher channel: after a nack retry
// (amqp.resume_sessions) the session publishes on a new one.
func (c *fakeConn) openPublisher(t *testing.T) *fakeChannel {
	t.Helper()
	return c.channelWhere(t, "an open publisher channel", func(ch *fakeChannel) bool { return isPublisher(ch) && !ch.closed })
}

// publisherIfOpen is the publisher channel, or nil if the session has not
// opened one (no SEND yet).
func (c *fakeConn) publisherIfOpen() *fakeChannel {
	return c.findChannel(isPublisher)
}

// isPublisher: the session watches channel.flow only on its publisher
// channel.
func isPublisher(ch *fakeChannel) bool { return len(ch.flows) > 0 }

// consumerChannel waits for the channel that consumes with tag.
func (c *fakeConn) consumerChannel(t *testing.T, tag string) *fakeChannel {
	t.Helper()
	return c.channelWhere(t, "a channel consuming as "+tag, func(ch *fakeChannel) bool {
		_, ok := ch.consumers[tag]
		return ok
	})
}

// channelWhere waits for the first channel for which match, called with
// the channel's lock held, is true.
func (c *fakeConn) channelWhere(t *testing.T, what string, match func(*fakeChannel) bool) *fakeChannel {
	t.Helper()
	var found *fakeChannel
	eventually(t, what, func() bool {
		found = c.findChannel(match)
		return found != nil
	})
	return found
}

// findChannel is the first channel for which match, called with the
// channel's lock held, is true, or nil.
func (c *fakeConn) findChannel(match func(*fakeChannel) bool) *fakeChannel {
	c.mu.Lock()
	channels := append([]*fakeChannel(nil), c.channels...)
	c.mu.Unlock()
	for _, ch := range channels {
		ch.mu.Lock()
		ok := match(ch)
		ch.mu.Unlock()
		if ok {
			return ch
		}
	}
	return nil
}

func (c *fakeConn) channelCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.channels)
}

// fakeConsumer is one basic.consume on a fakeChannel.
type fakeConsumer struct {
	queue      string
	deliveries chan amqp.Delivery
}

// fakePublish is one basic.publish.
type fakePublish struct {
	Seq      uint64
	Exchange string
	Key      string
	Msg      amqp.Publishing
}

// fakeChannel is one AMQP channel of a fakeConn.
type fakeChannel struct {
	conn  *fakeConn
	index int

	mu          sync.Mutex // guards the fields below
	calls       []string
	published   []fakePublish
	confirmMode bool
	nextSeq     uint64 // next publish sequence number - 1
	nextTag     uint64 // last delivery tag handed out
	confirms    []chan amqp.Confirmation
	closes      []chan *amqp.Error
	cancels     []chan string
	flows       []chan bool
	consumers   map[string]*fakeConsumer
	closed      bool
	closeErr    *amqp.Error // the broker's reason, if it closed the channel
}

var _ broker.Channel = (*fakeChannel)(nil)

// call records a method call and runs the broker's hook.
func (ch *fakeChannel) call(method, format string, args ...any) error {
	ch.conn.broker.mu.Lock()
	hook := ch.conn.broker.hook
	ch.conn.broker.mu.Unlock()
	ch.mu.Lock()
	ch.calls = append(ch.calls, strings.TrimSpace(method+" "+fmt.Sprintf(format, args...)))
	closedBefore := ch.closed
	ch.mu.Unlock()
	if hook != nil {
		if err := hook(ch, method); err != nil {
			return err
		}
	}
	if closedBefore {
		return amqp.ErrClosed
	}
	ch.mu.Lock()
	closedDuring, closeErr := ch.closed, ch.closeErr
	ch.mu.Unlock()
	if closedDuring && !asyncMethods[method] {
		// amqp091-go hands the close error to a synchronous call in
		// flight; an asynchronous one (publish, ack) was already sent.
		if closeErr != nil {
			return closeErr
		}
		return amqp.ErrClosed
	}
	return nil
}

// asyncMethods are the broker.Channel methods that do not wait for a reply.
var asyncMethods = map[string]bool{"Publish": true, "Ack": true, "Nack": true, "Reject": true}

func (ch *fakeChannel) Confirm(noWait bool) error {
	if err := ch.call("Confirm", "noWait=%t", noWait); err != nil {
		return err
	}
	ch.mu.Lock()
	ch.confirmMode = true
	ch.mu.Unlock()
	return nil
}

func (ch *fakeChannel) NotifyPublish(l chan amqp.Confirmation) chan amqp.Confirmation {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		close(l)
	} else {
		ch.confirms = append(ch.confirms, l)
	}
	return l
}

func (ch *fakeChannel) NotifyClose(l chan *amqp.Error) chan *amqp.Error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		close(l)
	} else {
		ch.closes = append(ch.closes, l)
	}
	return l
}

func (ch *fakeChannel) NotifyCancel(l chan string) chan string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		close(l)
	} else {
		ch.cancels = append(ch.cancels, l)
	}
	return l
}

func (ch *fakeChannel) NotifyFlow(l chan bool) chan bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		close(l)
	} else {
		ch.flows = append(ch.flows, l)
	}
	return l
}

func (ch *fakeChannel) QueueDeclare(name string, durable, autoDelete, exclusive, noWait bool, args amqp.Table) (amqp.Queue, error) {
	if err := ch.call("QueueDeclare", "%s durable=%t autoDelete=%t exclusive=%t noWait=%t args=%v", name, durable, autoDelete, exclusive, noWait, args); err != nil {
		return amqp.Queue{}, err
	}
	if name == "" {
		name = fmt.Sprintf("amq.gen-%d-%d", ch.conn.broker.connCount(), ch.index)
	}
	return amqp.Queue{Name: name}, nil
}

func (ch *fakeChannel) QueueBind(name, key, exchange string, noWait bool, args amqp.Table) error {
	return ch.call("QueueBind", "%s key=%s exchange=%s noWait=%t args=%v", name, key, exchange, noWait, args)
}

func (ch *fakeChannel) QueueDelete(name string, ifUnused, ifEmpty, noWait bool) (int, error) {
	return 0, ch.call("QueueDelete", "%s ifUnused=%t ifEmpty=%t noWait=%t", name, ifUnused, ifEmpty, noWait)
}

func (ch *fakeChannel) Qos(prefetchCount, prefetchSize int, global bool) error {
	return ch.call("Qos", "%d %d global=%t", prefetchCount, prefetchSize, global)
}

func (ch *fakeChannel) Consume(queue, consumer string, autoAck, exclusive, noLocal, noWait bool, args amqp.Table) (<-chan amqp.Delivery, error) {
	if err := ch.call("Consume", "%s tag=%s autoAck=%t exclusive=%t noLocal=%t noWait=%t args=%v", queue, consumer, autoAck, exclusive, noLocal, noWait, args); err != nil {
		return nil, err
	}
	c := &fakeConsumer{queue: queue, deliveries: make(chan amqp.Delivery, fakeDeliveryBuffer)}
	ch.conn.broker.mu.Lock()
	backlog := ch.conn.broker.backlog
	ch.conn.broker.mu.Unlock()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.consumers[consumer] = c
	if backlog != nil {
		for _, body := range backlog(ch, queue, consumer) {
			ch.nextTag++
			c.deliveries <- amqp.Delivery{ConsumerTag: consumer, DeliveryTag: ch.nextTag, RoutingKey: queue, Body: []byte(body)}
		}
	}
	return c.deliveries, nil
}

// fakeDeliveryBuffer is the room in a fake consumer's delivery channel,
// standing in for amqp091-go's unbounded consumer buffer.
const fakeDeliveryBuffer = 4096

func (ch *fakeChannel) Cancel(consumer string, noWait bool) error {
	if err := ch.call("Cancel", "%s noWait=%t", consumer, noWait); err != nil {
		return err
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if c, ok := ch.consumers[consumer]; ok {
		delete(ch.consumers, consumer)
		close(c.deliveries)
	}
	return nil
}

func (ch *fakeChannel) PublishWithContext(_ context.Context, exchange, key string, mandatory, immediate bool, msg amqp.Publishing) error {
	if err := ch.call("Publish", "exchange=%s key=%s mandatory=%t immediate=%t body=%q", exchange, key, mandatory, immediate, msg.Body); err != nil {
		return err
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	// amqp091-go has written the body when Publish returns and keeps
	// nothing (the gateway may reuse the buffer: bodypool.go), so the fake
	// keeps a copy.
	msg.Body = bytes.Clone(msg.Body)
	p := fakePublish{Exchange: exchange, Key: key, Msg: msg}
	if ch.confirmMode {
		ch.nextSeq++
		p.Seq = ch.nextSeq
	}
	ch.published = append(ch.published, p)
	return nil
}

func (ch *fakeChannel) GetNextPublishSeqNo() uint64 {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.nextSeq + 1
}

func (ch *fakeChannel) Ack(tag uint64, multiple bool) error {
	return ch.call("Ack", "%d multiple=%t", tag, multiple)
}

func (ch *fakeChannel) Nack(tag uint64, multiple, requeue bool) error {
	return ch.call("Nack", "%d multiple=%t requeue=%t", tag, multiple, requeue)
}

func (ch *fakeChannel) Reject(tag uint64, requeue bool) error {
	return ch.call("Reject", "%d requeue=%t", tag, requeue)
}

// Close is the session closing the channel (channel.close from the client).
func (ch *fakeChannel) Close() error {
	if err := ch.call("Close", ""); err != nil {
		return err
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.shutdownLocked(nil)
	return nil
}

// closeWithError is the broker closing the channel (channel.close with a
// reply code; Server true), e.g. a 404 after a publish to a missing exchange.
func (ch *fakeChannel) closeWithError(e *amqp.Error) { ch.shutdown(e) }

func (ch *fakeChannel) shutdown(e *amqp.Error) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.shutdownLocked(e)
}

func (ch *fakeChannel) shutdownLocked(e *amqp.Error) {
	if ch.closed {
		return
	}
	ch.closed = true
	ch.closeErr = e
	if e != nil {
		for _, l := range ch.closes {
			select {
			case l <- e:
			default:
			}
		}
	}
	for tag, c := range ch.consumers {
		close(c.deliveries)
		delete(ch.consumers, tag)
	}
	for _, l := range ch.closes {
		close(l)
	}
	for _, l := range ch.flows {
		close(l)
	}
	for _, l := range ch.cancels {
		close(l)
	}
	for _, l := range ch.confirms {
		close(l)
	}
	ch.closes, ch.flows, ch.cancels, ch.confirms = nil, nil, nil, nil
}

func (ch *fakeChannel) isClosed() bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.closed
}

// callLog returns the calls recorded so far.
func (ch *fakeChannel) callLog() []string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return append([]string(nil), ch.calls...)
}

// callsOf returns the recorded calls of one method.
func (ch *fakeChannel) callsOf(method string) []string {
	var out []string
	for _, c := range ch.callLog() {
		if c == method || strings.HasPrefix(c, method+" ") {
			out = append(out, c)
		}
	}
	return out
}

// waitCall waits until call has been recorded.
func (ch *fakeChannel) waitCall(t *testing.T, call string) {
	t.Helper()
	eventually(t, fmt.Sprintf("call %q on channel #%d", call, ch.index), func() bool {
		for _, c := range ch.callLog() {
			if c == call {
				return true
			}
		}
		return false
	}, ch.callLog)
}

// publishes returns the publishes so far.
func (ch *fakeChannel) publishes() []fakePublish {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return append([]fakePublish(nil), ch.published...)
}

// waitPublishes waits until n messages have been published.
func (ch *fakeChannel) waitPublishes(t *testing.T, n int) []fakePublish {
	t.Helper()
	eventually(t, fmt.Sprintf("%d publishes", n), func() bool { return len(ch.publishes()) >= n }, ch.callLog)
	return ch.publishes()
}

// confirm sends a publisher confirm (basic.ack or basic.nack) for seq and
// waits until the session took it.
func (ch *fakeChannel) confirm(t *testing.T, seq uint64, ack bool) {
	t.Helper()
	ch.mu.Lock()
	listeners := append([]chan amqp.Confirmation(nil), ch.confirms...)
	for _, l := range listeners {
		select {
		case l <- amqp.Confirmation{DeliveryTag: seq, Ack: ack}:
		default:
			ch.mu.Unlock()
			t.Fatalf("NotifyPublish listener of channel #%d is full", ch.index)
		}
	}
	ch.mu.Unlock()
	if len(listeners) == 0 {
		t.Fatalf("nobody listens for confirms on channel #%d", ch.index)
	}
	eventually(t, fmt.Sprintf("the session took confirm %d", seq), func() bool {
		for _, l := range listeners {
			if len(l) > 0 {
				return false
			}
		}
		return true
	})
}

// flow sends channel.flow(active) and waits until the session took it.
func (ch *fakeChannel) flow(t *testing.T, active bool) {
	t.Helper()
	ch.mu.Lock()
	listeners := append([]chan bool(nil), ch.flows...)
	for _, l := range listeners {
		l <- active
	}
	ch.mu.Unlock()
	eventually(t, "the session took channel.flow", func() bool {
		for _, l := range listeners {
			if len(l) > 0 {
				return false
			}
		}
		return true
	})
}

// deliver pushes one delivery to the consumer consumerTag and returns its
// delivery tag. Exchange "" and routing key = the consumed queue, as for a
// message published to a queue.
func (ch *fakeChannel) deliver(t *testing.T, consumerTag, body string) uint64 {
	t.Helper()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	c, ok := ch.consumers[consumerTag]
	if !ok {
		t.Fatalf("no consumer %q on channel #%d", consumerTag, ch.index)
	}
	ch.nextTag++
	d := amqp.Delivery{ConsumerTag: consumerTag, DeliveryTag: ch.nextTag, RoutingKey: c.queue, Body: []byte(body)}
	select {
	case c.deliveries <- d:
	default:
		t.Fatalf("delivery buffer of %q is full", consumerTag)
	}
	return d.DeliveryTag
}

// pendingDeliveries is how many deliveries the session has not taken yet.
func (ch *fakeChannel) pendingDeliveries(consumerTag string) int {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if c, ok := ch.consumers[consumerTag]; ok {
		return len(c.deliveries)
	}
	return 0
}

// serverCancel is a basic.cancel from the broker (queue deleted): as in
// amqp091-go, NotifyCancel listeners get the tag, then the consumer's
// delivery channel closes.
func (ch *fakeChannel) serverCancel(consumerTag string) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for _, l := range ch.cancels {
		select {
		case l <- consumerTag:
		default:
		}
	}
	if c, ok := ch.consumers[consumerTag]; ok {
		delete(ch.consumers, consumerTag)
		close(c.deliveries)
	}
}
