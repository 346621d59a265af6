package codec_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stompgate/stompgate/gateway/codec"
	"github.com/stompgate/stompgate/gateway/codec/codectest"
)

// readerWrappers are the ways every decode case is fed to the Reader (style
// practice 3).
var readerWrappers = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"plain", func(r io.Reader) io.Reader { return r }},
	{"OneByteReader", iotest.OneByteReader},
	{"HalfReader", iotest.HalfReader},
	{"DataErrReader", iotest.DataErrReader},
	{"DataErrReader+OneByteReader", func(r io.Reader) io.Reader { return iotest.DataErrReader(iotest.OneByteReader(r)) }},
}

func TestCasesAreWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range codectest.Cases {
		if seen[c.Name] {
			t.Errorf("duplicate case name %q", c.Name)
		}
		seen[c.Name] = true
		if !c.Decode && !c.Encode {
			t.Errorf("%s: neither Decode nor Encode", c.Name)
		}
		if c.Encode && (c.Frame == nil || c.Err != nil) {
			t.Errorf("%s: Encode needs a Frame and no Err", c.Name)
		}
		if c.Decode && (c.Frame == nil) == (c.Err == nil) {
			t.Errorf("%s: Decode needs exactly one of Frame and Err", c.Name)
		}
	}
}

func TestReadFrameCases(t *testing.T) {
	for _, c := range codectest.Cases {
		if !c.Decode {
			continue
		}
		for _, w := range readerWrappers {
			t.Run(c.Name+"/"+w.name, func(t *testing.T) {
				r := codec.NewReader(w.wrap(strings.NewReader(c.Wire)), c.Limits)
				r.SetVersion(c.Version)
				got, err := r.ReadFrame()
				if c.Err != nil {
					checkErr(t, err, c.Err)
					if got != nil {
						t.Errorf("frame %+v returned with error", got)
					}
					if !errors.Is(c.Err, io.EOF) {
						// Errors inside a frame are sticky.
						_, again := r.ReadFrame()
						checkErr(t, again, c.Err)
					}
					return
				}
				if err != nil {
					t.Fatalf("ReadFrame: %v", err)
				}
				checkFrame(t, got, c.Frame)
				if _, err := r.ReadFrame(); !errors.Is(err, io.EOF) {
					t.Errorf("after the frame: got %v, want io.EOF", err)
				}
			})
		}
	}
}

func TestAppendFrameCases(t *testing.T) {
	for _, c := range codectest.Cases {
		if !c.Encode {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			got := codec.AppendFrame(nil, c.Frame, c.Version, c.TrailingLF)
			if string(got) != c.Wire {
				t.Errorf("AppendFrame:\n got %q\nwant %q", got, c.Wire)
			}
			prefix := []byte("prefix")
			got = codec.AppendFrame(prefix, c.Frame, c.Version, c.TrailingLF)
			if string(got) != "prefix"+c.Wire {
				t.Errorf("AppendFrame after a prefix: got %q", got)
			}
		})
	}
}

// TestReadFrameStream reads every good decode case of one version from a
// single stream, so state left by one frame cannot leak into the next.
func TestReadFrameStream(t *testing.T) {
	for _, v := range []codec.Version{codec.VersionNone, codec.Version10, codec.Version11, codec.Version12} {
		var wire strings.Builder
		var want []*codec.Frame
		for _, c := range codectest.Cases {
			if c.Decode && c.Err == nil && c.Version == v && c.Limits == (codec.Limits{}) {
				wire.WriteString(c.Wire)
				wire.WriteString("\n")
				want = append(want, c.Frame)
			}
		}
		for _, w := range readerWrappers {
			r := codec.NewReader(w.wrap(strings.NewReader(wire.String())), codec.Limits{})
			r.SetVersion(v)
			for i, wf := range want {
				got, err := r.ReadFrame()
				if err != nil {
					t.Fatalf("%v %s frame %d: %v", v, w.name, i, err)
				}
				checkFrame(t, got, wf)
			}
			if _, err := r.ReadFrame(); !errors.Is(err, io.EOF) {
				t.Errorf("%v %s: at the end got %v, want io.EOF", v, w.name, err)
			}
		}
	}
}

// TestSetVersionAppliesToNextFrame: CONNECT is read before negotiation, the
// frames after it at the negotiated version.
func TestSetVersionAppliesToNextFrame(t *testing.T) {
	r := codec.NewReader(strings.NewReader("SEND\nx:a\\cb\n\n\x00SEND\nx:a\\cb\n\n\x00SEND\nx:  a\\cb\n\n\x00"), codec.Limits{})
	for _, step := range []struct {
		v    codec.Version
		want string
	}{{codec.VersionNone, `a\cb`}, {codec.Version12, "a:b"}, {codec.Version10, `a\cb`}} {
		r.SetVersion(step.v)
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Headers.Value("x"); got != step.want {
			t.Errorf("at %v: x = %q, want %q", step.v, got, step.want)
		}
	}
}

