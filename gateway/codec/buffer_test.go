package codec

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// The read buffer starts small and grows only for a client that streams
// (a read fills it); frames read the same either way (the split-reader
// and fixture tests run at every size along the way).

func TestReadBufferStaysSmallForSmallFrames(t *testing.T) {
	in := "CONNECT\naccept-version:1.2\nhost:/\n\n\x00SUBSCRIBE\nid:0\ndestination:/queue/a\n\n\x00\n\n"
	r := NewReader(&oneFramePerRead{data: []byte(in), chunk: 64}, Limits{})
	for range 2 {
		if _, err := r.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	}
	if r.bufSize != minReadBufferSize {
		t.Errorf("buffer %d bytes after small reads, want %d", r.bufSize, minReadBufferSize)
	}
}

func TestReadBufferGrowsWhileStreaming(t *testing.T) {
	frame := "SEND\ndestination:/queue/a\ncontent-length:1000\n\n" + strings.Repeat("x", 1000) + "\x00"
	const frames = 200
	r := NewReader(strings.NewReader(strings.Repeat(frame, frames)), Limits{})
	for i := range frames {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if len(f.Body) != 1000 || !bytes.Equal(f.Body, bytes.Repeat([]byte("x"), 1000)) {
			t.Fatalf("frame %d: body of %d bytes", i, len(f.Body))
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("after the frames: %v, want io.EOF", err)
	}
	if r.bufSize != maxReadBufferSize {
		t.Errorf("buffer %d bytes after streaming, want %d", r.bufSize, maxReadBufferSize)
	}
}

// oneFramePerRead returns at most chunk bytes per Read, like a client that
// writes small frames one at a time.
type oneFramePerRead struct {
	data  []byte
	chunk int
}

func (o *oneFramePerRead) Read(p []byte) (int, error) {
	if len(o.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), o.chunk, len(o.data))
	copy(p, o.data[:n])
	o.data = o.data[n:]
	return n, nil
}
