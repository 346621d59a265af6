package codec_test

import (
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/stompgate/stompgate/gateway/codec"
)

// endlessReader returns prefix, then fill forever, counting what it gave.
type endlessReader struct {
	prefix string
	fill   []byte // repeated after prefix
	read   int64
}

func (r *endlessReader) Read(p []byte) (int, error) {
	n := 0
	if r.prefix != "" {
		n = copy(p, r.prefix)
		r.prefix = r.prefix[n:]
	}
	for n < len(p) {
		for i := 0; i < len(r.fill) && n < len(p); i++ {
			p[n] = r.fill[i]
			n++
		}
	}
	r.read += int64(n)
	return n, nil
}

// slack is what the Reader may read beyond a limit: its buffer.
const slack = 16 << 10

// TestLimitsDoNotBuffer feeds endless input and checks that each limit ends
// the frame once it is exceeded, without reading (or holding) much more.
func TestLimitsDoNotBuffer(t *testing.T) {
	tests := []struct {
		name     string
		src      *endlessReader
		lim      codec.Limits
		kind     error
		maxRead  int64
		maxAlloc uint64
	}{
		{name: "command line", src: &endlessReader{fill: []byte("A")},
			kind: codec.ErrBadCommand, maxRead: slack, maxAlloc: 1 << 20},
		{name: "header line", src: &endlessReader{prefix: "SEND\n", fill: []byte("a")},
			kind: codec.ErrFrameTooLarge, maxRead: codec.DefaultMaxLineBytes + slack, maxAlloc: 2 << 20},
		{name: "header count", src: &endlessReader{prefix: "SEND\n", fill: []byte("a:b\n")},
			kind: codec.ErrFrameTooLarge, maxRead: 4*codec.DefaultMaxHeaders + slack, maxAlloc: 2 << 20},
		{name: "header bytes", src: &endlessReader{prefix: "SEND\n", fill: []byte(strings.Repeat("a", 1000) + ":b\n")}, lim: codec.Limits{MaxHeaders: 1 << 30},
			kind: codec.ErrFrameTooLarge, maxRead: codec.DefaultMaxHeaderBytes + slack, maxAlloc: 8 << 20},
		{name: "content-length claim", src: &endlessReader{prefix: "SEND\ncontent-length:9223372036854775807\n\n", fill: []byte("a")},
			kind: codec.ErrFrameTooLarge, maxRead: slack, maxAlloc: 1 << 20},
		{name: "body to NUL", src: &endlessReader{prefix: "SEND\n\n", fill: []byte("a")}, lim: codec.Limits{MaxBody: 1 << 20},
			kind: codec.ErrFrameTooLarge, maxRead: 1<<20 + slack, maxAlloc: 8 << 20},
		{name: "ACK body to NUL", src: &endlessReader{prefix: "ACK\ncontent-length:1\n\n", fill: []byte("a")}, lim: codec.Limits{MaxBody: 1 << 20},
			kind: codec.ErrFrameTooLarge, maxRead: 1<<20 + slack, maxAlloc: 8 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := totalAlloc()
			r := codec.NewReader(tt.src, tt.lim)
			r.SetVersion(codec.Version12)
			_, err := r.ReadFrame()
			alloc := totalAlloc() - before
			if !errors.Is(err, tt.kind) {
				t.Fatalf("got %v, want %v", err, tt.kind)
			}
			if tt.src.read > tt.maxRead {
				t.Errorf("read %d bytes before failing, want at most %d", tt.src.read, tt.maxRead)
			}
			if alloc > tt.maxAlloc {
				t.Errorf("allocated %d bytes before failing, want at most %d", alloc, tt.maxAlloc)
			}
		})
	}
}

// TestCountedBodyGrowsWithData: a content-length within limits.max_body is
// not allocated in full before the bytes arrive.
func TestCountedBodyGrowsWithData(t *testing.T) {
	const claimed = 60 << 20
	wire := "SEND\ncontent-length:62914560\n\n" + strings.Repeat("a", 2<<20)
	before := totalAlloc()
	r := codec.NewReader(strings.NewReader(wire), codec.Limits{})
	r.SetVersion(codec.Version12)
	_, err := r.ReadFrame()
	alloc := totalAlloc() - before
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
	}
	if alloc > claimed/4 {
		t.Errorf("allocated %d bytes for 2 MiB of a %d-byte body", alloc, claimed)
	}
}

func TestLargeCountedBody(t *testing.T) {
	body := strings.Repeat("0123456789", 300_000) // 3 MB, above the eager size
	wire := "SEND\ncontent-length:3000000\n\n" + body + "\x00SEND\n\nnext\x00"
	r := codec.NewReader(strings.NewReader(wire), codec.Limits{})
	f, err := r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if string(f.Body) != body {
		t.Fatalf("body of %d bytes differs", len(f.Body))
	}
	if f, err = r.ReadFrame(); err != nil || string(f.Body) != "next" {
		t.Fatalf("next frame: %v, %v", f, err)
	}
}

// TestDefaultLimits: a zero Limits means the defaults of semantics 4.5.
func TestDefaultLimits(t *testing.T) {
	if got := codec.DefaultLimits(); got != (codec.Limits{MaxLineBytes: 64 << 10, MaxHeaders: 1000, MaxHeaderBytes: 1 << 20, MaxBody: 64 << 20}) {
		t.Errorf("DefaultLimits() = %+v", got)
	}
	line := func(n int) string { return "SEND\nx:" + strings.Repeat("v", n-2) + "\r\n\n\x00" }
	if _, err := codec.NewReader(strings.NewReader(line(64<<10)), codec.Limits{}).ReadFrame(); err != nil {
		t.Errorf("line of 64 KiB: %v", err)
	}
	if _, err := codec.NewReader(strings.NewReader(line(64<<10+1)), codec.Limits{}).ReadFrame(); !errors.Is(err, codec.ErrFrameTooLarge) {
		t.Errorf("line of 64 KiB + 1: got %v, want ErrFrameTooLarge", err)
	}
	headers := func(n int) string { return "SEND\n" + strings.Repeat("a:b\n", n) + "\n\x00" }
	if _, err := codec.NewReader(strings.NewReader(headers(1000)), codec.Limits{}).ReadFrame(); err != nil {
		t.Errorf("1000 headers: %v", err)
	}
	if _, err := codec.NewReader(strings.NewReader(headers(1001)), codec.Limits{}).ReadFrame(); !errors.Is(err, codec.ErrFrameTooLarge) {
		t.Errorf("1001 headers: got %v, want ErrFrameTooLarge", err)
	}
}

func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}
