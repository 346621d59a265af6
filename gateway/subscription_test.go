package gateway

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// SUBSCRIBE, UNSUBSCRIBE, MESSAGE, ACK and NACK: semantics 6, 8, 10.

func TestSubscribeBrokerCalls(t *testing.T) {
	// Semantics 5.2–5.4 and 6.2 step 2: declare, bind, qos, consume on
	// the subscription's own channel, no_ack=false always.
	const transient = `stomp-subscription-[A-Za-z0-9_-]{22}`
	tests := []struct {
		name    string
		headers string
		want    []string // regexps, one per call, in order
	}{
		{"queue", "id:0\ndestination:/queue/a", []string{
			`QueueDeclare a durable=true autoDelete=false exclusive=false noWait=false args=map\[\]`,
			`Qos 1000 0 global=false`,
			`Consume a tag=T_0 autoAck=false exclusive=false noLocal=false noWait=false args=map\[\]`,
		}},
		{"queue without id, prefetch-count", "destination:/queue/b\nprefetch-count:5", []string{
			`QueueDeclare b durable=true autoDelete=false exclusive=false noWait=false args=map\[\]`,
			`Qos 5 0 global=false`,
			`Consume b tag=Q_/queue/b autoAck=false exclusive=false noLocal=false noWait=false args=map\[\]`,
		}},
		{"transient topic", "id:1\ndestination:/topic/t.x\nack:client", []string{
			`QueueDeclare (` + transient + `) durable=false autoDelete=true exclusive=true noWait=false args=map\[\]`,
			`QueueBind (` + transient + `) key=t.x exchange=amq.topic noWait=false args=map\[\]`,
			`Qos 1000 0 global=false`,
			`Consume (` + transient + `) tag=T_1 autoAck=false exclusive=false noLocal=false noWait=false args=map\[\]`,
		}},
		{"durable topic", "id:billing-1\ndestination:/topic/orders.eu\ndurable:true", []string{
			`QueueDeclare stomp-subscription-ZcZqX455OG-UXv3OfAFdNg durable=true autoDelete=true exclusive=false noWait=false args=map\[\]`,
			`QueueBind stomp-subscription-ZcZqX455OG-UXv3OfAFdNg key=orders.eu exchange=amq.topic noWait=false args=map\[\]`,
			`Qos 1000 0 global=false`,
			`Consume stomp-subscription-ZcZqX455OG-UXv3OfAFdNg tag=T_billing-1 autoAck=false exclusive=false noLocal=false noWait=false args=map\[\]`,
		}},
		{"exchange with key", "id:2\ndestination:/exchange/ex/rk", []string{
			`QueueDeclare (` + transient + `) durable=false autoDelete=true exclusive=true noWait=false args=map\[\]`,
			`QueueBind (` + transient + `) key=rk exchange=ex noWait=false args=map\[\]`,
			`Qos 1000 0 global=false`,
			`Consume (` + transient + `) tag=T_2 autoAck=false exclusive=false noLocal=false noWait=false args=map\[\]`,
		}},
		{"amq queue", "id:3\ndestination:/amq/queue/existing\nprefetch-count:0", []string{
			`Qos 10000 0 global=false`,
			`Consume existing tag=T_3 autoAck=false exclusive=false noLocal=false noWait=false args=map\[\]`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
			h.send("SUBSCRIBE\n" + tt.headers + "\nreceipt:r\n\n\x00")
			h.expectReceipt("r")
			ch := h.broker.conn(t, 0).channel(t, 0)
			calls := ch.callLog()
			if len(calls) != len(tt.want) {
				t.Fatalf("calls:\n  %s\nwant:\n  %s", strings.Join(calls, "\n  "), strings.Join(tt.want, "\n  "))
			}
			queue := ""
			for i, pattern := range tt.want {
				m := regexp.MustCompile("^" + pattern + "$").FindStringSubmatch(calls[i])
				if m == nil {
					t.Errorf("call %d = %q, want %s", i, calls[i], pattern)
					continue
				}
				// A transient queue name is random, but the same in every call.
				if len(m) > 1 {
					if queue == "" {
						queue = m[1]
					} else if m[1] != queue {
						t.Errorf("call %d uses queue %s, earlier calls %s", i, m[1], queue)
					}
				}
			}
			if n := h.broker.conn(t, 0).channelCount(); n != 1 {
				t.Errorf("%d channels open, want the subscription's only (the publisher channel opens with the first SEND)", n)
			}
		})
	}
}

