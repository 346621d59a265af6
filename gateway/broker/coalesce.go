package broker

import (
	"net"
	"sync"
)

// coalescingConn batches the writes amqp091-go makes to its socket.
// amqp091-go flushes after every publish and every ack (one syscall each).
// Here the first writer writes directly; writes that arrive while a write
// is in flight are appended to a buffer, which the flusher goroutine then
// writes with one syscall ("group commit"). An isolated write costs what it
// did before; a burst of publishes and acks costs a few syscalls.
//
// Bound and policy: at most coalesceLimit bytes wait; a Write beyond that
// blocks until the flusher has written, so a broker that stops reading (an
// alarm, a stalled link) pushes back exactly as an unbuffered socket would.
// A write error is sticky: every later Write returns it and the socket is
// closed, which also ends amqp091-go's reader.
//
// Held writes: a session loop that has more client frames waiting brackets
// its publish with holdWrites/releaseWrites; the publish's bytes are then
// appended to pending without a syscall ("lingering"), so consecutive SENDs
// share one write. The loop calls flushHeld before it waits for anything
// (session.flushBrokerWrites), so lingering bytes never wait for an event
// that needs them; any write made outside a hold, and heldLimit bytes,
// flush them too.
//
// Concurrency: Write is called by amqp091-go (under its send lock) from the
// session loop, the writer (acks) and the heartbeater; mu orders them and
// writing makes sure one goroutine at a time writes to the socket.
type coalescingConn struct {
	net.Conn

	mu        sync.Mutex
	cond      *sync.Cond // signalled when data arrives, a write ends, or the conn ends
	pending   []byte
	spare     []byte
	writing   bool // a goroutine is writing to the socket
	holds     int  // publishes in progress between holdWrites and releaseWrites
	lingering bool // pending holds held writes that only flushHeld or a later write sends
	err       error
	closed    bool
}

// coalesceLimit bounds the bytes waiting for the flusher.
const coalesceLimit = 256 << 10

// heldLimit bounds the bytes held back by holdWrites; beyond it they are
// written as if not held.
const heldLimit = 32 << 10

func newCoalescingConn(conn net.Conn) *coalescingConn {
	c := &coalescingConn{Conn: conn}
	c.cond = sync.NewCond(&c.mu)
	go c.flush()
	return c
}

func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.pending) >= coalesceLimit && c.err == nil && !c.closed {
		c.cond.Wait()
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.closed {
		return 0, net.ErrClosed
	}
	if c.holds > 0 && len(c.pending)+len(p) <= heldLimit && (c.lingering || len(c.pending) == 0) {
		// Held: the holder's flushHeld (or the next write) sends it.
		c.pending = append(c.pending, p...)
		c.lingering = true
		return len(p), nil
	}
	c.lingering = false
	if !c.writing && len(c.pending) == 0 {
		// Nothing in flight: write directly, without a copy or a hand-off.
		c.writing = true
		c.mu.Unlock()
		n, err := c.Conn.Write(p)
		c.mu.Lock()
		c.writing = false
		c.cond.Broadcast() // the flusher may take what queued meanwhile
		if err != nil {
			c.fail(err)
		}
		return n, err
	}
	c.pending = append(c.pending, p...)
	c.cond.Broadcast()
	return len(p), nil
}

// fail records a write error and closes the socket. Called with mu held.
func (c *coalescingConn) fail(err error) {
	if c.err == nil {
		c.err = err
		_ = c.Conn.Close()
	}
	c.cond.Broadcast()
}

// flush is the flusher goroutine: it writes what queued behind a write in
// flight, one syscall per batch, until the connection is closed or fails.
func (c *coalescingConn) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for (len(c.pending) == 0 || c.writing || c.lingering) && !c.closed && c.err == nil {
			c.cond.Wait()
		}
		if c.err != nil || len(c.pending) == 0 {
			return // failed, or closed and drained
		}
		if c.writing {
			c.cond.Wait() // closed while a direct write is in flight
			continue
		}
		if err := c.writePending(); err != nil {
			return
		}
	}
}

// writePending writes all of pending with one syscall, unlocking mu
// meanwhile; pending's array becomes the next spare. Called with mu held
// and no write in flight.
func (c *coalescingConn) writePending() error {
	batch := c.pending
	c.pending = c.spare[:0] // the old spare's array; batch becomes the next spare
	c.spare = nil
	c.writing = true
	c.mu.Unlock()
	_, err := c.Conn.Write(batch)
	c.mu.Lock()
	c.writing = false
	if cap(batch) <= coalesceLimit {
		c.spare = batch
	}
	c.cond.Broadcast()
	if err != nil {
		c.fail(err)
	}
	return err
}

// holdWrites starts a hold: until releaseWrites, writes are held back (up
// to heldLimit bytes). Called by the session loop around a publish.
func (c *coalescingConn) holdWrites() {
	c.mu.Lock()
	c.holds++
	c.mu.Unlock()
}

// releaseWrites ends a hold; what it held lingers until flushHeld or the
// next write outside a hold.
func (c *coalescingConn) releaseWrites() {
	c.mu.Lock()
	c.holds--
	c.mu.Unlock()
}

// flushHeld writes lingering bytes now: directly, on the caller's
// goroutine, when no write is in flight (as an unheld write would have),
// else through the flusher.
func (c *coalescingConn) flushHeld() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.lingering {
		return
	}
	c.lingering = false
	if c.writing || c.err != nil || c.closed {
		c.cond.Broadcast()
		return
	}
	_ = c.writePending() // an error is sticky in c.err
}

// Close closes the socket at once, failing a write in flight, and ends the
// flusher. Nothing is lost by not draining: amqp091-go closes after its
// connection.close / close-ok exchange, which its reader saw completed, and
// it also closes on a read error (closeOnReadErrorConn), when a stalled
// write must not be waited for.
func (c *coalescingConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	return c.Conn.Close()
}
