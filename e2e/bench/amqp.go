package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// system is one path through the broker: direct AMQP, stompgate or the
// rabbitmq_stomp plugin.
type system interface {
	Name() string
	// NewProducer connects one producer session that publishes to queue.
	NewProducer(queue string, sc scenario) (producer, error)
	// NewConsumer connects one consumer session and subscribes it to queue;
	// it returns once the subscription is active. handle runs for every
	// message, on the consumer's one delivery goroutine; body is only valid
	// during the call.
	NewConsumer(queue string, sc scenario, handle func(body []byte)) (consumer, error)
	// OpenIdle opens one session with one subscription to queue and leaves
	// it idle, with no client goroutine where the client allows it.
	OpenIdle(queue string) (io.Closer, error)
}

// producer publishes. Send may block: for flow control, or in the
// persistent scenario until fewer than receiptWindow publishes await their
// confirm or RECEIPT. Send may keep body only until it returns.
type producer interface {
	Send(body []byte) error
	// Close waits for outstanding confirms or receipts and disconnects.
	Close() error
}

// consumer receives until Close.
type consumer interface {
	// Err is the first error the delivery goroutine saw, or nil.
	Err() error
	Close() error
}

// receiptWindow is the number of persistent publishes in flight (issue 6)
// unless a scenario sets InFlight.
const receiptWindow = 64

// prefetch bounds unacknowledged deliveries per consumer in every system
// that acks (stompgate's default, flow.default_prefetch).
const prefetch = 1000

// amqpSystem is the baseline: amqp091-go straight to the broker.
//
// With sameWork ("AMQP+ca") it asks the broker for the work stompgate asks
// for on transient traffic: publisher confirms on every publish (semantics
// 1; not waited for, as for a SEND without receipt) and consumer acks with
// no_ack=false, prefetch 1000 and multiple=true every 64 deliveries or
// when no delivery is waiting (semantics 10.3 ack:auto). It separates the
// broker's cost of those guarantees from the gateway's own cost.
type amqpSystem struct {
	url      string
	sameWork bool
}

func (a amqpSystem) Name() string {
	if a.sameWork {
		return "AMQP+ca"
	}
	return "AMQP"
}

// sameWorkAckEvery is how many deliveries one multiple=true ack covers at
// most, as stompgate's autoAckBatch.
const sameWorkAckEvery = 64

type amqpProducer struct {
	conn       *amqp.Connection
	ch         *amqp.Channel
	queue      string
	persistent bool
	inFlight   []*amqp.DeferredConfirmation // FIFO, at most window
	window     int                          // scenario.inFlight
}

// dialChannel opens a connection and one channel on it.
func dialChannel(url string) (*amqp.Connection, *amqp.Channel, error) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return nil, nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, ch, nil
}

// dialConsumer opens a connection and consumes queue on one channel: with
// no_ack=true if autoAck, else acked with prefetch. The connection is
// closed on an error.
func dialConsumer(url, queue string, autoAck bool) (*amqp.Connection, <-chan amqp.Delivery, error) {
	conn, ch, err := dialChannel(url)
	if err != nil {
		return nil, nil, err
	}
	if !autoAck {
		if err := ch.Qos(prefetch, 0, false); err != nil {
			_ = conn.Close()
			return nil, nil, err
		}
	}
	deliveries, err := ch.Consume(queue, "", autoAck, false, false, false, nil)
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, deliveries, nil
}

func (a amqpSystem) NewProducer(queue string, sc scenario) (producer, error) {
	conn, ch, err := dialChannel(a.url)
	if err != nil {
		return nil, err
	}
	p := &amqpProducer{conn: conn, ch: ch, queue: queue, persistent: sc.Persistent, window: sc.inFlight()}
	if sc.Persistent || a.sameWork {
		if err := ch.Confirm(false); err != nil {
			_ = conn.Close()
			return nil, err
		}
	}
	if a.sameWork && !sc.Persistent {
		// Confirms are taken and dropped, as stompgate's loop takes them.
		confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1024))
		go func() {
			for range confirms {
			}
		}()
	}
	return p, nil
}

