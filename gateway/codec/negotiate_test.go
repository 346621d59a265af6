package codec_test

import (
	"errors"
	"testing"

	"github.com/stompgate/stompgate/gateway/codec"
)

func TestNegotiateVersion(t *testing.T) {
	tests := []struct {
		accept  string
		present bool
		want    codec.Version
		ok      bool
	}{
		{"", false, codec.Version10, true},
		{"1.0", true, codec.Version10, true},
		{"1.1", true, codec.Version11, true},
		{"1.0,1.1,1.2", true, codec.Version12, true},
		{"1.2,1.0", true, codec.Version12, true},
		{" 1.0 , 1.1 ", true, codec.Version11, true},
		{"1.1,2.0,1.3", true, codec.Version11, true},
		{"2.0", true, codec.VersionNone, false},
		{"", true, codec.VersionNone, false},
		{"1.2.0", true, codec.VersionNone, false},
		{"1.0;1.1", true, codec.VersionNone, false},
	}
	for _, tt := range tests {
		v, ok := codec.NegotiateVersion(tt.accept, tt.present)
		if v != tt.want || ok != tt.ok {
			t.Errorf("NegotiateVersion(%q, %v) = %v, %v; want %v, %v", tt.accept, tt.present, v, ok, tt.want, tt.ok)
		}
	}
}

func TestParseHeartBeat(t *testing.T) {
	good := []struct {
		value  string
		cx, cy int64
	}{
		{"0,0", 0, 0},
		{"1000,2500", 1000, 2500},
		{"2147483647,0", 2147483647, 0},
		{"007,8", 7, 8},
	}
	for _, tt := range good {
		cx, cy, err := codec.ParseHeartBeat(tt.value)
		if err != nil || cx != tt.cx || cy != tt.cy {
			t.Errorf("ParseHeartBeat(%q) = %d, %d, %v; want %d, %d", tt.value, cx, cy, err, tt.cx, tt.cy)
		}
	}
	for _, value := range []string{"", "0", "0,", ",0", "1,2,3", "-1,0", "0, 0", " 0,0", "2147483648,0", "0,99999999999999999999", "a,b"} {
		_, _, err := codec.ParseHeartBeat(value)
		var pe *codec.ProtocolError
		if !errors.As(err, &pe) || !errors.Is(err, codec.ErrBadHeartBeat) {
			t.Errorf("ParseHeartBeat(%q): got %v, want a ProtocolError of ErrBadHeartBeat", value, err)
			continue
		}
		if pe.Message != "Bad CONNECT" || pe.Detail != "Invalid heart-beat header '"+value+"'\n" {
			t.Errorf("ParseHeartBeat(%q): got %#v", value, pe)
		}
	}
}
