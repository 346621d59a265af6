package gateway

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stompgate/stompgate/gateway/codec"
)

// largeSend is a SEND frame with a counted body of n bytes of c.
func largeSend(extra string, n int, c byte) string {
	return fmt.Sprintf("SEND\ndestination:/queue/a\n%scontent-length:%d\n\n%s\x00", extra, n, bytes.Repeat([]byte{c}, n))
}

// Pooled bodies are reused only once nothing holds them: a body buffered
// in a transaction keeps its bytes while later SENDs (whose buffers go
// back to the pool) pass, and both reach the broker intact.
func TestPooledBodiesKeepTransactionBodies(t *testing.T) {
	h := connected(t, tcpPair, testConfig(), newFakeBroker(), "1.2")
	const n = 40 << 10
	if n < codec.PooledBodyMin {
		t.Fatal("the bodies must be large enough to be pooled")
	}
	h.send("BEGIN\ntransaction:tx1\n\n\x00")
	h.send(largeSend("transaction:tx1\n", n, 'T'))
	for _, c := range []byte("abcdefgh") {
		h.send(largeSend("", n, c))
	}
	h.send("COMMIT\ntransaction:tx1\nreceipt:c\n\n\x00")
	pub := h.pub()
	got := pub.waitPublishes(t, 9)
	want := "abcdefghT" // the plain SENDs at arrival, the transaction's at COMMIT
	for i, p := range got {
		if len(p.Msg.Body) != n || bytes.Count(p.Msg.Body, []byte{want[i]}) != n {
			t.Errorf("publish %d: %d bytes, want %d × %q", i, len(p.Msg.Body), n, want[i])
		}
	}
}

func TestBodyPoolReusesBuffers(t *testing.T) {
	b := getBody(20 << 10)
	if len(b) != 20<<10 || cap(b) != 32<<10 {
		t.Fatalf("getBody(20 KiB): len %d cap %d, want 20 KiB in the 32 KiB class", len(b), cap(b))
	}
	putBody(b)
	if raceEnabled {
		t.Log("allocations not counted under -race (sync.Pool drops items at random)")
		return
	}
	allocs := testing.AllocsPerRun(100, func() {
		putBody(getBody(64 << 10))
	})
	if allocs != 0 {
		t.Errorf("%v allocations per pooled body, want 0", allocs)
	}
	if big := getBody(2 << 20); cap(big) != 2<<20 {
		t.Errorf("a body beyond every class: cap %d", cap(big))
	}
}

// BenchmarkPooledBody is the codec reading a 64 KiB SEND with and without
// the pool (the session returns the body after its publish).
func BenchmarkPooledBody(b *testing.B) {
	frame := []byte(largeSend("", 64<<10, 'x'))
	for _, pooled := range []bool{false, true} {
		b.Run(fmt.Sprintf("pooled=%t", pooled), func(b *testing.B) {
			src := &repeatReader{data: frame}
			r := codec.NewReader(src, codec.Limits{MaxBody: 1 << 20})
			r.SetVersion(codec.Version12)
			if pooled {
				r.SetBodyAllocator(getBody)
			}
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for range b.N {
				f, err := r.ReadFrame()
				if err != nil {
					b.Fatal(err)
				}
				if pooled {
					putBody(f.Body)
				}
			}
		})
	}
}

// repeatReader returns data over and over.
type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}
