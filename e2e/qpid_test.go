//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/config"
	"github.com/stompgate/stompgate/mapping"
)

// TestQpidBrokerJ runs the broker-neutral scenarios through stompgate in
// front of a real Qpid Broker-J 10.1.0 (issue 15): amqp.profile auto must
// pick qpid, and every difference from RabbitMQ must be invisible to the
// STOMP client or an ERROR that names the limit (README "Qpid Broker-J").
// One broker and one gateway serve the subtests; names are unique per run.
func TestQpidBrokerJ(t *testing.T) {
	broker := startQpid(t)
	srv, logs := startGatewayFor(t, broker.URL)
	addr := srv.Addr().String()
	name := func(suffix string) string { return "qpid-" + runID + "-" + suffix }

	t.Run("connect picks the qpid profile with confirms", func(t *testing.T) {
		conn := dialStomp(t, addr)
		if conn.Version() != stomp.V12 {
			t.Errorf("negotiated %v, want 1.2", conn.Version())
		}
		expectSessionProfile(t, logs, srv, "qpid")
	})

	t.Run("refused login and unknown vhost", func(t *testing.T) {
		c := dialRaw(t, addr)
		send(t, c, "CONNECT\naccept-version:1.2\nlogin:guest\npasscode:wrong\nhost:/\n\n\x00")
		expectError(t, c, "Bad CONNECT", "", "Access refused for user 'guest'\n")
		c = dialRaw(t, addr)
		send(t, c, "CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\nhost:nosuch\n\n\x00")
		f := expectFrame(t, c, "ERROR")
		expectHeader(t, f, "message", "Bad CONNECT")
		if !strings.Contains(string(f.Body), "Virtual host 'nosuch' access denied") {
			t.Errorf("unknown vhost ERROR body %q", f.Body)
		}
		// vhost "/" (connectRaw's host) and "default" both reach Broker-J's
		// default virtual host.
		c = dialRaw(t, addr)
		send(t, c, "CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\nhost:default\n\n\x00")
		expectFrame(t, c, "CONNECTED")
	})

	t.Run("queue: receipt after the confirm, headers and properties both ways", func(t *testing.T) {
		queue := name("q")
		broker.deleteAtCleanup(t, queue)
		c := connectRaw(t, addr, "1.2")
		send(t, c, "SEND\ndestination:/queue/"+queue+"\ncontent-type:text/plain\ncorrelation-id:c-1\nreply-to:/queue/"+name("back")+
			"\npriority:7\npersistent:true\ntype:kind\napp-id:app\nx-custom:kept\nx-number:42\nreceipt:r1\n\nstored\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "r1")
		var d amqp.Delivery
		var ok bool
		err := broker.do(t, "basic.get", func(ch *amqp.Channel) (err error) {
			d, ok, err = ch.Get(queue, true)
			return err
		})
		if err != nil || !ok {
			t.Fatalf("basic.get %s right after the RECEIPT: ok=%v err=%v", queue, ok, err)
		}
		if string(d.Body) != "stored" || d.ContentType != "text/plain" || d.CorrelationId != "c-1" || d.ReplyTo != "/queue/"+name("back") ||
			d.Priority != 7 || d.DeliveryMode != 2 || d.Type != "kind" || d.AppId != "app" ||
			d.Headers["x-custom"] != "kept" || d.Headers["x-number"] != "42" {
			t.Errorf("stored message: body %q props %+v headers %v", d.Body, d, d.Headers)
		}

		// AMQP → STOMP: an amqp091-go publisher on Broker-J's side.
		send(t, c, "SUBSCRIBE\nid:s\ndestination:/queue/"+queue+"\nreceipt:sub\n\n\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "sub")
		err = broker.do(t, "publish", func(ch *amqp.Channel) error {
			return ch.Publish("", queue, false, false, amqp.Publishing{
				ContentType: "application/json", ContentEncoding: "utf-8", CorrelationId: "c-2", ReplyTo: "answers",
				MessageId: "m-2", Type: "t", AppId: "a", UserId: "guest", Priority: 3, DeliveryMode: 2,
				Timestamp: time.Unix(1700000000, 0),
				Headers:   amqp.Table{"s": "str", "i": int32(-5), "l": int64(1 << 40), "b": true, "f": 1.5},
				Body:      []byte(`{"n":1}`),
			})
		})
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		m := expectFrame(t, c, "MESSAGE")
		for h, want := range map[string]string{
			"destination": "/queue/" + queue, "content-type": "application/json", "content-encoding": "utf-8",
			"correlation-id": "c-2", "reply-to": "/reply-queue/answers", "amqp-message-id": "m-2", "type": "t", "app-id": "a",
			"user-id": "guest", "priority": "3", "persistent": "true", "timestamp": "1700000000",
			"s": "str", "i": "-5", "l": strconv.Itoa(1 << 40),
		} {
			expectHeader(t, m, h, want)
		}
		// Booleans and floats are not STOMP headers, with either broker
		// (semantics: only strings and integers map).
		for _, h := range []string{"b", "f"} {
			if v, ok := m.Get(h); ok {
				t.Errorf("MESSAGE header %s:%s, want none", h, v)
			}
		}
		if string(m.Body) != `{"n":1}` {
			t.Errorf("MESSAGE body %q", m.Body)
		}
	})

	t.Run("topic fan-out and /exchange", func(t *testing.T) {
		key := name("news")
		c := connectRaw(t, addr, "1.2")
		for _, sub := range []struct{ id, dest string }{
			{"exact", "/topic/" + key},
			{"wildcard", "/topic/" + key + ".*"},
			{"direct", "/exchange/amq.direct/" + key},
		} {
			send(t, c, "SUBSCRIBE\nid:"+sub.id+"\ndestination:"+sub.dest+"\nreceipt:"+sub.id+"\n\n\x00")
			expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", sub.id)
		}
		send(t, c, "SEND\ndestination:/topic/"+key+".eu\nreceipt:s1\n\nfor wildcard\x00")
		got := expectFrames(t, c, "RECEIPT", "MESSAGE")
		expectHeader(t, got["MESSAGE"], "subscription", "wildcard")
		expectHeader(t, got["MESSAGE"], "destination", "/topic/"+key+".eu")
		send(t, c, "SEND\ndestination:/exchange/amq.direct/"+key+"\nreceipt:s2\n\nfor direct\x00")
		got = expectFrames(t, c, "RECEIPT", "MESSAGE")
		expectHeader(t, got["MESSAGE"], "subscription", "direct")
		expectHeader(t, got["MESSAGE"], "destination", "/exchange/amq.direct/"+key)
		if f, err := readFrame(c, 300*time.Millisecond); err == nil {
			t.Errorf("an unexpected frame: %s", f)
		}
	})

	t.Run("/amq/queue of a queue made on Broker-J's side", func(t *testing.T) {
		queue := name("amq")
		broker.deleteAtCleanup(t, queue)
		if err := broker.do(t, "declare", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare(queue, true, false, false, false, nil)
			return err
		}); err != nil {
			t.Fatalf("declare %s: %v", queue, err)
		}
		c := connectRaw(t, addr, "1.2")
		send(t, c, "SEND\ndestination:/amq/queue/"+queue+"\nreceipt:r\n\nvia amq\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "r")
		send(t, c, "SUBSCRIBE\nid:a\ndestination:/amq/queue/"+queue+"\nack:client\n\n\x00")
		m := expectFrame(t, c, "MESSAGE")
		// As with RabbitMQ, a delivery names its queue as /queue/<name>.
		expectHeader(t, m, "destination", "/queue/"+queue)
		// NACK requeue:false on a queue stompgate did not declare: it has
		// no x-qpid-maximum-delivery-count, so Broker-J keeps the message
		// (not redelivered to this consumer; README "Qpid Broker-J").
		broker.expectNackKept(t, c, m, queue)
		// A missing queue is ERROR not_found, as with RabbitMQ.
		c = connectRaw(t, addr, "1.2")
		send(t, c, "SUBSCRIBE\nid:m\ndestination:/amq/queue/"+name("missing")+"\nreceipt:r\n\n\x00")
		expectHeader(t, expectFrame(t, c, "ERROR"), "message", "not_found")
	})

	t.Run("ack client, client-individual and NACK with and without requeue", func(t *testing.T) {
		queue := name("work")
		broker.deleteAtCleanup(t, queue)
		c := connectRaw(t, addr, "1.2")
		send(t, c, "SUBSCRIBE\nid:w\ndestination:/queue/"+queue+"\nack:client-individual\nprefetch-count:1\nreceipt:sub\n\n\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "sub")
		send(t, c, "SEND\ndestination:/queue/"+queue+"\nreceipt:s1\n\nfirst\x00")
		send(t, c, "SEND\ndestination:/queue/"+queue+"\nreceipt:s2\n\nsecond\x00")
		first := receiptsAndMessage(t, c, "s1", "s2")
		if string(first.Body) != "first" {
			t.Fatalf("first MESSAGE %q", first.Body)
		}
		if f, err := readFrame(c, 300*time.Millisecond); err == nil {
			t.Fatalf("a second MESSAGE before the first was settled (prefetch-count 1): %s", f)
		}
		send(t, c, "NACK\nid:"+ackHeader(t, first)+"\nreceipt:n1\n\n\x00")
		again := receiptsAndMessage(t, c, "n1")
		if string(again.Body) != "first" {
			t.Fatalf("after NACK got %q, want first again", again.Body)
		}
		expectHeader(t, again, "redelivered", "true")
		send(t, c, "ACK\nid:"+ackHeader(t, again)+"\nreceipt:a1\n\n\x00")
		next := receiptsAndMessage(t, c, "a1")
		if string(next.Body) != "second" {
			t.Fatalf("after ACK got %q, want second", next.Body)
		}
		// requeue:false discards (x-qpid-maximum-delivery-count 1 on the
		// gateway's queue): no loop, nothing stuck.
		send(t, c, "NACK\nid:"+ackHeader(t, next)+"\nrequeue:false\nreceipt:n2\n\n\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "n2")
		if f, err := readFrame(c, 500*time.Millisecond); err == nil {
			t.Fatalf("a MESSAGE after the last one was dropped: %s", f)
		}
		send(t, c, "UNSUBSCRIBE\nid:w\nreceipt:u\n\n\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "u")
		if n, err := broker.depth(t, queue); err != nil || n != 0 {
			t.Errorf("queue %s after ack and nack requeue:false: %d messages, err %v; want 0", queue, n, err)
		}

		// ack:client is cumulative.
		send(t, c, "SUBSCRIBE\nid:c\ndestination:/queue/"+queue+"\nack:client\nreceipt:sub2\n\n\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "sub2")
		var last *rawFrame
		for i := range 3 {
			send(t, c, "SEND\ndestination:/queue/"+queue+"\n\nc"+strconv.Itoa(i)+"\x00")
		}
		for i := range 3 {
			last = expectFrame(t, c, "MESSAGE")
			if string(last.Body) != "c"+strconv.Itoa(i) {
				t.Fatalf("ack:client MESSAGE %d %q", i, last.Body)
			}
		}
		send(t, c, "ACK\nid:"+ackHeader(t, last)+"\nreceipt:a2\n\n\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "a2")
		send(t, c, "DISCONNECT\nreceipt:bye\n\n\x00")
		expectFrame(t, c, "RECEIPT")
		if n, err := broker.depth(t, queue); err != nil || n != 0 {
			t.Errorf("queue %s after a cumulative ACK: %d messages, err %v; want 0", queue, n, err)
		}
	})

	t.Run("transactions commit and abort", func(t *testing.T) {
		queue := name("tx")
		broker.deleteAtCleanup(t, queue)
		c := connectRaw(t, addr, "1.2")
		send(t, c, "BEGIN\ntransaction:t1\n\n\x00")
		send(t, c, "SEND\ndestination:/queue/"+queue+"\ntransaction:t1\n\naborted\x00")
		send(t, c, "ABORT\ntransaction:t1\nreceipt:a\n\n\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "a")
		send(t, c, "BEGIN\ntransaction:t2\n\n\x00")
		send(t, c, "SEND\ndestination:/queue/"+queue+"\ntransaction:t2\n\nin tx\x00")
		send(t, c, "COMMIT\ntransaction:t2\nreceipt:c\n\n\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "c")
		var d amqp.Delivery
		var ok bool
		err := broker.do(t, "basic.get", func(ch *amqp.Channel) (err error) {
			d, ok, err = ch.Get(queue, true)
			return err
		})
		if err != nil || !ok || string(d.Body) != "in tx" {
			t.Fatalf("basic.get after COMMIT receipt: %q ok=%v err=%v", d.Body, ok, err)
		}
		if n, _ := broker.depth(t, queue); n != 0 {
			t.Errorf("the aborted SEND reached %s (%d left)", queue, n)
		}
	})

	t.Run("temp-queue request/reply with a Broker-J-named queue", func(t *testing.T) {
		service := name("svc")
		broker.deleteAtCleanup(t, service)
		responder := connectRaw(t, addr, "1.2")
		send(t, responder, "SUBSCRIBE\nid:svc\ndestination:/queue/"+service+"\nreceipt:sub\n\n\x00")
		expectHeader(t, expectFrame(t, responder, "RECEIPT"), "receipt-id", "sub")
		requester := connectRaw(t, addr, "1.2")
		send(t, requester, "SEND\ndestination:/queue/"+service+"\nreply-to:/temp-queue/answers\nreceipt:req\n\nquestion\x00")
		expectHeader(t, expectFrame(t, requester, "RECEIPT"), "receipt-id", "req")
		request := expectFrame(t, responder, "MESSAGE")
		replyTo, _ := request.Get("reply-to")
		if !strings.HasPrefix(replyTo, "/reply-queue/tmp_") {
			t.Fatalf("reply-to %q, want /reply-queue/tmp_… (Broker-J names server-named queues tmp_<uuid>)", replyTo)
		}
		send(t, responder, "SEND\ndestination:"+replyTo+"\nreceipt:rep\n\nanswer\x00")
		expectHeader(t, expectFrame(t, responder, "RECEIPT"), "receipt-id", "rep")
		reply := expectFrame(t, requester, "MESSAGE")
		if string(reply.Body) != "answer" {
			t.Errorf("reply body %q, want answer", reply.Body)
		}
		expectHeader(t, reply, "subscription", "/temp-queue/answers")
		// Gone with the session (exclusive, auto-delete).
		tmp := strings.TrimPrefix(replyTo, "/reply-queue/")
		send(t, requester, "DISCONNECT\nreceipt:bye\n\n\x00")
		expectFrame(t, requester, "RECEIPT")
		deadline := time.Now().Add(3 * time.Second)
		for {
			if _, err := broker.depth(t, tmp); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("temp queue %s still exists after its session ended", tmp)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("durable subscription survives a reconnect", func(t *testing.T) {
		rk, id := name("durable"), "dur-1"
		queue := mapping.DurableSubscriptionName(rk, id)
		broker.deleteAtCleanup(t, queue)
		c := connectRaw(t, addr, "1.2")
		subscribeDurable(t, c, id, "/topic/"+rk)
		disconnectRaw(t, c)
		c = connectRaw(t, addr, "1.2")
		for i := range 3 {
			send(t, c, "SEND\ndestination:/topic/"+rk+"\nreceipt:d"+strconv.Itoa(i)+"\n\nd"+strconv.Itoa(i)+"\x00")
			expectFrame(t, c, "RECEIPT")
		}
		if n, err := broker.depth(t, queue); err != nil || n != 3 {
			t.Fatalf("durable subscription queue %s: %d messages, err %v; want 3", queue, n, err)
		}
		subscribeDurable(t, c, id, "/topic/"+rk)
		for i := range 3 {
			m := expectFrame(t, c, "MESSAGE")
			if string(m.Body) != "d"+strconv.Itoa(i) {
				t.Errorf("durable MESSAGE %d %q", i, m.Body)
			}
			send(t, c, "ACK\nid:"+ackHeader(t, m)+"\n\n\x00")
		}
		send(t, c, "UNSUBSCRIBE\nid:"+id+"\ndurable:true\nreceipt:unsub\n\n\x00")
		expectFrame(t, c, "RECEIPT")
		disconnectRaw(t, c)
	})

	t.Run("bodies of several MiB both ways", func(t *testing.T) {
		queue := name("big")
		broker.deleteAtCleanup(t, queue)
		body := bytes.Repeat([]byte("0123456789abcdef"), 5<<20/16) // 5 MiB
		c := connectRaw(t, addr, "1.2")
		send(t, c, "SEND\ndestination:/queue/"+queue+"\ncontent-length:"+strconv.Itoa(len(body))+"\nreceipt:big\n\n"+string(body)+"\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "big")
		send(t, c, "SUBSCRIBE\nid:b\ndestination:/queue/"+queue+"\n\n\x00")
		m := expectFrame(t, c, "MESSAGE")
		if !bytes.Equal(m.Body, body) {
			t.Fatalf("5 MiB body came back as %d bytes", len(m.Body))
		}
		// And one published on Broker-J's side.
		if err := broker.do(t, "publish 5 MiB", func(ch *amqp.Channel) error {
			return ch.Publish("", queue, false, false, amqp.Publishing{Body: body})
		}); err != nil {
			t.Fatal(err)
		}
		m = expectFrame(t, c, "MESSAGE")
		if !bytes.Equal(m.Body, body) {
			t.Fatalf("5 MiB AMQP body arrived as %d bytes", len(m.Body))
		}
	})

	t.Run("heart-beats", func(t *testing.T) {
		c := dialRaw(t, addr)
		send(t, c, "CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\nhost:/\nheart-beat:0,1000\n\n\x00")
		f := expectFrame(t, c, "CONNECTED")
		hb, _ := f.Get("heart-beat")
		if !strings.HasPrefix(hb, "1000,") {
			t.Fatalf("CONNECTED heart-beat %q, want 1000,…", hb)
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 1)
		if _, err := c.r.Read(buf); err != nil || buf[0] != '\n' {
			t.Fatalf("no heart-beat LF within 2 s: %q %v", buf, err)
		}
	})

	t.Run("unroutable SEND", func(t *testing.T) {
		c := connectRaw(t, addr, "1.2")
		// Nothing bound: the message is dropped, the RECEIPT still comes and
		// the session stays (as with RabbitMQ; the gateway never sets
		// mandatory).
		send(t, c, "SEND\ndestination:/exchange/amq.direct/"+name("nobody")+"\nreceipt:u\n\nlost\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "u")
		send(t, c, "SEND\ndestination:/topic/"+name("nobody")+"\nreceipt:u2\n\nlost\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "u2")
		// An exchange that does not exist: ERROR not_found (channel 404).
		send(t, c, "SEND\ndestination:/exchange/"+name("nox")+"/k\nreceipt:u3\n\nx\x00")
		f := expectFrame(t, c, "ERROR")
		expectHeader(t, f, "message", "not_found")
	})

	t.Run("expiration is relative for the client", func(t *testing.T) {
		queue := name("ttl")
		broker.deleteAtCleanup(t, queue)
		c := connectRaw(t, addr, "1.2")
		send(t, c, "SEND\ndestination:/queue/"+queue+"\nexpiration:1\nreceipt:e1\n\ngone\x00")
		expectFrame(t, c, "RECEIPT")
		send(t, c, "SEND\ndestination:/queue/"+queue+"\nexpiration:60000\nreceipt:e2\n\nkept\x00")
		expectFrame(t, c, "RECEIPT")
		time.Sleep(50 * time.Millisecond)
		send(t, c, "SUBSCRIBE\nid:e\ndestination:/queue/"+queue+"\n\n\x00")
		m := expectFrame(t, c, "MESSAGE")
		if string(m.Body) != "kept" {
			t.Fatalf("first MESSAGE %q, want kept (expiration:1 must have expired)", m.Body)
		}
		exp, _ := m.Get("expiration")
		if ms, err := strconv.Atoi(exp); err != nil || ms <= 0 || ms > 60000 {
			t.Errorf("MESSAGE expiration %q, want the milliseconds left (0 < ms ≤ 60000)", exp)
		}
		send(t, c, "SEND\ndestination:/queue/"+queue+"\nexpiration:soon\nreceipt:e3\n\nx\x00")
		expectHeader(t, expectFrame(t, c, "ERROR"), "message", "Invalid header")
	})

	// Broker-J closes the whole connection (542) on an unknown queue
	// argument: the gateway refuses before declaring anything.
	refusals := []struct {
		name, frame, body, queue string
	}{
		{"x-max-length on SEND", "SEND\ndestination:/queue/" + name("limited") + "\nx-max-length:10\nreceipt:r\n\nx\x00",
			"'x-max-length' is not supported by broker profile qpid\n", name("limited")},
		{"x-message-ttl on SUBSCRIBE", "SUBSCRIBE\nid:q\ndestination:/queue/" + name("ttlq") + "\nx-message-ttl:100\nreceipt:r\n\n\x00",
			"'x-message-ttl' is not supported by broker profile qpid\n", name("ttlq")},
		{"quorum queue", "SUBSCRIBE\nid:q\ndestination:/queue/" + name("quorum") + "\nx-queue-type:quorum\nreceipt:r\n\n\x00",
			"'x-queue-type: quorum' is not supported by broker profile qpid\n", name("quorum")},
		{"dead-letter exchange", "SEND\ndestination:/queue/" + name("dlx") + "\nx-dead-letter-exchange:amq.fanout\nreceipt:r\n\nx\x00",
			"'x-dead-letter-exchange' is not supported by broker profile qpid\n", name("dlx")},
	}
	for _, tc := range refusals {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			c := connectRaw(t, addr, "1.2")
			send(t, c, tc.frame)
			expectError(t, c, "Invalid header", "r", tc.body)
			if _, err := broker.depth(t, tc.queue); err == nil {
				t.Errorf("queue %s was declared despite the refusal", tc.queue)
			}
		})
	}

	t.Run("refused: exclusive durable queue", func(t *testing.T) {
		queue := name("exdur")
		c := connectRaw(t, addr, "1.2")
		send(t, c, "SEND\ndestination:/queue/"+queue+"\nexclusive:true\nreceipt:r\n\nx\x00")
		expectError(t, c, "Invalid header", "r",
			"'exclusive' queues must not be durable on broker profile qpid: queue '"+queue+"' (Qpid Broker-J would close the AMQP connection)\n")
		if _, err := broker.depth(t, queue); err == nil {
			t.Errorf("queue %s was declared despite the refusal", queue)
		}
		// Not durable, it is fine (and goes with the session).
		c = connectRaw(t, addr, "1.2")
		send(t, c, "SUBSCRIBE\nid:x\ndestination:/queue/"+name("exclusive")+"\nexclusive:true\ndurable:false\nreceipt:r\n\n\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "r")
	})

	t.Run("a /queue made on Broker-J's side without a delivery count", func(t *testing.T) {
		queue := name("plain")
		broker.deleteAtCleanup(t, queue)
		if err := broker.do(t, "declare", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare(queue, true, false, false, false, nil)
			return err
		}); err != nil {
			t.Fatalf("declare %s: %v", queue, err)
		}
		c := connectRaw(t, addr, "1.2")
		send(t, c, "SUBSCRIBE\nid:p\ndestination:/queue/"+queue+"\nack:client\nreceipt:s\n\n\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "s")
		send(t, c, "SEND\ndestination:/queue/"+queue+"\n\nx\x00")
		m := expectFrame(t, c, "MESSAGE")
		// Broker-J ignores the arguments of a redeclare: the queue keeps no
		// delivery count, and the NACKed message stays (README).
		broker.expectNackKept(t, c, m, queue)
	})

	t.Run("another session's exclusive queue ends only the session that touches it", func(t *testing.T) {
		service := name("excl")
		broker.deleteAtCleanup(t, service)
		owner := connectRaw(t, addr, "1.2")
		send(t, owner, "SEND\ndestination:/queue/"+service+"\nreply-to:/temp-queue/mine\nreceipt:r\n\nx\x00")
		expectFrame(t, owner, "RECEIPT")
		var replyTo string
		if err := broker.do(t, "basic.get", func(ch *amqp.Channel) error {
			d, ok, err := ch.Get(service, true)
			if err == nil && !ok {
				err = fmt.Errorf("no request in %s", service)
			}
			replyTo = d.ReplyTo
			return err
		}); err != nil {
			t.Fatal(err)
		}
		// Broker-J closes the whole AMQP connection (403) where RabbitMQ
		// closes the channel (405): per-session connections keep that to
		// the intruder.
		intruder := connectRaw(t, addr, "1.2")
		send(t, intruder, "SUBSCRIBE\nid:i\ndestination:/amq/queue/"+replyTo+"\nreceipt:r\n\n\x00")
		f := expectFrame(t, intruder, "ERROR")
		expectHeader(t, f, "message", "access_refused")
		if !strings.Contains(string(f.Body), "incompatible exclusivity policy") {
			t.Errorf("intruder's ERROR body %q", f.Body)
		}
		send(t, owner, "SEND\ndestination:/queue/"+service+"\nreceipt:still\n\nstill\x00")
		expectHeader(t, expectFrame(t, owner, "RECEIPT"), "receipt-id", "still")
	})

	t.Run("x-max-priority maps to x-qpid-priorities", func(t *testing.T) {
		queue := name("prio")
		broker.deleteAtCleanup(t, queue)
		c := connectRaw(t, addr, "1.2")
		for _, p := range []string{"1", "9", "5"} {
			send(t, c, "SEND\ndestination:/queue/"+queue+"\nx-max-priority:10\npriority:"+p+"\nreceipt:p"+p+"\n\np"+p+"\x00")
			expectFrame(t, c, "RECEIPT")
		}
		send(t, c, "SUBSCRIBE\nid:p\ndestination:/queue/"+queue+"\nx-max-priority:10\n\n\x00")
		var got []string
		for range 3 {
			got = append(got, string(expectFrame(t, c, "MESSAGE").Body))
		}
		if strings.Join(got, ",") != "p9,p5,p1" {
			t.Errorf("priority order %v, want p9,p5,p1", got)
		}
	})

	t.Run("channel-max 256: ERROR names the limit", func(t *testing.T) {
		c := connectRaw(t, addr, "1.2")
		var f *rawFrame
		for i := 0; i < 300 && f == nil; i++ {
			send(t, c, fmt.Sprintf("SUBSCRIBE\nid:%d\ndestination:/topic/%s\nreceipt:r%d\n\n\x00", i, name("many"), i))
			got := readAnyFrame(t, c)
			switch got.Command {
			case "RECEIPT":
			case "ERROR":
				f = got
				// 256 channels: one per subscription, the publisher
				// channel opens with the first SEND.
				if i != 256 {
					t.Errorf("ERROR at subscription %d, want at 256 (channels 1–256 all subscribe)", i)
				}
			default:
				t.Fatalf("unexpected %s", got)
			}
		}
		if f == nil {
			t.Fatal("300 subscriptions on one session, and no ERROR")
		}
		expectHeader(t, f, "message", "Too many subscriptions")
		if !strings.Contains(string(f.Body), "256 channels per AMQP connection (channel-max)") {
			t.Errorf("ERROR body %q does not name channel-max 256", f.Body)
		}
		// The gateway is fine afterwards.
		c2 := connectRaw(t, addr, "1.2")
		send(t, c2, "SEND\ndestination:/queue/"+name("after")+"\nreceipt:x\n\nx\x00")
		expectFrame(t, c2, "RECEIPT")
		broker.deleteAtCleanup(t, name("after"))
	})

	t.Run("channel.flow pauses the session instead of a 311", func(t *testing.T) {
		queue := name("flow")
		broker.deleteAtCleanup(t, queue)
		if err := broker.do(t, "declare capped", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare(queue, false, false, false, false,
				amqp.Table{"x-qpid-capacity": int64(10000), "x-qpid-flow-resume-capacity": int64(5000)})
			return err
		}); err != nil {
			t.Fatalf("declare %s: %v", queue, err)
		}
		c := connectRaw(t, addr, "1.2")
		payload := strings.Repeat("x", 1000)
		// Messages of 1000 bytes fill the 10,000-byte queue: after about
		// ten, Broker-J sends channel.flow(false) and the session holds the
		// next SEND back, so its RECEIPT does not come. Exactly when the
		// flow arrives depends on timing, so fill one SEND at a time until
		// a RECEIPT stays away.
		const total = 20
		receipts, sent := 0, 0
		for sent < total {
			send(t, c, "SEND\ndestination:/amq/queue/"+queue+"\nreceipt:f"+strconv.Itoa(sent)+"\n\n"+payload+"\x00")
			sent++
			f, err := readFrame(c, 2*time.Second)
			if err != nil {
				break // held back: flow-stopped
			}
			if f.Command != "RECEIPT" {
				t.Fatalf("while filling the queue: %s", f)
			}
			receipts++
		}
		if receipts >= total {
			t.Fatalf("all %d receipts arrived although the queue holds 10000 bytes at most: no channel.flow?", total)
		}
		// The rest must wait too: published anyway, Broker-J would close
		// the channel (311) 5 s after the flow(false) and the session would
		// get an ERROR. Wait past that window; a late RECEIPT of a SEND
		// confirmed before the flow may still come.
		for ; sent < total; sent++ {
			send(t, c, "SEND\ndestination:/amq/queue/"+queue+"\nreceipt:f"+strconv.Itoa(sent)+"\n\n"+payload+"\x00")
		}
		deadline := time.Now().Add(6 * time.Second)
		for time.Now().Before(deadline) {
			f, err := readFrame(c, time.Until(deadline))
			if err != nil {
				break
			}
			if f.Command != "RECEIPT" {
				t.Fatalf("while flow-stopped: %s", f)
			}
			receipts++
		}
		if receipts >= total {
			t.Fatalf("all %d receipts arrived although the queue holds 10000 bytes at most: no channel.flow?", total)
		}
		if n, _ := broker.depth(t, queue); n >= total {
			t.Fatalf("%d messages in %s: the session published through channel.flow(false)", n, queue)
		}
		// Drain on Broker-J's side: flow(true), the rest goes through.
		drained := 0
		deadline = time.Now().Add(15 * time.Second)
		for (receipts < total || drained < total) && time.Now().Before(deadline) {
			if err := broker.do(t, "drain", func(ch *amqp.Channel) error {
				for {
					_, got, err := ch.Get(queue, true)
					if err != nil || !got {
						return err
					}
					drained++
				}
			}); err != nil {
				t.Fatalf("drain: %v", err)
			}
			for receipts < total {
				f, err := readFrame(c, 300*time.Millisecond)
				if err != nil {
					break
				}
				if f.Command != "RECEIPT" {
					t.Fatalf("after the drain: %s", f)
				}
				receipts++
			}
		}
		if receipts != total || drained != total {
			t.Errorf("receipts %d, drained %d; want %d each", receipts, drained, total)
		}
		send(t, c, "DISCONNECT\nreceipt:bye\n\n\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "bye")
	})
}

// TestQpidBrokerJSharedConnections: in shared-connection mode sessions of
// one user share pooled AMQP connections; on Broker-J a pooled connection
// takes a new session only while 8 of its 256 channels are free, and an
// ERROR in one session leaves the others alone.
func TestQpidBrokerJSharedConnections(t *testing.T) {
	broker := startQpid(t)
	srv, _ := startGatewayFor(t, broker.URL, func(c *config.Config) {
		c.AMQP.SharedConnections = true
	})
	addr := srv.Addr().String()
	name := func(suffix string) string { return "qpid-shared-" + runID + "-" + suffix }
	queue := name("q")
	broker.deleteAtCleanup(t, queue)

	bystander := connectRaw(t, addr, "1.2")
	send(t, bystander, "SUBSCRIBE\nid:b\ndestination:/queue/"+queue+"\nreceipt:b\n\n\x00")
	expectFrame(t, bystander, "RECEIPT")
	// Its publisher channel opens with its first SEND; channels taken
	// later by a neighbour are not reserved for it (README).
	send(t, bystander, "SEND\ndestination:/queue/"+queue+"\nreceipt:first\n\nfirst\x00")
	expectFrames(t, bystander, "RECEIPT", "MESSAGE")

	// A session refused for a queue argument leaves its pooled connection,
	// and the bystander on it, alone.
	bad := connectRaw(t, addr, "1.2")
	send(t, bad, "SEND\ndestination:/queue/"+name("bad")+"\nx-max-length:1\nreceipt:r\n\nx\x00")
	expectError(t, bad, "Invalid header", "r", "'x-max-length' is not supported by broker profile qpid\n")

	// A greedy session on the same pooled connection holds 250
	// subscriptions: with the bystander's, 252 of its 256 channels are
	// taken. Later sessions (2 channels each) must go to another pooled
	// connection; on this one the third would have had none left.
	greedy := connectRaw(t, addr, "1.2")
	subscribe := func(i int) *rawFrame {
		send(t, greedy, fmt.Sprintf("SUBSCRIBE\nid:%d\ndestination:/topic/%s\nreceipt:r%d\n\n\x00", i, name("many"), i))
		return readAnyFrame(t, greedy)
	}
	for i := range 250 {
		if f := subscribe(i); f.Command != "RECEIPT" {
			t.Fatalf("subscription %d of the greedy session: %s", i, f)
		}
	}
	for i := range 3 {
		c := connectRaw(t, addr, "1.2")
		send(t, c, "SUBSCRIBE\nid:x\ndestination:/topic/"+name("late")+"\nreceipt:s\n\n\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "s")
		send(t, c, "SEND\ndestination:/queue/"+queue+"\nreceipt:late"+strconv.Itoa(i)+"\n\nlate\x00")
		expectFrame(t, c, "RECEIPT")
		m := expectFrame(t, bystander, "MESSAGE")
		if string(m.Body) != "late" {
			t.Errorf("bystander got %q", m.Body)
		}
	}
	// The greedy session goes on until its connection has no channel
	// left: ERROR naming channel-max, for it alone.
	var errFrame *rawFrame
	for i := 250; i < 300 && errFrame == nil; i++ {
		if f := subscribe(i); f.Command == "ERROR" {
			errFrame = f
		}
	}
	if errFrame == nil {
		t.Fatal("300 subscriptions on a shared connection and no ERROR")
	}
	expectHeader(t, errFrame, "message", "Too many subscriptions")
	if !strings.Contains(string(errFrame.Body), "256 channels per AMQP connection (channel-max)") {
		t.Errorf("ERROR body %q does not name channel-max 256", errFrame.Body)
	}
	send(t, bystander, "SEND\ndestination:/queue/"+queue+"\nreceipt:still\n\nstill here\x00")
	got := expectFrames(t, bystander, "RECEIPT", "MESSAGE")
	if string(got["MESSAGE"].Body) != "still here" {
		t.Errorf("bystander after the greedy ERROR got %q", got["MESSAGE"].Body)
	}
}

// expectNackKept NACKs m with requeue:false on a queue that has no
// x-qpid-maximum-delivery-count (one stompgate did not declare): Broker-J
// neither redelivers it to this consumer nor drops it. It disconnects c and
// checks that the message is still in queue.
func (q *qpidBroker) expectNackKept(t *testing.T, c *rawConn, m *rawFrame, queue string) {
	t.Helper()
	send(t, c, "NACK\nid:"+ackHeader(t, m)+"\nrequeue:false\nreceipt:n\n\n\x00")
	expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "n")
	if f, err := readFrame(c, 500*time.Millisecond); err == nil {
		t.Errorf("a frame after NACK requeue:false on %s: %s", queue, f)
	}
	disconnectRaw(t, c)
	if n, err := q.depth(t, queue); err != nil || n != 1 {
		t.Errorf("%s after NACK requeue:false: %d messages (err %v), want 1: Broker-J keeps it", queue, n, err)
	}
}
