package gateway

import (
	"errors"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/stompgate/stompgate/gateway/broker"
	"github.com/stompgate/stompgate/gateway/codec"
)

// autoAck is an ack:auto delivery whose MESSAGE is in the outbound buffer:
// once the writer has written it to the socket, it acknowledges the
// delivery on its subscription's channel (semantics 10.3).
type autoAck struct {
	ch  broker.Channel
	tag uint64
	// deferrable: the subscription's prefetch is large enough that its
	// acks may be coalesced for up to autoAckDelay (semantics 10.3:
	// "batched with multiple=true where possible").
	deferrable bool
}

// Coalescing of ack:auto acknowledgements: written deliveries are acked at
// once when autoAckBatch of them have accumulated, else autoAckDelay after
// the first. Subscriptions with a prefetch below autoAckMinPrefetch are
// acked at once, so a small prefetch never waits on the timer.
const (
	autoAckBatch       = 64
	autoAckDelay       = 2 * time.Millisecond
	autoAckMinPrefetch = 4 * autoAckBatch
)

// outbound is a session's writer queue: encoded frames waiting for the
// writer goroutine. The session loop appends (append*), the writer takes
// everything at once (take) and writes it with one syscall, so writes are
// batched and flushed when the writer is idle rather than per frame.
//
// Bound and policy (semantics 13): the queue is capped at limit bytes. An
// append never fails, so that control frames (RECEIPT, ERROR) always fit
// and one frame of any size fits an empty queue; instead the session loop
// checks full() and takes no deliveries while it is full, so they stay
// unacked at the broker and prefetch stops the flow.
type outbound struct {
	limit int64
	// zeroCopy: bodies of zeroCopyMinBody bytes or more are not copied into
	// pending but written from the delivery's own buffer (writev). Set
	// before the writer starts, for byte-stream connections only.
	zeroCopy bool

	mu       sync.Mutex // guards the fields below
	pending  []byte
	ends     []int     // offset in pending after each frame, for messageWriter
	refs     []bodyRef // zero-copy bodies, by their place in pending
	refBytes int64     // bytes in refs
	acks     []autoAck
	closed   bool // set by finish: the writer exits once pending is written
	// taken counts the batches the writer took, written those it has
	// written (or given up on); barriers wait for a count of written.
	taken, written uint64
	barriers       []barrier
	writerGone     bool // the writer returned: barriers complete at once
	// The writer goroutine parks (returns) after writerIdleTimeout without
	// work when startWriter is set and the session sends no heart-beats;
	// appendFrame and finish start it again. writerRunning says whether
	// one runs (or is starting); at most one does.
	writerRunning bool
	startWriter   func() // set before the first append; nil: never parks

	// cutoff, when set, is the instant the session's token expires: from
	// then on take hands the writer nothing, so no frame queued before the
	// session loop noticed the expiry is written after it (expiry.go).
	cutoff time.Time

	wake  chan struct{} // cap 1: the writer has work
	space chan struct{} // cap 1: the queue was drained; the loop may take deliveries

	// written ack:auto deliveries waiting to be acknowledged; shared by the
	// writer (which adds and flushes them) and the session loop (which
	// flushes them before it closes a subscription's channel).
	ackQ ackQueue
}

// bodyRef is a frame body written from its own buffer: on the wire it
// goes between pending[:at] and pending[at:].
type bodyRef struct {
	at   int
	body []byte
}

// zeroCopyMinBody is the smallest body written by reference. Below it a
// copy costs less than an extra iovec.
const zeroCopyMinBody = 16 << 10

// barrier is closed once the writer has written batch number gen.
type barrier struct {
	gen  uint64
	done chan struct{}
}

// ackQueue holds written ack:auto deliveries until they are acknowledged.
// Acks happen only under mu, so the session loop can flush them and then
// close a channel knowing no ack for it is in flight (an ack on a closed
// channel id is a connection error, 504 CHANNEL_ERROR, on RabbitMQ).
type ackQueue struct {
	mu      sync.Mutex
	pending []autoAck
}

// add queues written deliveries; it reports how many wait now.
func (q *ackQueue) add(acks []autoAck) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = append(q.pending, acks...)
	return len(q.pending)
}

// flush acknowledges everything queued.
func (q *ackQueue) flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	ackWritten(q.pending)
	clear(q.pending)
	q.pending = q.pending[:0]
}

// barrier returns a channel that is closed once everything queued so far
// has been written to the socket (or the writer has gone). Only the session
// loop calls it.
func (o *outbound) barrier() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	done := make(chan struct{})
	gen := o.taken
	if len(o.pending) > 0 {
		gen++ // the batch the writer will take next
	}
	if o.writerGone || o.written >= gen {
		close(done)
		return done
	}
	o.barriers = append(o.barriers, barrier{gen: gen, done: done})
	return done
}

// wrote records that the writer wrote (or, gone, gave up on) every batch
// it took, and completes the barriers waiting for them.
func (o *outbound) wrote(gone bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.written = o.taken
	o.writerGone = o.writerGone || gone
	kept := o.barriers[:0]
	for _, b := range o.barriers {
		if o.writerGone || b.gen <= o.written {
			close(b.done)
		} else {
			kept = append(kept, b)
		}
	}
	clear(o.barriers[len(kept):])
	o.barriers = kept
}

