package gateway

import (
	"testing"
	"time"

	"github.com/stompgate/stompgate/gateway/codec"
)

// From the token's expiry on, the writer is handed nothing, whatever was
// queued; expire drops it, and what is queued afterwards (the ERROR) goes
// out.
func TestOutboundCutoff(t *testing.T) {
	o := newOutbound(1 << 20)
	msg := &codec.Frame{Command: codec.CmdMessage, Body: []byte("late")}
	o.setCutoff(time.Now().Add(time.Hour))
	o.appendFrame(msg, codec.Version12, false, nil)
	if b, _ := o.take(batch{}); len(b.buf) == 0 {
		t.Fatal("before the cutoff the writer got nothing")
	}

	o.setCutoff(time.Now().Add(-time.Millisecond))
	o.appendFrame(msg, codec.Version12, false, &autoAck{tag: 7})
	if !o.pastCutoff() {
		t.Fatal("pastCutoff is false after the cutoff")
	}
	spare := batch{buf: []byte("stale bytes of an earlier batch"), ends: []int{5}}
	b, _ := o.take(spare)
	if len(b.buf) != 0 || len(b.ends) != 0 || len(b.acks) != 0 {
		t.Fatalf("after the cutoff take handed the writer %q (%d acks)", b.buf, len(b.acks))
	}

	o.expire()
	if o.pastCutoff() {
		t.Fatal("expire left the cutoff")
	}
	o.appendFrame(&codec.Frame{Command: codec.CmdError}, codec.Version12, false, nil)
	b, _ = o.take(batch{})
	if got := string(b.buf); got != "ERROR\n\n\x00" {
		t.Fatalf("after expire the writer got %q, want only the ERROR", got)
	}
	if len(b.acks) != 0 {
		t.Fatalf("the dropped MESSAGE's ack:auto ack survived: %v", b.acks)
	}
}