// scriptedReader returns its steps one per Read.
type scriptedReader struct {
	steps []scriptStep
}

type scriptStep struct {
	data string
	err  error
}

func (s *scriptedReader) Read(p []byte) (int, error) {
	if len(s.steps) == 0 {
		return 0, io.EOF
	}
	st := s.steps[0]
	s.steps = s.steps[1:]
	return copy(p, st.data), st.err
}

func TestReadErrorsPassThrough(t *testing.T) {
	t.Run("between frames, then resume", func(t *testing.T) {
		r := codec.NewReader(&scriptedReader{steps: []scriptStep{
			{data: "\n"}, {err: os.ErrDeadlineExceeded}, {data: "DISCONNECT\n\n\x00"},
		}}, codec.Limits{})
		if _, err := r.ReadFrame(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("got %v, want os.ErrDeadlineExceeded", err)
		}
		f, err := r.ReadFrame()
		if err != nil || f.Command != codec.CmdDisconnect {
			t.Fatalf("after the deadline: %v, %v", f, err)
		}
	})
	t.Run("inside a frame, sticky", func(t *testing.T) {
		r := codec.NewReader(&scriptedReader{steps: []scriptStep{
			{data: "SEND\ndest"}, {err: os.ErrDeadlineExceeded}, {data: "ination:x\n\n\x00"},
		}}, codec.Limits{})
		for range 2 {
			if _, err := r.ReadFrame(); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("got %v, want os.ErrDeadlineExceeded", err)
			}
		}
	})
}

func TestTrimLeft10(t *testing.T) {
	h := codec.Headers{{Name: " login", Value: "  guest "}, {Name: "host", Value: "\t/"}, {Name: "x", Value: "   "}}
	codec.TrimLeft10(h)
	want := codec.Headers{{Name: " login", Value: "guest "}, {Name: "host", Value: "\t/"}, {Name: "x", Value: ""}}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("got %q, want %q", h, want)
	}
}

func TestFrameStringsDoNotAliasBuffers(t *testing.T) {
	wire := []byte("SEND\nx-a:1\nx-b:2\n\nbody\x00")
	r := codec.NewReader(bytes.NewReader(wire), codec.Limits{})
	r.SetVersion(codec.Version12)
	f, err := r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	for i := range wire {
		wire[i] = 'Z'
	}
	if f.Headers.Value("x-a") != "1" || f.Headers.Value("x-b") != "2" || string(f.Body) != "body" {
		t.Errorf("frame changed with the input buffer: %+v", f)
	}
}

func TestReadFrameAllocs(t *testing.T) {
	wire := "SEND\ndestination:/queue/a\ncontent-type:text/plain\nx-custom:value\ncontent-length:4\n\nbody\x00"
	src := &repeatReader{data: []byte(wire)}
	r := codec.NewReader(src, codec.Limits{})
	r.SetVersion(codec.Version12)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := r.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	})
	// Frame, header string, header slice, body.
	if allocs > 4 {
		t.Errorf("ReadFrame: %v allocations per frame, want at most 4", allocs)
	}
}

func TestAppendFrameAllocs(t *testing.T) {
	f := messageFrame()
	dst := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(200, func() {
		dst = codec.AppendFrame(dst[:0], f, codec.Version12, true)
	})
	if allocs != 0 {
		t.Errorf("AppendFrame into a large enough buffer: %v allocations, want 0", allocs)
	}
}

// repeatReader returns data over and over.
type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

func messageFrame() *codec.Frame {
	return &codec.Frame{
		Command: codec.CmdMessage,
		Headers: codec.Headers{
			{Name: "subscription", Value: "sub-0"},
			{Name: "destination", Value: "/queue/orders"},
			{Name: "message-id", Value: "T_sub-0@@session-abcdefghijklmnopqrstuv@@42"},
			{Name: "redelivered", Value: "false"},
			{Name: "ack", Value: "T_sub-0@@session-abcdefghijklmnopqrstuv@@42"},
			{Name: "content-type", Value: "application/json"},
			{Name: "persistent", Value: "true"},
			{Name: "x-trace", Value: "a:b\\c"},
		},
		Body: bytes.Repeat([]byte("x"), 512),
	}
}

func checkFrame(t *testing.T, got, want *codec.Frame) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("frame:\n got %+v\nwant %+v", got, want)
	}
}

func checkErr(t *testing.T, err, want error) {
	t.Helper()
	var wantPE *codec.ProtocolError
	if !errors.As(want, &wantPE) {
		if !errors.Is(err, want) {
			t.Errorf("error: got %v, want %v", err, want)
		}
		return
	}
	var pe *codec.ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("error: got %v, want *ProtocolError %q", err, wantPE)
	}
	if *pe != *wantPE {
		t.Errorf("error:\n got %#v\nwant %#v", *pe, *wantPE)
	}
	if !errors.Is(err, wantPE.Kind) {
		t.Errorf("errors.Is(%v, %v) = false", err, wantPE.Kind)
	}
}
