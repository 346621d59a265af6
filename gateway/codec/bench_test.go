package codec_test

import (
	"bytes"
	"testing"

	"github.com/stompgate/stompgate/gateway/codec"
)

// BenchmarkReadFrame reads a SEND with a 1 KiB counted body and a few
// headers, the gateway's common inbound frame.
func BenchmarkReadFrame(b *testing.B) {
	body := bytes.Repeat([]byte("b"), 1024)
	wire := codec.AppendFrame(nil, &codec.Frame{
		Command: codec.CmdSend,
		Headers: codec.Headers{
			{Name: "destination", Value: "/queue/orders"},
			{Name: "content-type", Value: "application/json"},
			{Name: "receipt", Value: "r-12345"},
			{Name: "persistent", Value: "true"},
			{Name: "content-length", Value: "1024"},
		},
		Body: body,
	}, codec.Version12, true)
	r := codec.NewReader(&repeatReader{data: wire}, codec.Limits{})
	r.SetVersion(codec.Version12)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := r.ReadFrame()
		if err != nil || len(f.Body) != len(body) {
			b.Fatalf("ReadFrame: %v", err)
		}
	}
}

// BenchmarkAppendFrame writes a MESSAGE with 8 headers and a 512-byte body.
func BenchmarkAppendFrame(b *testing.B) {
	f := messageFrame()
	dst := make([]byte, 0, 4096)
	b.SetBytes(int64(len(codec.AppendFrame(nil, f, codec.Version12, true))))
	b.ReportAllocs()
	for b.Loop() {
		dst = codec.AppendFrame(dst[:0], f, codec.Version12, true)
	}
}