func TestSubscribeReceiptBeforeFirstMessage(t *testing.T) {
	// Semantics 18: the RECEIPT is written before the subscription's first
	// MESSAGE even when the queue has messages waiting at consume-ok.
	forEachTransport(t, func(t *testing.T, pair connPair) {
		for i := range 5 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				b := newFakeBroker()
				b.backlog = func(*fakeChannel, string, string) []string { return []string{"m1", "m2", "m3"} }
				h := connected(t, pair, testConfig(), b, "1.2")
				h.send("SUBSCRIBE\nid:0\ndestination:/queue/a\nreceipt:r\n\n\x00")
				h.expectReceipt("r")
				h.expectMessage("m1")
				h.expectMessage("m2")
				h.expectMessage("m3")
			})
		}
	})
}

func TestMessageHeaders(t *testing.T) {
	for _, tc := range []struct {
		version, ack string
		wantAck      bool
	}{
		{"1.2", "client", true},
		{"1.2", "auto", false},
		{"1.1", "client", false},
	} {
		t.Run(tc.version+" "+tc.ack, func(t *testing.T) {
			h := connected(t, pipePair, testConfig(), newFakeBroker(), tc.version)
			h.subscribe("0", "/queue/a", "ack:"+tc.ack)
			ch := h.sub("T_0")
			ch.deliver(t, "T_0", "hello")
			f := h.expectMessage("hello")
			wantID := "T_0@@" + h.sessionID + "@@1"
			if got := f.Value("subscription"); got != "0" {
				t.Errorf("subscription = %q, want 0", got)
			}
			if got := f.Value("destination"); got != "/queue/a" {
				t.Errorf("destination = %q, want /queue/a", got)
			}
			if got := f.Value("message-id"); got != wantID {
				t.Errorf("message-id = %q, want %q", got, wantID)
			}
			ack, hasAck := f.Get("ack")
			if hasAck != tc.wantAck || (hasAck && ack != wantID) {
				t.Errorf("ack header %q (present %v), want present %v with %q", ack, hasAck, tc.wantAck, wantID)
			}
		})
	}
}

func TestSubscribeWithoutIDHasNoSubscriptionHeader(t *testing.T) {
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.subscribe("", "/queue/a")
	h.sub("Q_/queue/a").deliver(t, "Q_/queue/a", "x")
	f := h.expectMessage("x")
	if _, ok := f.Get("subscription"); ok {
		t.Errorf("MESSAGE of an id-less subscription has a subscription header: %s", f)
	}
}

func TestDuplicateSubscription(t *testing.T) {
	forEachTransport(t, func(t *testing.T, pair connPair) {
		h := connected(t, pair, testConfig(), newFakeBroker(), "1.2")
		h.subscribe("0", "/queue/a")
		h.send("SUBSCRIBE\nid:0\ndestination:/topic/other\nreceipt:dup\n\n\x00")
		// Semantics 6.2 step 1: before anything is declared; no RECEIPT.
		f := h.expectError("Duplicated subscription identifier", "A subscription identified by 'T_0' already exists.")
		if got := f.Value("receipt-id"); got != "dup" {
			t.Errorf("ERROR receipt-id = %q, want dup", got)
		}
		if n := h.broker.conn(t, 0).channelCount(); n != 1 {
			t.Errorf("%d channels opened, want 1 (the first subscription's)", n)
		}
	})
}

func TestTooManySubscriptions(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxSubscriptions = 1
	h := connected(t, pipePair, cfg, newFakeBroker(), "1.2")
	h.subscribe("0", "/queue/a")
	h.send("SUBSCRIBE\nid:1\ndestination:/queue/b\n\n\x00")
	h.expectError("Too many subscriptions", "The session already has 1 subscriptions (limits.max_subscriptions).\n")
	if n := h.broker.conn(t, 0).channelCount(); n != 1 {
		t.Errorf("%d channels opened, want 1", n)
	}
}

