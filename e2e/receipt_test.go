//go:build e2e

package e2e

import (
	"fmt"
	"testing"

	"github.com/go-stomp/stomp/v3"
)

// TestSendReceiptFollowsConfirm checks semantics 11: a SEND's RECEIPT goes
// out only after the broker confirmed the publish, so an AMQP basic.get made
// right after the RECEIPT finds the message, every time.
func TestSendReceiptFollowsConfirm(t *testing.T) {
	t.Parallel()
	n := newNames(t) // before startGateway: cleanups run LIFO
	addr := startGateway(t)
	queue := n.queue("confirm")
	conn := dialStomp(t, addr, stomp.ConnOpt.AcceptVersion(stomp.V12))
	ch := amqpChannel(t)

	for i := range 20 {
		body := fmt.Sprintf("confirmed-%d", i)
		// go-stomp's Send with SendOpt.Receipt returns only once the RECEIPT arrived.
		if err := conn.Send("/queue/"+queue, "text/plain", []byte(body), stomp.SendOpt.Receipt); err != nil {
			t.Fatalf("SEND %d with receipt: %v", i, err)
		}
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatalf("basic.get after RECEIPT %d: %v", i, err)
		}
		if !ok {
			t.Fatalf("RECEIPT %d arrived before the broker had the message: basic.get found queue %q empty", i, queue)
		}
		if string(d.Body) != body {
			t.Fatalf("basic.get after RECEIPT %d: body %q, want %q", i, d.Body, body)
		}
	}
}

// TestRawPersistentSendReceipt sends a persistent message with raw frames
// and checks the RECEIPT (semantics 11) and delivery-mode 2 (semantics 7.1).
func TestRawPersistentSendReceipt(t *testing.T) {
	t.Parallel()
	n := newNames(t) // before startGateway: cleanups run LIFO
	addr := startGateway(t)
	queue := n.queue("persistent")
	ch := amqpChannel(t)

	c := connectRaw(t, addr, "1.2")
	send(t, c, "SEND\ndestination:/queue/"+queue+"\npersistent:true\nreceipt:persist-1\ncontent-type:text/plain\n\nkept on disk\x00")
	expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "persist-1")
	d, ok, err := ch.Get(queue, true)
	if err != nil {
		t.Fatalf("basic.get: %v", err)
	}
	if !ok {
		t.Fatalf("queue %q empty right after the RECEIPT", queue)
	}
	if string(d.Body) != "kept on disk" || d.DeliveryMode != 2 {
		t.Errorf("got body %q delivery-mode %d, want %q and 2", d.Body, d.DeliveryMode, "kept on disk")
	}

	// A SUBSCRIBE's RECEIPT follows consume-ok (semantics 11, 18): a message
	// sent right after it must be delivered to the subscription.
	send(t, c, "SUBSCRIBE\nid:s1\ndestination:/queue/"+queue+"\nreceipt:sub-1\n\n\x00")
	expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "sub-1")
	send(t, c, "SEND\ndestination:/queue/"+queue+"\nreceipt:persist-2\n\nsecond\x00")
	// The MESSAGE may overtake the SEND's RECEIPT (semantics 11: receipts go
	// out as work completes).
	frames := expectFrames(t, c, "RECEIPT", "MESSAGE")
	expectHeader(t, frames["RECEIPT"], "receipt-id", "persist-2")
	msg := frames["MESSAGE"]
	expectHeader(t, msg, "subscription", "s1")
	if string(msg.Body) != "second" {
		t.Errorf("MESSAGE body %q, want %q", msg.Body, "second")
	}
	send(t, c, "DISCONNECT\nreceipt:bye\n\n\x00")
	expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "bye")
	expectDisconnect(t, c)
}
