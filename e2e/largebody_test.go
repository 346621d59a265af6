//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"testing"
)

// TestLargeBodiesRoundTrip: bodies of 16 KiB and more are written to the
// client from the delivery's own buffer (writev, issue 6) between small
// frames copied into the writer queue; every MESSAGE arrives whole, in
// order, byte for byte.
func TestLargeBodiesRoundTrip(t *testing.T) {
	t.Parallel()
	n := newNames(t)
	addr := startGateway(t)
	q := n.queue("large")
	sizes := []int{10, 16 << 10, 3, 64 << 10, 100, (16 << 10) - 1, 200 << 10, 1}
	bodies := make([][]byte, len(sizes))
	for i, size := range sizes {
		b := make([]byte, size)
		for j := range b {
			b[j] = byte('a' + (i+j)%26)
		}
		bodies[i] = b
	}
	sub := connectRaw(t, addr, "1.2")
	send(t, sub, "SUBSCRIBE\nid:0\ndestination:/queue/"+q+"\nreceipt:sub\n\n\x00")
	expectFrame(t, sub, "RECEIPT")
	pub := connectRaw(t, addr, "1.2")
	var frames bytes.Buffer
	for i, b := range bodies {
		fmt.Fprintf(&frames, "SEND\ndestination:/queue/%s\ncontent-length:%d\nreceipt:s%d\n\n", q, len(b), i)
		frames.Write(b)
		frames.WriteByte(0)
	}
	send(t, pub, frames.String())
	for i := range bodies {
		expectHeader(t, expectFrame(t, pub, "RECEIPT"), "receipt-id", fmt.Sprint("s", i))
	}
	for i, want := range bodies {
		f := expectFrame(t, sub, "MESSAGE")
		expectHeader(t, f, "content-length", fmt.Sprint(len(want)))
		if !bytes.Equal(f.Body, want) {
			t.Fatalf("MESSAGE %d: %d bytes differ from the %d sent", i, len(f.Body), len(want))
		}
	}
	disconnectRaw(t, pub)
	disconnectRaw(t, sub)
}
