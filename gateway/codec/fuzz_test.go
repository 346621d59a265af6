package codec_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/stompgate/stompgate/gateway/codec"
	"github.com/stompgate/stompgate/gateway/codec/codectest"
)

// fuzzLimits are small so the fuzzer reaches every limit.
var fuzzLimits = codec.Limits{MaxLineBytes: 64, MaxHeaders: 8, MaxHeaderBytes: 256, MaxBody: 1024}

// maxFuzzFrames bounds the frames decoded from one input.
const maxFuzzFrames = 64

// FuzzReadFrame decodes a stream, re-encodes and re-decodes each frame that
// can round trip, and decodes the same input split at its midpoint, which
// must give the same result (style practice 3).
func FuzzReadFrame(f *testing.F) {
	for _, c := range codectest.Cases {
		if c.Decode {
			f.Add(uint8(c.Version), []byte(c.Wire))
		}
	}
	f.Fuzz(func(t *testing.T, version uint8, data []byte) {
		v := codec.Version(version % 4)
		whole := decodeAll(bytes.NewReader(data), v)
		mid := len(data) / 2
		split := decodeAll(&partsReader{parts: [][]byte{data[:mid], data[mid:]}}, v)
		if !reflect.DeepEqual(whole.frames, split.frames) || !sameErr(whole.err, split.err) {
			t.Fatalf("whole and split input differ:\nwhole %+v, %v\nsplit %+v, %v", whole.frames, whole.err, split.frames, split.err)
		}
		for _, fr := range whole.frames {
			if !roundTrips(fr, v) {
				continue
			}
			wire := codec.AppendFrame(nil, fr, v, version&4 != 0)
			r := codec.NewReader(bytes.NewReader(wire), codec.Limits{})
			r.SetVersion(v)
			again, err := r.ReadFrame()
			if err != nil {
				t.Fatalf("re-decoding %q (from %+v): %v", wire, fr, err)
			}
			if !reflect.DeepEqual(again, fr) {
				t.Fatalf("round trip through %q:\n got %+v\nwant %+v", wire, again, fr)
			}
			if _, err := r.ReadFrame(); !errors.Is(err, io.EOF) {
				t.Fatalf("after re-decoding %q: %v, want io.EOF", wire, err)
			}
		}
	})
}

type decoded struct {
	frames []*codec.Frame
	err    error
}

func decodeAll(src io.Reader, v codec.Version) decoded {
	r := codec.NewReader(src, fuzzLimits)
	r.SetVersion(v)
	var d decoded
	for range maxFuzzFrames {
		f, err := r.ReadFrame()
		if err != nil {
			d.err = err
			var pe *codec.ProtocolError
			if !errors.As(err, &pe) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				panic("unexpected error type: " + err.Error())
			}
			return d
		}
		d.frames = append(d.frames, f)
	}
	return d
}

func sameErr(a, b error) bool {
	var pa, pb *codec.ProtocolError
	if errors.As(a, &pa) && errors.As(b, &pb) {
		return *pa == *pb
	}
	return errors.Is(a, b) && errors.Is(b, a)
}

// roundTrips reports whether AppendFrame can write fr so that it reads back
// the same: semantics 4.3 leaves out a 1.1 header with CR (1.1 has no \r).
func roundTrips(fr *codec.Frame, v codec.Version) bool {
	if v != codec.Version11 || fr.Command == codec.CmdConnect || fr.Command == codec.CmdStomp {
		return true
	}
	for _, h := range fr.Headers {
		if strings.ContainsRune(h.Name, '\r') || strings.ContainsRune(h.Value, '\r') {
			return false
		}
	}
	return true
}

// partsReader returns each part in its own Read (or Reads, if p is short).
type partsReader struct {
	parts [][]byte
}

func (r *partsReader) Read(p []byte) (int, error) {
	for len(r.parts) > 0 && len(r.parts[0]) == 0 {
		r.parts = r.parts[1:]
	}
	if len(r.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.parts[0])
	r.parts[0] = r.parts[0][n:]
	return n, nil
}
