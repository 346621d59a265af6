package broker

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
)

// tcpPair is a loopback TCP connection whose far side is drained into sink
// (nil: discarded) until it closes.
func tcpPair(tb testing.TB, sink *bytes.Buffer) (net.Conn, func()) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	server := <-accepted
	if server == nil {
		tb.Fatal("accept failed")
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		buf := make([]byte, 256<<10)
		for {
			n, err := server.Read(buf)
			if sink != nil {
				sink.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	return client, func() {
		_ = client.Close()
		<-drained
		_ = server.Close()
	}
}

// publish64k writes what amqp091-go writes for a publish of a 64 KiB body
// through its 4 KiB bufio.Writer, as the session loop does it: a held
// first buffer, then the rest of the body in one write.
func publish64k(c *coalescingConn, head, rest []byte) error {
	c.holdWrites()
	defer c.releaseWrites()
	if _, err := c.Write(head); err != nil {
		return err
	}
	_, err := c.Write(rest)
	return err
}

// Held bytes followed by a large write go out together (writev), in order,
// with nothing allocated per publish.
func TestCoalescingConnHeldThenLargeWriteAllocatesNothing(t *testing.T) {
	var got bytes.Buffer
	raw, done := tcpPair(t, &got)
	c := newCoalescingConn(raw)
	head := bytes.Repeat([]byte{'h'}, 4<<10)
	rest := bytes.Repeat([]byte{'r'}, 60<<10)
	small := bytes.Repeat([]byte{'s'}, 1<<10)
	publishes := 0
	allocs := testing.AllocsPerRun(200, func() {
		if err := publish64k(c, head, rest); err != nil {
			t.Fatal(err)
		}
		// Small held publishes, flushed before the loop waits.
		for range 8 {
			c.holdWrites()
			if _, err := c.Write(small); err != nil {
				t.Fatal(err)
			}
			c.releaseWrites()
		}
		c.flushHeld()
		publishes++
	})
	_ = c.Close()
	done()
	switch {
	case raceEnabled:
		t.Logf("%v allocations per publish sequence; not checked under -race (sync.Pool drops items at random)", allocs)
	case allocs != 0:
		t.Errorf("%v allocations per publish sequence, want 0", allocs)
	}
	want := bytes.Repeat(append(append(append([]byte(nil), head...), rest...), bytes.Repeat(small, 8)...), publishes)
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("the peer read %d bytes that differ from the %d written, in order", got.Len(), len(want))
	}
}

// BenchmarkCoalescingConn: 64 KiB publishes from the session loop while
// another goroutine writes acks, over loopback TCP. allocs/op is 0 in
// steady state: held bytes and queued writes use pooled chunks.
func BenchmarkCoalescingConn(b *testing.B) {
	for _, tc := range []struct {
		name string
		body int
	}{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}} {
		b.Run(tc.name, func(b *testing.B) {
			raw, done := tcpPair(b, nil)
			c := newCoalescingConn(raw)
			head := make([]byte, min(tc.body+200, 4<<10))
			rest := make([]byte, max(0, tc.body+200-len(head)))
			ack := make([]byte, 21)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // the writer goroutine's acks
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := c.Write(ack); err != nil {
						return
					}
				}
			}()
			b.SetBytes(int64(tc.body))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c.holdWrites()
				_, err := c.Write(head)
				if err == nil && len(rest) > 0 {
					_, err = c.Write(rest)
				}
				c.releaseWrites()
				c.flushHeld()
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
			_ = c.Close()
			done()
		})
	}
}

var _ io.Writer = (*coalescingConn)(nil)