func (p *amqpProducer) Send(body []byte) error {
	msg := amqp.Publishing{Body: body, DeliveryMode: amqp.Transient}
	if !p.persistent {
		return p.ch.PublishWithContext(context.Background(), "", p.queue, false, false, msg)
	}
	msg.DeliveryMode = amqp.Persistent
	if len(p.inFlight) == p.window {
		if !p.inFlight[0].Wait() {
			return errors.New("broker nacked a publish")
		}
		p.inFlight = p.inFlight[1:]
	}
	dc, err := p.ch.PublishWithDeferredConfirmWithContext(context.Background(), "", p.queue, false, false, msg)
	if err != nil {
		return err
	}
	p.inFlight = append(p.inFlight, dc)
	return nil
}

func (p *amqpProducer) Close() error {
	var err error
	for _, dc := range p.inFlight {
		if !dc.Wait() && err == nil {
			err = errors.New("broker nacked a publish")
		}
	}
	p.inFlight = nil
	return errors.Join(err, p.conn.Close())
}

type amqpConsumer struct {
	conn *amqp.Connection
	done chan struct{}
	mu   sync.Mutex
	err  error
}

func (a amqpSystem) NewConsumer(queue string, sc scenario, handle func([]byte)) (consumer, error) {
	autoAck := !sc.Persistent && !a.sameWork
	conn, deliveries, err := dialConsumer(a.url, queue, autoAck)
	if err != nil {
		return nil, err
	}
	c := &amqpConsumer{conn: conn, done: make(chan struct{})}
	batched := a.sameWork && !sc.Persistent
	go func() {
		defer close(c.done)
		unacked := 0
		for d := range deliveries {
			handle(d.Body)
			switch {
			case autoAck:
			case batched:
				if unacked++; unacked >= sameWorkAckEvery || len(deliveries) == 0 {
					if err := d.Ack(true); err != nil {
						c.setErr(err)
						return
					}
					unacked = 0
				}
			default:
				if err := d.Ack(false); err != nil {
					c.setErr(err)
					return
				}
			}
		}
	}()
	return c, nil
}

func (c *amqpConsumer) setErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
}

func (c *amqpConsumer) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *amqpConsumer) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}

// amqpIdle is one idle AMQP session: connection, channel and consumer.
type amqpIdle struct{ conn *amqp.Connection }

func (i amqpIdle) Close() error { return i.conn.Close() }

func (a amqpSystem) OpenIdle(queue string) (io.Closer, error) {
	conn, deliveries, err := dialConsumer(a.url, queue, false)
	if err != nil {
		return nil, err
	}
	go func() {
		for range deliveries { // nothing is published to an idle queue
		}
	}()
	return amqpIdle{conn}, nil
}

// admin declares and deletes the benchmark's queues over its own connection.
type admin struct {
	conn *amqp.Connection
	ch   *amqp.Channel
}

func newAdmin(url string) (*admin, error) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return nil, fmt.Errorf("RabbitMQ at %s: %w (start it with `make broker`)", url, err)
	}
	ch, err := conn.Channel()
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return &admin{conn: conn, ch: ch}, nil
}

// declare creates queue exactly as a STOMP SUBSCRIBE or SEND to
// /queue/<name> does (semantics 5.3: durable, not exclusive, not
// auto-delete, no arguments), so the gateway's and the plugin's own
// declares are equivalent and every system uses the same kind of queue.
func (a *admin) declare(queue string) error {
	_, err := a.ch.QueueDeclare(queue, true, false, false, false, nil)
	return err
}

func (a *admin) delete(queue string) error {
	_, err := a.ch.QueueDelete(queue, false, false, false)
	return err
}

func (a *admin) close() error { return a.conn.Close() }
