package broker

import (
	"net"
	"sync"
)

// Pooled write chunks: pending is a chunk of one of chunkSizes bytes taken
// from that size's pool when a write has to wait, grown by moving to the
// next size, and returned once written. A connection therefore holds no
// buffer while nothing waits, and in steady state nothing is allocated per
// write (BenchmarkCoalescingConn). sync.Pool drops chunks nobody used over
// two garbage collections.
var chunkSizes = [...]int{4 << 10, 16 << 10, 64 << 10, 256 << 10, coalesceLimit + 256<<10}

var chunkPools [len(chunkSizes)]sync.Pool

// getChunk returns an empty chunk with room for n bytes; nil for n == 0.
func getChunk(n int) *[]byte {
	for i, size := range chunkSizes {
		if n <= size {
			if b, ok := chunkPools[i].Get().(*[]byte); ok {
				return b
			}
			b := make([]byte, 0, size)
			return &b
		}
	}
	b := make([]byte, 0, n) // larger than any write amqp091-go makes
	return &b
}

// putChunk returns a written chunk to its pool.
func putChunk(b *[]byte) {
	if b == nil {
		return
	}
	for i, size := range chunkSizes {
		if cap(*b) == size {
			*b = (*b)[:0]
			chunkPools[i].Put(b)
			return
		}
	}
}

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
// Large writes are not copied: a write that finds held bytes and no write
// in flight sends both with one writev (net.Buffers), the held bytes first.
// Only writes that find a write in flight are copied into pending.
//
// Concurrency: Write is called by amqp091-go (under its send lock) from the
// session loop, the writer (acks) and the heartbeater; mu orders them and
// writing makes sure one goroutine at a time writes to the socket.
type coalescingConn struct {
	net.Conn

	mu        sync.Mutex
	cond      *sync.Cond  // signalled when data arrives, a write ends, or the conn ends
	pending   []byte      // *chunk's bytes; nil when chunk is nil
	chunk     *[]byte     // the pooled chunk behind pending
	iov       [2][]byte   // writePending's writev: held bytes and the write
	iovs      net.Buffers // over iov
	writing   bool        // a goroutine is writing to the socket; it alone uses iov
	holds     int         // publishes in progress between holdWrites and releaseWrites
	lingering bool        // pending holds held writes that only flushHeld or a later write sends
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
		c.appendPending(p)
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
	if !c.writing {
		// Held bytes and no write in flight: they and p go in one writev,
		// without copying p.
		err := c.writePending(p)
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	c.appendPending(p)
	c.cond.Broadcast()
	return len(p), nil
}

// appendPending copies p into pending, moving to a larger pooled chunk if
// it does not fit. Called with mu held.
func (c *coalescingConn) appendPending(p []byte) {
	if len(c.pending)+len(p) > cap(c.pending) {
		next := getChunk(len(c.pending) + len(p))
		*next = append(*next, c.pending...)
		putChunk(c.chunk)
		c.chunk, c.pending = next, *next
	}
	c.pending = append(c.pending, p...)
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
		if err := c.writePending(nil); err != nil {
			return
		}
	}
}

// writePending writes all of pending, then tail if any, with one syscall
// (writev for both), unlocking mu meanwhile; pending's chunk goes back to
// its pool. Called with mu held and no write in flight.
func (c *coalescingConn) writePending(tail []byte) error {
	batch, chunk := c.pending, c.chunk
	c.pending, c.chunk = nil, nil
	c.writing = true
	c.mu.Unlock()
	var err error
	if len(tail) == 0 {
		_, err = c.Conn.Write(batch)
	} else {
		c.iov = [2][]byte{batch, tail}
		c.iovs = c.iov[:] // WriteTo consumes its receiver
		_, err = c.iovs.WriteTo(c.Conn)
		c.iov = [2][]byte{}
	}
	c.mu.Lock()
	c.writing = false
	putChunk(chunk)
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
	_ = c.writePending(nil) // an error is sticky in c.err
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