func newOutbound(limit int64) *outbound {
	return &outbound{
		limit: limit,
		wake:  make(chan struct{}, 1),
		space: make(chan struct{}, 1),
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// appendFrame encodes f for version v and queues it. ack, if non-nil, is
// performed once the frame has been written. Only the session loop calls it.
func (o *outbound) appendFrame(f *codec.Frame, v codec.Version, trailingLF bool, ack *autoAck) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	if o.zeroCopy && len(f.Body) >= zeroCopyMinBody {
		// The body stays in the delivery's buffer, which nobody changes
		// after the loop queued it, until the writer has written it.
		o.pending = codec.AppendFrameHead(o.pending, f, v)
		o.refs = append(o.refs, bodyRef{at: len(o.pending), body: f.Body})
		o.refBytes += int64(len(f.Body))
		o.pending = codec.AppendFrameTail(o.pending, trailingLF)
	} else {
		// Grow once for the whole frame: headers are small, bodies are not.
		o.pending = slices.Grow(o.pending, frameSizeHint(f))
		o.pending = codec.AppendFrame(o.pending, f, v, trailingLF)
	}
	o.ends = append(o.ends, len(o.pending))
	if ack != nil {
		o.acks = append(o.acks, *ack)
	}
	o.wakeWriterLocked()
}

// wakeWriterLocked signals the writer, starting it if it is parked. Called
// with mu held; it unlocks mu.
func (o *outbound) wakeWriterLocked() {
	start := !o.writerRunning && o.startWriter != nil
	o.writerRunning = true
	o.mu.Unlock()
	signal(o.wake)
	if start {
		o.startWriter()
	}
}

// park lets the writer goroutine return when nothing is queued and the
// queue is not finished; the next appendFrame or finish starts a new one.
// It reports whether the writer may return.
func (o *outbound) park() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.startWriter == nil || len(o.pending) > 0 || o.closed {
		return false
	}
	o.writerRunning = false
	return true
}

// full reports whether the queue holds limit bytes or more.
func (o *outbound) full() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return int64(len(o.pending))+o.refBytes >= o.limit
}

// finish marks the queue closed: nothing more is appended and the writer
// exits after writing what is queued.
func (o *outbound) finish() {
	o.mu.Lock()
	o.closed = true
	o.wakeWriterLocked() // a parked writer is started to drain and return
}

// batch is what the writer takes from the queue at once.
type batch struct {
	buf  []byte
	ends []int
	refs []bodyRef
	acks []autoAck
}

// take swaps the pending frames for spare's buffers and returns them; closed
// reports whether finish was called.
func (o *outbound) take(spare batch) (batch, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pastCutoffLocked() {
		// Nothing is written past the token's expiry.
		return batch{buf: spare.buf[:0], ends: spare.ends[:0], refs: spare.refs[:0], acks: spare.acks[:0]}, o.closed
	}
	b := batch{buf: o.pending, ends: o.ends, refs: o.refs, acks: o.acks}
	o.pending, o.ends, o.refs, o.acks = spare.buf[:0], spare.ends[:0], spare.refs[:0], spare.acks[:0]
	o.refBytes = 0
	if len(b.buf) > 0 {
		o.taken++
	}
	return b, o.closed
}

// frameSizeHint estimates the encoded size of f (escaping may add a few
// bytes; append grows then).
func frameSizeHint(f *codec.Frame) int {
	n := len(f.Command) + len(f.Body) + 48 // EOLs, NUL, content-length
	for i := range f.Headers {
		n += len(f.Headers[i].Name) + len(f.Headers[i].Value) + 2
	}
	return n
}

// minRetainedBuffer is a write buffer the writer always keeps for reuse. A
// larger one is kept only while batches still need it (at least a quarter
// of it), so a stream of big messages reuses one buffer while a session
// that goes back to small frames (or idle) lets it go.
const minRetainedBuffer = 64 << 10

func retainBuffer(buf []byte, used int) []byte {
	if cap(buf) <= minRetainedBuffer || used >= cap(buf)/4 {
		return buf
	}
	return nil
}

// messageWriter is implemented by connections that carry one STOMP frame
// per message (WebSocket): the writer hands them whole frames instead of a
// byte stream. ends are the offsets in buf after each frame.
type messageWriter interface {
	WriteFrames(buf []byte, ends []int) error
}

// writer is the only goroutine that writes to the connection. It writes
// queued frames in batches, sends a heart-beat LF when nothing was written
// for half the send interval (semantics 3), acknowledges ack:auto
// deliveries after their MESSAGE was written, and returns when the queue is
// finished and drained, when stop is closed, or on a write error.
//
// Runs in its own goroutine.
type writer struct {
	conn         net.Conn
	out          *outbound
	sendInterval time.Duration // 0: no heart-beats
	writeTimeout time.Duration
	stop         <-chan struct{}
	iov          net.Buffers // scratch for writeVectored
}

