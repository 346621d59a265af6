package broker

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestCoalescingConnKeepsOrderAndBatches(t *testing.T) {
	defer goleak.VerifyNone(t)
	client, server := net.Pipe()
	c := newCoalescingConn(client)
	var got bytes.Buffer
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 1<<20)
		for {
			n, err := server.Read(buf)
			got.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()

	// Writes from one goroutine keep their order (each finds nothing in
	// flight and is written directly).
	var want bytes.Buffer
	const n = 2000
	for i := range n {
		msg := fmt.Sprintf("message %04d;", i)
		want.WriteString(msg)
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	deadline := time.Now().Add(waitBound)
	for {
		c.mu.Lock()
		idle := len(c.pending) == 0 && !c.writing
		c.mu.Unlock()
		if idle || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	_ = c.Close()
	_ = server.Close()
	<-readDone
	if got.String() != want.String() {
		t.Fatalf("the peer read %d bytes that differ from the %d written, in order", got.Len(), want.Len())
	}
}

func TestCoalescingConnConcurrentWritersStayWhole(t *testing.T) {
	defer goleak.VerifyNone(t)
	client, server := net.Pipe()
	c := newCoalescingConn(client)
	got := make(chan []byte, 1)
	var reads int
	go func() {
		var all []byte
		buf := make([]byte, 1<<20)
		for {
			n, err := server.Read(buf)
			all = append(all, buf[:n]...)
			reads++
			if err != nil {
				got <- all
				return
			}
		}
	}()
	var wg sync.WaitGroup
	const writers, each = 4, 500
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := c.Write([]byte(fmt.Sprintf("<%d:%04d>", w, i))); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for {
		c.mu.Lock()
		idle := len(c.pending) == 0 && !c.writing
		c.mu.Unlock()
		if idle {
			break
		}
		time.Sleep(time.Millisecond)
	}
	_ = c.Close()
	b := <-got
	// Each writer's records arrive whole and in its own order.
	next := make([]int, writers)
	for len(b) > 0 {
		var w, i int
		if _, err := fmt.Sscanf(string(b[:8]), "<%d:%04d>", &w, &i); err != nil {
			t.Fatalf("torn record at %q: %v", b[:min(len(b), 16)], err)
		}
		if i != next[w] {
			t.Fatalf("writer %d: record %d after %d", w, i, next[w]-1)
		}
		next[w]++
		b = b[8:]
	}
	for w, n := range next {
		if n != each {
			t.Errorf("writer %d: %d records arrived, want %d", w, n, each)
		}
	}
	// Writes that found one in flight were batched (net.Pipe delivers one
	// Write per Read, so reads count the socket writes).
	if reads >= writers*each {
		t.Errorf("%d socket writes for %d Writes: nothing was coalesced", reads, writers*each)
	}
}

func TestCoalescingConnCloseUnblocksAStalledWrite(t *testing.T) {
	defer goleak.VerifyNone(t)
	client, server := net.Pipe() // nobody reads server: writes stall
	c := newCoalescingConn(client)
	errs := make(chan error, 2)
	go func() { _, err := c.Write(make([]byte, 10)); errs <- err }() // direct, stalls
	eventually(t, "the first write is in flight", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.writing
	})
	go func() {
		// Queues behind the stalled one, then blocks on coalesceLimit.
		_, err := c.Write(make([]byte, coalesceLimit))
		if err == nil {
			_, err = c.Write(make([]byte, 10))
		}
		errs <- err
	}()
	time.Sleep(20 * time.Millisecond) // let both writers block
	_ = c.Close()
	for range 2 {
		select {
		case err := <-errs:
			if err == nil {
				t.Error("a write into a stalled, closed connection succeeded")
			}
		case <-time.After(waitBound):
			t.Fatal("Close did not unblock a stalled write")
		}
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) && err == nil {
		t.Errorf("write after Close: %v, want an error", err)
	}
	_ = server.Close()
}

// recordingConn records each Write as one socket write.
type recordingConn struct {
	net.Conn
	mu     sync.Mutex
	writes []string
}

func (r *recordingConn) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func (r *recordingConn) Close() error { return nil }

func (r *recordingConn) written() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

func TestCoalescingConnHeldWritesShareOneWrite(t *testing.T) {
	defer goleak.VerifyNone(t)
	rec := &recordingConn{}
	c := newCoalescingConn(rec)
	defer c.Close()
	for _, p := range []string{"a", "b", "c"} {
		c.holdWrites()
		if _, err := c.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
		c.releaseWrites()
	}
	time.Sleep(quietPeriod) // the absence of a write: nothing to poll for
	if got := rec.written(); len(got) != 0 {
		t.Fatalf("held writes reached the socket before flushHeld: %q", got)
	}
	c.flushHeld()
	if got := rec.written(); len(got) != 1 || got[0] != "abc" {
		t.Fatalf("socket writes %q, want one write \"abc\"", got)
	}
	c.flushHeld() // nothing lingers: no empty write
	if got := rec.written(); len(got) != 1 {
		t.Fatalf("socket writes %q after a second flushHeld", got)
	}
}

func TestCoalescingConnUnheldWriteTakesHeldBytesAlong(t *testing.T) {
	// An ack or heart-beat written outside a hold must not wait for the
	// holder's flush, and must not overtake the held bytes.
	defer goleak.VerifyNone(t)
	rec := &recordingConn{}
	c := newCoalescingConn(rec)
	defer c.Close()
	c.holdWrites()
	_, _ = c.Write([]byte("publish;"))
	c.releaseWrites()
	_, _ = c.Write([]byte("ack;"))
	eventually(t, "the held bytes and the ack written", func() bool {
		return strings.Join(rec.written(), "") == "publish;ack;"
	})
}

func TestCoalescingConnHoldIsBounded(t *testing.T) {
	defer goleak.VerifyNone(t)
	rec := &recordingConn{}
	c := newCoalescingConn(rec)
	defer c.Close()
	chunk := bytes.Repeat([]byte("x"), heldLimit/2+1)
	c.holdWrites()
	_, _ = c.Write(chunk)
	_, _ = c.Write(chunk) // beyond heldLimit: written without flushHeld
	c.releaseWrites()
	eventually(t, "heldLimit bytes written without flushHeld", func() bool {
		return len(strings.Join(rec.written(), "")) == 2*len(chunk)
	})
}
