//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
	amqp "github.com/rabbitmq/amqp091-go"
)

// TestGarageMQ runs the core scenarios through stompgate in front of a
// real minimal AMQP 0-9-1 broker, Debian's garagemq (issue 7; semantics
// 17 "Minimal brokers"): the auto profile must pick generic, and connect,
// queue and topic messaging, confirm-based receipts, ack/nack with
// per-consumer qos, gateway-named temp queues and the refusals of what
// the broker cannot do must all work. One garagemq and one gateway serve
// every subtest; names are unique per run.
func TestGarageMQ(t *testing.T) {
	broker := startGarageMQ(t)
	srv, logs := startGatewayFor(t, broker.URL)
	// Cleanups run last-in first-out: after a failure, stop garagemq before
	// the gateway shuts down, so that sessions stuck in a call to a stuck
	// broker see the connection drop instead of holding Shutdown forever.
	t.Cleanup(func() {
		if t.Failed() {
			broker.stop()
		}
	})
	addr := srv.Addr().String()
	name := func(suffix string) string { return "garagemq-" + runID + "-" + suffix }

	t.Run("connect picks the generic profile", func(t *testing.T) {
		conn := dialStomp(t, addr)
		if conn.Version() != stomp.V12 {
			t.Errorf("negotiated %v, want 1.2", conn.Version())
		}
		if !strings.HasPrefix(conn.Server(), "stompgate/") {
			t.Errorf("CONNECTED server %q, want stompgate/…", conn.Server())
		}
		// The session log carries the profile (semantics 17: logged once
		// per session), and the session uses publisher confirms since
		// garagemq announces them.
		// CONNECTED is queued before "session started" is logged.
		expectSessionProfile(t, logs, srv, "generic")
	})

	t.Run("queue messaging with confirm-based receipts", func(t *testing.T) {
		queue := name("q")
		conn := dialStomp(t, addr)
		// The receipt follows garagemq's publisher confirm (semantics 11):
		// the message is in the queue when the RECEIPT arrives.
		if err := conn.Send("/queue/"+queue, "text/plain", []byte("stored"), stomp.SendOpt.Receipt,
			stomp.SendOpt.Header("x-custom", "kept")); err != nil {
			t.Fatalf("Send with receipt: %v", err)
		}
		var d amqp.Delivery
		var ok bool
		err := broker.do(t, "basic.get", func(ch *amqp.Channel) (err error) {
			d, ok, err = ch.Get(queue, true)
			return err
		})
		if err != nil || !ok {
			t.Fatalf("basic.get %s right after the RECEIPT: ok=%v err=%v", queue, ok, err)
		}
		if string(d.Body) != "stored" || d.ContentType != "text/plain" || d.Headers["x-custom"] != "kept" {
			t.Errorf("stored message %q content-type %q headers %v", d.Body, d.ContentType, d.Headers)
		}

		sub, err := conn.Subscribe("/queue/"+queue, stomp.AckAuto)
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		for _, body := range []string{"one", "two"} {
			if err := conn.Send("/queue/"+queue, "text/plain", []byte(body), stomp.SendOpt.Receipt); err != nil {
				t.Fatalf("Send %s: %v", body, err)
			}
		}
		for _, want := range []string{"one", "two"} {
			msg := receiveWithin(t, sub, 5*time.Second)
			if string(msg.Body) != want {
				t.Errorf("MESSAGE body %q, want %q", msg.Body, want)
			}
			if got := msg.Header.Get("destination"); got != "/queue/"+queue {
				t.Errorf("MESSAGE destination %q", got)
			}
		}
	})

	t.Run("topic fan-out by routing key", func(t *testing.T) {
		key := name("news")
		c := connectRaw(t, addr, "1.2")
		for _, sub := range []struct{ id, dest string }{
			{"exact", "/topic/" + key},
			{"wildcard", "/topic/" + key + ".*"},
			{"other", "/topic/" + name("sport")},
		} {
			send(t, c, "SUBSCRIBE\nid:"+sub.id+"\ndestination:"+sub.dest+"\nreceipt:"+sub.id+"\n\n\x00")
			expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", sub.id)
		}
		send(t, c, "SEND\ndestination:/topic/"+key+"\nreceipt:s1\n\nfor exact\x00")
		got := expectFrames(t, c, "RECEIPT", "MESSAGE")
		expectHeader(t, got["MESSAGE"], "subscription", "exact")
		if string(got["MESSAGE"].Body) != "for exact" {
			t.Errorf("exact subscriber got %q", got["MESSAGE"].Body)
		}
		send(t, c, "SEND\ndestination:/topic/"+key+".eu\nreceipt:s2\n\nfor wildcard\x00")
		got = expectFrames(t, c, "RECEIPT", "MESSAGE")
		expectHeader(t, got["MESSAGE"], "subscription", "wildcard")
		expectHeader(t, got["MESSAGE"], "destination", "/topic/"+key+".eu")
		if f, err := readFrame(c, 300*time.Millisecond); err == nil {
			t.Errorf("an unexpected frame (the other key's subscriber?): %s", f)
		}
	})

	t.Run("ack and nack with per-consumer prefetch", func(t *testing.T) {
		queue := name("work")
		c := connectRaw(t, addr, "1.2")
		send(t, c, "SUBSCRIBE\nid:w\ndestination:/queue/"+queue+"\nack:client-individual\nprefetch-count:1\nreceipt:sub\n\n\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "sub")
		send(t, c, "SEND\ndestination:/queue/"+queue+"\nreceipt:s1\n\nfirst\x00")
		send(t, c, "SEND\ndestination:/queue/"+queue+"\nreceipt:s2\n\nsecond\x00")
		// RECEIPTs and the first MESSAGE may interleave.
		first := receiptsAndMessage(t, c, "s1", "s2")
		if string(first.Body) != "first" {
			t.Fatalf("first MESSAGE %q", first.Body)
		}
		// prefetch-count 1 (garagemq: per_consumer_qos): nothing more until
		// the first is settled.
		if f, err := readFrame(c, 300*time.Millisecond); err == nil {
			t.Fatalf("a second MESSAGE before the first was settled: %s", f)
		}
		ackID, _ := first.Get("ack")
		send(t, c, "NACK\nid:"+ackID+"\nreceipt:n1\n\n\x00")
		again := receiptsAndMessage(t, c, "n1")
		// NACK requeues by default (stomp.default_nack_requeue): "first"
		// comes back ahead of "second".
		if string(again.Body) != "first" {
			t.Fatalf("after NACK got %q, want first again", again.Body)
		}
		ackID, _ = again.Get("ack")
		send(t, c, "ACK\nid:"+ackID+"\nreceipt:a1\n\n\x00")
		next := receiptsAndMessage(t, c, "a1")
		if string(next.Body) != "second" {
			t.Fatalf("after ACK got %q, want second", next.Body)
		}
		ackID, _ = next.Get("ack")
		send(t, c, "NACK\nid:"+ackID+"\nrequeue:false\nreceipt:n2\n\n\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "n2")
		if f, err := readFrame(c, 300*time.Millisecond); err == nil {
			t.Fatalf("a MESSAGE after the last one was dropped: %s", f)
		}
		send(t, c, "UNSUBSCRIBE\nid:w\nreceipt:u\n\n\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "u")
		// Both settled: the queue is empty on the broker.
		var q amqp.Queue
		err := broker.do(t, "queue.declare passive", func(ch *amqp.Channel) (err error) {
			q, err = ch.QueueDeclarePassive(queue, true, false, false, false, nil)
			return err
		})
		if err != nil || q.Messages != 0 {
			t.Errorf("queue %s after ack and nack: %d messages, err %v; want 0", queue, q.Messages, err)
		}
	})

	t.Run("temp-queue reply with a gateway-named queue", func(t *testing.T) {
		service := name("svc")
		responder := connectRaw(t, addr, "1.2")
		send(t, responder, "SUBSCRIBE\nid:svc\ndestination:/queue/"+service+"\nreceipt:sub\n\n\x00")
		expectHeader(t, expectFrame(t, responder, "RECEIPT"), "receipt-id", "sub")

		requester := connectRaw(t, addr, "1.2")
		send(t, requester, "SEND\ndestination:/queue/"+service+"\nreply-to:/temp-queue/answers\nreceipt:req\n\nquestion\x00")
		expectHeader(t, expectFrame(t, requester, "RECEIPT"), "receipt-id", "req")

		request := expectFrame(t, responder, "MESSAGE")
		replyTo, _ := request.Get("reply-to")
		// garagemq cannot name queues (queue.declare "" is 503
		// COMMAND_INVALID): semantics 9/17, stompgate-temp-….
		if !strings.HasPrefix(replyTo, "/reply-queue/stompgate-temp-") {
			t.Fatalf("reply-to %q, want /reply-queue/stompgate-temp-…", replyTo)
		}
		send(t, responder, "SEND\ndestination:"+replyTo+"\nreceipt:rep\n\nanswer\x00")
		expectHeader(t, expectFrame(t, responder, "RECEIPT"), "receipt-id", "rep")

		reply := expectFrame(t, requester, "MESSAGE")
		if string(reply.Body) != "answer" {
			t.Errorf("reply body %q, want answer", reply.Body)
		}
		expectHeader(t, reply, "subscription", "/temp-queue/answers")
		expectHeader(t, reply, "destination", "/queue/"+strings.TrimPrefix(replyTo, "/reply-queue/"))
	})

	t.Run("transaction commit", func(t *testing.T) {
		queue := name("tx")
		c := connectRaw(t, addr, "1.2")
		send(t, c, "BEGIN\ntransaction:t1\n\n\x00")
		send(t, c, "SEND\ndestination:/queue/"+queue+"\ntransaction:t1\n\nin tx\x00")
		send(t, c, "COMMIT\ntransaction:t1\nreceipt:c1\n\n\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "c1")
		var d amqp.Delivery
		var ok bool
		err := broker.do(t, "basic.get", func(ch *amqp.Channel) (err error) {
			d, ok, err = ch.Get(queue, true)
			return err
		})
		if err != nil || !ok || string(d.Body) != "in tx" {
			t.Fatalf("basic.get after COMMIT receipt: %q ok=%v err=%v", d.Body, ok, err)
		}
	})

	// Semantics 17: what garagemq cannot do is an ERROR Invalid header
	// before any declare or publish, never a silent drop.
	refusals := []struct {
		name, frame, body string
		queue             string // must not exist afterwards
	}{
		{"queue argument on SEND", "SEND\ndestination:/queue/" + name("limited") + "\nx-max-length:10\nreceipt:r\n\nx\x00",
			"'x-max-length' is not supported by broker profile generic\n", name("limited")},
		{"quorum queue on SUBSCRIBE", "SUBSCRIBE\nid:q\ndestination:/queue/" + name("quorum") + "\nx-queue-type:quorum\nreceipt:r\n\n\x00",
			"'x-queue-type: quorum' is not supported by broker profile generic\n", name("quorum")},
		{"per-message expiration", "SEND\ndestination:/queue/" + name("ttl") + "\nexpiration:5000\nreceipt:r\n\nx\x00",
			"'expiration' is not supported by broker profile generic\n", name("ttl")},
	}
	for _, tc := range refusals {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			c := connectRaw(t, addr, "1.2")
			send(t, c, tc.frame)
			expectError(t, c, "Invalid header", "r", tc.body)
			err := broker.do(t, "queue.declare passive", func(ch *amqp.Channel) error {
				_, err := ch.QueueDeclarePassive(tc.queue, true, false, false, false, nil)
				return err
			})
			if err == nil {
				t.Errorf("queue %s was declared despite the refusal", tc.queue)
			}
		})
	}

	t.Run("classic queue type passes", func(t *testing.T) {
		queue := name("classic")
		conn := dialStomp(t, addr)
		if err := conn.Send("/queue/"+queue, "text/plain", []byte("c"), stomp.SendOpt.Receipt,
			stomp.SendOpt.Header("x-queue-type", "classic")); err != nil {
			t.Fatalf("Send with x-queue-type classic: %v", err)
		}
		sub, err := conn.Subscribe("/queue/"+queue, stomp.AckAuto, func(f *frame.Frame) error {
			f.Header.Add("x-queue-type", "classic")
			return nil
		})
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		if got := receiveWithin(t, sub, 5*time.Second); string(got.Body) != "c" {
			t.Errorf("got %q", got.Body)
		}
	})

	// Every subtest ended sessions that had consumers on auto-delete
	// queues; garagemq must still answer (genericProfile.ExclusiveQueues).
	t.Run("broker still answers after the sessions ended", func(t *testing.T) {
		err := broker.do(t, "queue.declare", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare(name("alive"), false, true, false, false, nil)
			return err
		})
		if err != nil {
			t.Fatalf("garagemq after the scenarios: %v", err)
		}
	})
}

// receiptsAndMessage reads the RECEIPTs for receiptIDs and exactly one
// MESSAGE, in any order, and returns the MESSAGE.
func receiptsAndMessage(t *testing.T, c *rawConn, receiptIDs ...string) *rawFrame {
	t.Helper()
	want := make(map[string]bool, len(receiptIDs))
	for _, id := range receiptIDs {
		want[id] = true
	}
	var msg *rawFrame
	for range len(receiptIDs) + 1 {
		f := readAnyFrame(t, c)
		switch f.Command {
		case "RECEIPT":
			id, _ := f.Get("receipt-id")
			if !want[id] {
				t.Fatalf("unexpected %s, want receipts %v", f, receiptIDs)
			}
			delete(want, id)
		case "MESSAGE":
			if msg != nil {
				t.Fatalf("a second MESSAGE %s after %s", f, msg)
			}
			msg = f
		default:
			t.Fatalf("unexpected %s", f)
		}
	}
	return msg
}

func readAnyFrame(t *testing.T, c *rawConn) *rawFrame {
	t.Helper()
	f, err := readFrame(c, frameTimeout)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return f
}
