package mapping

import (
	"errors"
	"testing"

	"github.com/stompgate/stompgate/gateway/codec"
)

// hdrs builds codec.Headers from name, value pairs.
func hdrs(kv ...string) codec.Headers {
	if len(kv)%2 != 0 {
		panic("hdrs: odd number of arguments")
	}
	h := make(codec.Headers, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		h = append(h, codec.Header{Name: kv[i], Value: kv[i+1]})
	}
	return h
}

// wantError describes the ERROR frame a call must produce; the zero value
// means no error.
type wantError struct {
	Message string
	Detail  string
}

// checkError asserts that err is a *codec.ProtocolError with exactly want's
// message and body, or nil when want is zero.
func checkError(t *testing.T, call string, err error, want wantError) {
	t.Helper()
	if want == (wantError{}) {
		if err != nil {
			t.Fatalf("%s: unexpected error %v", call, err)
		}
		return
	}
	var pe *codec.ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("%s = error %v (%T); want *codec.ProtocolError %q / %q", call, err, err, want.Message, want.Detail)
	}
	if pe.Message != want.Message || pe.Detail != want.Detail {
		t.Fatalf("%s = ERROR %q / %q;\n want ERROR %q / %q", call, pe.Message, pe.Detail, want.Message, want.Detail)
	}
}
