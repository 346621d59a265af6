package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// waitBound bounds every wait for something that should happen; the tests
// never sleep to synchronise, they poll or read with this deadline.
const waitBound = 3 * time.Second

// quietPeriod is how long a test waits for something that must not happen.
const quietPeriod = 60 * time.Millisecond

// eventually polls cond every millisecond for at most waitBound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitBound, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// poolBroker is the scripted broker of the pool tests: it records logins
// and hands out poolConns. The session tests in package gateway have a
// fuller fake (channels, deliveries, confirms); the pool needs only
// connections that can be closed, blocked and asked for a channel.
type poolBroker struct {
	mu      sync.Mutex // guards the fields below
	dialErr error
	logins  []Login
	conns   []*poolConn
}

func newPoolBroker() *poolBroker { return &poolBroker{} }

func (b *poolBroker) dial(_ context.Context, login Login) (Conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.logins = append(b.logins, login)
	if b.dialErr != nil {
		return nil, b.dialErr
	}
	c := &poolConn{}
	b.conns = append(b.conns, c)
	return c, nil
}

func (b *poolBroker) dialLogins() []Login {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Login(nil), b.logins...)
}

func (b *poolBroker) connCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

func (b *poolBroker) conn(t *testing.T, i int) *poolConn {
	t.Helper()
	var c *poolConn
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

// poolConn is one fake AMQP connection.
type poolConn struct {
	mu     sync.Mutex // guards the fields below
	closes []chan *amqp.Error
	blocks []chan amqp.Blocking
	closed bool
}

var _ Conn = (*poolConn)(nil)

func (c *poolConn) Channel() (Channel, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, amqp.ErrClosed
	}
	return &poolChannel{}, nil
}

func (c *poolConn) NotifyClose(receiver chan *amqp.Error) chan *amqp.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		close(receiver)
	} else {
		c.closes = append(c.closes, receiver)
	}
	return receiver
}

func (c *poolConn) NotifyBlocked(receiver chan amqp.Blocking) chan amqp.Blocking {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		close(receiver)
	} else {
		c.blocks = append(c.blocks, receiver)
	}
	return receiver
}

func (c *poolConn) FrameMax() int                { return 131072 }
func (c *poolConn) IsClosed() bool               { return c.isClosed() }
func (c *poolConn) ServerProperties() amqp.Table { return amqp.Table{"product": "RabbitMQ"} }

func (c *poolConn) Close() error {
	if !c.shutdown(nil) {
		return amqp.ErrClosed
	}
	return nil
}

func (c *poolConn) closeWithError(e *amqp.Error) { c.shutdown(e) }

// shutdown closes c like amqp091-go: e (if any) goes to every NotifyClose
// listener, then all listeners are closed.
func (c *poolConn) shutdown(e *amqp.Error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.closed = true
	for _, l := range c.closes {
		if e != nil {
			l <- e
		}
		close(l)
	}
	for _, l := range c.blocks {
		close(l)
	}
	return true
}

func (c *poolConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// block sends connection.blocked (active) or unblocked to every listener.
func (c *poolConn) block(t *testing.T, active bool) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.blocks {
		select {
		case l <- amqp.Blocking{Active: active, Reason: "low memory"}:
		case <-time.After(waitBound):
			t.Fatal("a NotifyBlocked listener was not drained")
		}
	}
}

// poolChannel is a channel that can only be closed; the pool tests call
// nothing else on it (the embedded nil Channel panics if they did).
type poolChannel struct {
	Channel
	mu     sync.Mutex
	closed bool
}

func (ch *poolChannel) Close() error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		return amqp.ErrClosed
	}
	ch.closed = true
	return nil
}

func (ch *poolChannel) isClosed() bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.closed
}