// ackHarness subscribes id 0 to /queue/a with ack mode mode and delivers
// n messages, returning their ack ids.
func ackHarness(t *testing.T, pair connPair, version, mode string, n int) (*sessionHarness, *fakeChannel, []string) {
	t.Helper()
	h := connected(t, pair, testConfig(), newFakeBroker(), version)
	h.subscribe("0", "/queue/a", "ack:"+mode)
	ch := h.sub("T_0")
	var ids []string
	for i := 1; i <= n; i++ {
		ch.deliver(t, "T_0", fmt.Sprint("m", i))
		f := h.expectMessage(fmt.Sprint("m", i))
		ids = append(ids, f.Value("message-id"))
	}
	return h, ch, ids
}

func TestAckClientIsCumulativePerSubscription(t *testing.T) {
	forEachTransport(t, func(t *testing.T, pair connPair) {
		h, ch, ids := ackHarness(t, pair, "1.2", "client", 3)
		h.send("ACK\nid:" + ids[1] + "\nreceipt:a2\n\n\x00")
		h.expectReceipt("a2")
		if got := ch.callsOf("Ack"); len(got) != 1 || got[0] != "Ack 2 multiple=true" {
			t.Fatalf("acks %q, want [Ack 2 multiple=true]", got)
		}
		// Tag 1 was covered by the cumulative ack: no longer outstanding.
		h.send("ACK\nid:" + ids[0] + "\nreceipt:a1\n\n\x00")
		f := h.expectError("precondition_failed", "PRECONDITION_FAILED - unknown delivery tag 1\n")
		if got := f.Value("receipt-id"); got != "a1" {
			t.Errorf("ERROR receipt-id %q, want a1", got)
		}
	})
}

func TestAckClientIndividual(t *testing.T) {
	h, ch, ids := ackHarness(t, pipePair, "1.2", "client-individual", 3)
	h.send("ACK\nid:" + ids[1] + "\n\n\x00")
	h.send("ACK\nid:" + ids[0] + "\n\n\x00")
	h.send("ACK\nid:" + ids[2] + "\nreceipt:a\n\n\x00")
	h.expectReceipt("a")
	want := []string{"Ack 2 multiple=false", "Ack 1 multiple=false", "Ack 3 multiple=false"}
	if got := ch.callsOf("Ack"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("acks %q, want %q", got, want)
	}
}

func TestAckVersion11UsesMessageID(t *testing.T) {
	h, ch, ids := ackHarness(t, pipePair, "1.1", "client-individual", 1)
	h.send("ACK\nsubscription:0\nmessage-id:" + ids[0] + "\nreceipt:a\n\n\x00")
	h.expectReceipt("a")
	ch.waitCall(t, "Ack 1 multiple=false")
}

func TestAckUnknownDeliveryTag(t *testing.T) {
	h, ch, _ := ackHarness(t, pipePair, "1.2", "client", 1)
	h.send("ACK\nid:T_0@@" + h.sessionID + "@@99\nreceipt:x\n\n\x00")
	f := h.expectError("precondition_failed", "PRECONDITION_FAILED - unknown delivery tag 99\n")
	if got := f.Value("receipt-id"); got != "x" {
		t.Errorf("ERROR receipt-id %q, want x", got)
	}
	if got := ch.callsOf("Ack"); len(got) != 0 {
		t.Errorf("acked %q", got)
	}
}

func TestAckOfAnotherSessionIgnored(t *testing.T) {
	// Semantics 10.2 step 2.
	h, ch, _ := ackHarness(t, pipePair, "1.2", "client", 1)
	h.send("ACK\nid:T_0@@session-AAAAAAAAAAAAAAAAAAAAAA@@1\nreceipt:x\n\n\x00")
	h.expectReceipt("x")
	h.send("NACK\nid:T_0@@session-AAAAAAAAAAAAAAAAAAAAAA@@1\nreceipt:y\n\n\x00")
	h.expectReceipt("y")
	if got := append(ch.callsOf("Ack"), ch.callsOf("Nack")...); len(got) != 0 {
		t.Errorf("settled another session's tag: %q", got)
	}
}

