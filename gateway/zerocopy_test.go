package gateway

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/stompgate/stompgate/gateway/codec"
)

func TestZeroCopyBodiesKeepTheWireForm(t *testing.T) {
	// Bodies of zeroCopyMinBody bytes or more are written from their own
	// buffers (writev on TCP); the bytes on the wire are what AppendFrame
	// would have produced, frame after frame, and the queue counts them.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	received := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		received <- b
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}

	out := newOutbound(1 << 20)
	out.zeroCopy = true
	frames := []codec.Frame{
		{Command: codec.CmdMessage, Headers: codec.Headers{{Name: "destination", Value: "/queue/a"}}, Body: []byte("small")},
		{Command: codec.CmdMessage, Headers: codec.Headers{{Name: "destination", Value: "/queue/b"}}, Body: bytes.Repeat([]byte("L"), zeroCopyMinBody)},
		{Command: codec.CmdReceipt, Headers: codec.Headers{{Name: "receipt-id", Value: "r"}}},
		{Command: codec.CmdMessage, Headers: codec.Headers{{Name: "destination", Value: "/queue/c"}}, Body: bytes.Repeat([]byte("M"), 3*zeroCopyMinBody)},
	}
	var want []byte
	for i := range frames {
		out.appendFrame(&frames[i], codec.Version12, true, nil)
		want = codec.AppendFrame(want, &frames[i], codec.Version12, true)
	}
	if len(out.refs) != 2 {
		t.Fatalf("%d bodies by reference, want 2", len(out.refs))
	}
	if got := int64(len(out.pending)) + out.refBytes; got != int64(len(want)) {
		t.Errorf("the queue counts %d bytes, the frames are %d", got, len(want))
	}
	out.finish()
	w := &writer{conn: conn, out: out, stop: make(chan struct{})}
	if err := w.run(); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	got := <-received
	if !bytes.Equal(got, want) {
		t.Fatalf("wire form differs: got %d bytes, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
	}
	if strings.Count(string(got), "\x00") != len(frames) {
		t.Errorf("%d NULs on the wire, want %d", strings.Count(string(got), "\x00"), len(frames))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