// errWriterParked: the writer returned idle (outbound.park); it is not
// gone, the next frame starts it again.
var errWriterParked = errors.New("writer parked")

// writerIdleTimeout is how long a writer without heart-beats to send waits
// for work before it parks, so an idle session holds no writer goroutine.
var writerIdleTimeout = time.Second // a variable for tests

func (w *writer) run() (err error) {
	var tick <-chan time.Time
	var idle <-chan time.Time // parking, for sessions without heart-beats
	if w.sendInterval > 0 {
		t := time.NewTicker(w.sendInterval / 2)
		defer t.Stop()
		tick = t.C
	} else {
		t := time.NewTicker(writerIdleTimeout)
		defer t.Stop()
		idle = t.C
	}
	busy := false // work since the last idle tick
	lastWrite := time.Now()
	var spare batch
	// Written ack:auto deliveries wait in out.ackQ; the timer, made when
	// first needed, flushes them autoAckDelay after the first.
	var ackTimer *time.Timer
	var ackTimeout <-chan time.Time // ackTimer.C once made
	defer func() {
		w.out.ackQ.flush()
		if !errors.Is(err, errWriterParked) {
			w.out.wrote(true)
		}
	}()
	for {
		select {
		case <-ackTimeout:
			w.out.ackQ.flush()
			continue
		case <-idle:
			if !busy {
				w.out.ackQ.flush() // before park: a new writer may start at once
				if w.out.park() {
					return errWriterParked
				}
			}
			busy = false
			continue
		case <-w.out.wake:
			busy = true
		case now := <-tick:
			if now.Sub(lastWrite) < w.sendInterval/2 {
				continue
			}
			if err := w.write([]byte{'\n'}, []int{1}); err != nil {
				return err
			}
			lastWrite = now
			continue
		case <-w.stop:
			return nil
		}
		b, closed := w.out.take(spare)
		if len(b.buf) > 0 {
			var err error
			if len(b.refs) > 0 {
				err = w.writeVectored(b.buf, b.refs)
			} else {
				err = w.write(b.buf, b.ends)
			}
			if err != nil {
				return err
			}
			lastWrite = time.Now()
			w.out.wrote(false)
			signal(w.out.space)
			if len(b.acks) > 0 {
				waiting := w.out.ackQ.add(b.acks)
				switch {
				case !allDeferrable(b.acks) || waiting >= autoAckBatch:
					if ackTimer != nil {
						ackTimer.Stop()
					}
					w.out.ackQ.flush()
				case waiting == len(b.acks) && ackTimer == nil:
					ackTimer = time.NewTimer(autoAckDelay) // the first to wait
					ackTimeout = ackTimer.C
				case waiting == len(b.acks):
					ackTimer.Reset(autoAckDelay)
				}
			}
		}
		b.buf = retainBuffer(b.buf, len(b.buf))
		clear(b.refs) // let the written bodies go
		clear(b.acks)
		spare = b
		if closed {
			// Appends after finish are dropped, so this batch was the last.
			return nil
		}
	}
}

func (w *writer) write(b []byte, ends []int) error {
	if w.writeTimeout > 0 {
		_ = w.conn.SetWriteDeadline(time.Now().Add(w.writeTimeout))
	}
	var err error
	if mw, ok := w.conn.(messageWriter); ok {
		err = mw.WriteFrames(b, ends)
	} else {
		_, err = w.conn.Write(b)
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return errSlowConsumer
	}
	return err
}

// writeVectored writes buf with the zero-copy bodies in their places, in
// one writev on a TCP connection (net.Buffers), else a write per piece.
func (w *writer) writeVectored(buf []byte, refs []bodyRef) error {
	iov := w.iov[:0]
	prev := 0
	for _, r := range refs {
		iov = append(iov, buf[prev:r.at], r.body)
		prev = r.at
	}
	iov = append(iov, buf[prev:])
	if w.writeTimeout > 0 {
		_ = w.conn.SetWriteDeadline(time.Now().Add(w.writeTimeout))
	}
	all := iov // WriteTo consumes its receiver
	_, err := all.WriteTo(w.conn)
	clear(iov)
	w.iov = iov[:0]
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return errSlowConsumer
	}
	return err
}

func allDeferrable(acks []autoAck) bool {
	for i := range acks {
		if !acks[i].deferrable {
			return false
		}
	}
	return true
}

// ackWritten acknowledges written ack:auto deliveries: per channel, the
// highest tag with multiple=true. That covers exactly the written ones: a
// channel belongs to one ack:auto subscription, its MESSAGEs are written
// in delivery order, and its other deliveries are already settled
// (rejected as oversized) or not yet written (higher tags). An error means
// the channel is closing; its deliveries are requeued by the broker.
func ackWritten(acks []autoAck) {
	for i := range acks {
		if acks[i].ch == nil {
			continue // folded into an earlier entry
		}
		ch, last, n := acks[i].ch, acks[i].tag, 1
		for j := i + 1; j < len(acks); j++ {
			if acks[j].ch == ch {
				last = max(last, acks[j].tag)
				acks[j].ch = nil
				n++
			}
		}
		_ = ch.Ack(last, n > 1)
	}
}