func TestAckErrors(t *testing.T) {
	tests := []struct {
		name, frame, message, body string
	}{
		{"missing id", "ACK\n\n\x00", "Missing header", "\"ACK\" must include the \"id\" header\n"},
		{"invalid id", "NACK\nid:nonsense\n\n\x00", "Invalid header", "\"NACK\" must include a valid \"id\" header\n"},
		{"unknown subscription", "ACK\nid:T_9@@SESSION@@1\n\n\x00", "Subscription not found", "Message with id \"T_9@@SESSION@@1\" has no subscription\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, _ := ackHarness(t, pipePair, "1.2", "client", 0)
			h.send(strings.ReplaceAll(tt.frame, "SESSION", h.sessionID))
			h.expectError(tt.message, strings.ReplaceAll(tt.body, "SESSION", h.sessionID))
		})
	}
}

func TestNackRequeue(t *testing.T) {
	tests := []struct {
		mode, header string
		defaultReq   bool
		want         string
	}{
		{"client-individual", "", true, "Nack 1 multiple=false requeue=true"},
		{"client-individual", "", false, "Nack 1 multiple=false requeue=false"},
		{"client-individual", "requeue:false", true, "Nack 1 multiple=false requeue=false"},
		{"client-individual", "requeue:True", false, "Nack 1 multiple=false requeue=true"},
		{"client", "requeue:False", true, "Nack 1 multiple=true requeue=false"},
	}
	for _, tt := range tests {
		t.Run(tt.mode+" "+tt.header+fmt.Sprint(tt.defaultReq), func(t *testing.T) {
			cfg := testConfig()
			cfg.STOMP.DefaultNackRequeue = tt.defaultReq
			h := connected(t, pipePair, cfg, newFakeBroker(), "1.2")
			h.subscribe("0", "/queue/a", "ack:"+tt.mode)
			ch := h.sub("T_0")
			ch.deliver(t, "T_0", "m")
			id := h.expectMessage("m").Value("ack")
			frame := "NACK\nid:" + id + "\nreceipt:n\n"
			if tt.header != "" {
				frame += tt.header + "\n"
			}
			h.send(frame + "\n\x00")
			h.expectReceipt("n")
			if got := ch.callsOf("Nack"); len(got) != 1 || got[0] != tt.want {
				t.Errorf("nacks %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAckOfAutoSubscriptionIgnored(t *testing.T) {
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.subscribe("0", "/queue/a")
	ch := h.sub("T_0")
	ch.deliver(t, "T_0", "m")
	id := h.expectMessage("m").Value("message-id")
	ch.waitCall(t, "Ack 1 multiple=false") // the writer's (10.3)
	h.send("ACK\nid:" + id + "\nreceipt:a\n\n\x00")
	h.expectReceipt("a")
	if got := ch.callsOf("Ack"); len(got) != 1 {
		t.Errorf("acks %q, want only the writer's", got)
	}
}

func TestUnsubscribe(t *testing.T) {
	forEachTransport(t, func(t *testing.T, pair connPair) {
		h, ch, ids := ackHarness(t, pair, "1.2", "client", 1)
		h.send("UNSUBSCRIBE\nid:0\nreceipt:u\n\n\x00")
		h.expectReceipt("u")
		calls := ch.callLog()
		if tail := calls[len(calls)-2:]; tail[0] != "Cancel T_0 noWait=false" || tail[1] != "Close" {
			t.Errorf("calls end with %q, want Cancel T_0 then Close", tail)
		}
		if !ch.isClosed() {
			t.Error("the subscription's channel is still open")
		}
		// Semantics 10.2 step 3: an ACK of an unsubscribed subscription's
		// message is ignored with its RECEIPT.
		h.send("ACK\nid:" + ids[0] + "\nreceipt:late\n\n\x00")
		h.expectReceipt("late")
		if got := ch.callsOf("Ack"); len(got) != 0 {
			t.Errorf("acked on a closed channel: %q", got)
		}
		// The broker's later notifications for the closed channel are not
		// a server cancel.
		h.expectNothing()
	})
}

func TestUnsubscribeDurableTopicDeletesQueue(t *testing.T) {
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.subscribe("billing-1", "/topic/orders.eu", "durable:true")
	h.send("UNSUBSCRIBE\nid:billing-1\ndurable:true\nreceipt:u\n\n\x00")
	h.expectReceipt("u")
	ch := h.broker.conn(t, 0).channel(t, 0)
	want := "QueueDelete stomp-subscription-ZcZqX455OG-UXv3OfAFdNg ifUnused=false ifEmpty=false noWait=false"
	if got := ch.callsOf("QueueDelete"); len(got) != 1 || got[0] != want {
		t.Errorf("deletes %q, want %q", got, want)
	}
}

func TestUnsubscribeUnknown(t *testing.T) {
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.send("UNSUBSCRIBE\nid:7\nreceipt:u\n\n\x00")
	f := h.expectError("No subscription found", "UNSUBSCRIBE must refer to an existing subscription.\nSubscription to \"id='7'\" not found.\n")
	if got := f.Value("receipt-id"); got != "u" {
		t.Errorf("ERROR receipt-id %q, want u", got)
	}
}

func TestMessageIDsUniqueAcrossResubscription(t *testing.T) {
	// STOMP 1.2: message-id uniquely identifies the message, and semantics
	// 10.2 requires that a stale ack id never acknowledges an unrelated
	// message. A subscription id reused after UNSUBSCRIBE gets a new
	// channel whose delivery tags restart at 1.
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.subscribe("0", "/queue/a", "ack:client-individual")
	conn := h.broker.conn(t, 0)
	conn.channel(t, 0).deliver(t, "T_0", "old")
	oldID := h.expectMessage("old").Value("ack")
	h.send("UNSUBSCRIBE\nid:0\nreceipt:u\n\n\x00")
	h.expectReceipt("u")
	h.subscribe("0", "/queue/a", "ack:client-individual")
	second := conn.channel(t, 1)
	second.deliver(t, "T_0", "new")
	newID := h.expectMessage("new").Value("ack")
	if oldID == newID {
		t.Errorf("two different messages of this session share the ack id %q", oldID)
	}
	h.send("ACK\nid:" + oldID + "\nreceipt:stale\n\n\x00")
	h.expectReceipt("stale")
	if got := second.callsOf("Ack"); len(got) != 0 {
		t.Errorf("the stale ACK of %q acknowledged the new delivery: %q", oldID, got)
	}
}

func TestOversizedDeliveryRejected(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxBody = 8
	h := connected(t, pipePair, cfg, newFakeBroker(), "1.2")
	h.subscribe("0", "/queue/a", "ack:client")
	ch := h.sub("T_0")
	ch.deliver(t, "T_0", "far too large for the limit")
	ch.deliver(t, "T_0", "small")
	f := h.expectMessage("small")
	ch.waitCall(t, "Reject 1 requeue=false")
	// Message numbers in ids are session-wide; acking the MESSAGE must
	// settle AMQP delivery tag 2 on the subscription's channel.
	h.send("ACK\nid:" + f.Value("ack") + "\n\n\x00")
	ch.waitCall(t, "Ack 2 multiple=true")
}

func TestServerCancel(t *testing.T) {
	tests := []struct{ id, dest, tag, want string }{
		{"0", "/queue/a", "T_0", "0"},
		{"", "/queue/a", "Q_/queue/a", "/queue/a"},
	}
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
			h.subscribe(tt.id, tt.dest)
			h.sub(tt.tag).serverCancel(tt.tag)
			f := h.expectError("Server cancelled subscription", //nolint:misspell // the plugin's text
				"The server has canceled a subscription.\nNo more messages will be delivered for \"id='"+tt.want+"'\".\n")
			if got := f.Value("subscription"); got != tt.want {
				t.Errorf("subscription header %q, want %q", got, tt.want)
			}
		})
	}
}

func TestServerCancelOfEitherSubscription(t *testing.T) {
	// The loop reads the first subscription's deliveries itself; later
	// ones go through a forwarder. Both see a broker's basic.cancel after
	// the deliveries that preceded it, and a channel closed by the broker.
	for _, tc := range []struct {
		name string
		tag  string
		id   string
	}{
		{"direct", "T_0", "0"},
		{"forwarded", "T_1", "1"},
	} {
		t.Run(tc.name+"/cancel", func(t *testing.T) {
			h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
			h.subscribe("0", "/queue/a")
			h.subscribe("1", "/queue/b")
			ch := h.sub(tc.tag)
			ch.deliver(t, tc.tag, "before the cancel")
			ch.serverCancel(tc.tag)
			h.expectMessage("before the cancel")
			f := h.expectError("Server cancelled subscription", //nolint:misspell // the plugin's text
				"The server has canceled a subscription.\nNo more messages will be delivered for \"id='"+tc.id+"'\".\n")
			if got := f.Value("subscription"); got != tc.id {
				t.Errorf("subscription header %q, want %q", got, tc.id)
			}
		})
		t.Run(tc.name+"/close", func(t *testing.T) {
			h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
			h.subscribe("0", "/queue/a")
			h.subscribe("1", "/queue/b")
			h.sub(tc.tag).closeWithError(&amqp.Error{Code: amqp.NotFound, Reason: "NOT_FOUND - queue deleted", Server: true})
			h.expectError("not_found", "NOT_FOUND - queue deleted")
		})
	}
}

func TestUnsubscribedDirectSubscriptionLeavesOthersFlowing(t *testing.T) {
	// UNSUBSCRIBE of the loop's direct subscription closes its channel
	// without an event; a later subscription still delivers.
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.subscribe("0", "/queue/a")
	h.subscribe("1", "/queue/b")
	h.send("UNSUBSCRIBE\nid:0\nreceipt:u\n\n\x00")
	h.expectReceipt("u")
	h.sub("T_1").deliver(t, "T_1", "still here")
	h.expectMessage("still here")
	h.subscribe("2", "/queue/c")
	h.sub("T_2").deliver(t, "T_2", "and here")
	h.expectMessage("and here")
}

func TestTempQueueReplyTo(t *testing.T) {
	// Semantics 9: the temp queue and its consumer exist before the publish.
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.send("SEND\ndestination:/queue/service\nreply-to:/temp-queue/r\nreceipt:s\n\nask\x00")
	pub := h.pub()
	p := pub.waitPublishes(t, 1)[0]
	temp := h.broker.conn(t, 0).channel(t, 1)
	calls := temp.callLog()
	if len(calls) < 3 || !strings.HasPrefix(calls[0], "QueueDeclare  durable=false autoDelete=true exclusive=true") || !strings.HasPrefix(calls[2], "Consume amq.gen-") {
		t.Fatalf("temp queue calls %q", calls)
	}
	if !strings.HasPrefix(p.Msg.ReplyTo, "amq.gen-") {
		t.Errorf("reply_to %q, want the temp queue's name", p.Msg.ReplyTo)
	}
	pub.confirm(t, 1, true)
	h.expectReceipt("s")
	temp.deliver(t, "T_/temp-queue/r", "answer")
	f := h.expectMessage("answer")
	if got := f.Value("subscription"); got != "/temp-queue/r" {
		t.Errorf("subscription %q, want /temp-queue/r", got)
	}
	if _, ok := f.Get("ack"); ok {
		t.Errorf("temp-queue MESSAGE has an ack header: %s", f)
	}
	temp.waitCall(t, "Ack 1 multiple=false")
	// An ACK of a temp-queue reply is ignored, with its receipt: the
	// gateway acked it already (10.2 step 4).
	h.send("ACK\nid:" + f.Value("message-id") + "\nreceipt:ack-temp\n\n\x00")
	h.expectReceipt("ack-temp")
	if got := temp.callsOf("Ack"); len(got) != 1 {
		t.Errorf("temp-queue channel acks %q, want only the gateway's own", got)
	}
	// A temp queue cannot be unsubscribed (6.3).
	h.send("UNSUBSCRIBE\nid:/temp-queue/r\n\n\x00")
	h.expectError("Invalid id", "UNSUBSCRIBE 'id' may not start with /temp-queue/\n")
}
