package gateway

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/codec"
	"github.com/stompgate/stompgate/gateway/config"
	"github.com/stompgate/stompgate/mapping"
	"github.com/stompgate/stompgate/mapping/selector"
)

// ExchangeDeclare lets the fake stand in for *amqp.Channel's exchange
// declarations, which delay queues need (activemq.go exchangeDeclarer).
func (ch *fakeChannel) ExchangeDeclare(name, kind string, durable, autoDelete, internal, noWait bool, args amqp.Table) error {
	return ch.call("ExchangeDeclare", "%s kind=%s durable=%t autoDelete=%t internal=%t noWait=%t args=%v", name, kind, durable, autoDelete, internal, noWait, args)
}

// deliverWith pushes d to consumer consumerTag with the next delivery tag,
// routing key = the consumed queue unless d sets one; returns the tag.
func (ch *fakeChannel) deliverWith(t *testing.T, consumerTag string, d amqp.Delivery) uint64 {
	t.Helper()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	c, ok := ch.consumers[consumerTag]
	if !ok {
		t.Fatalf("no consumer %q on channel #%d", consumerTag, ch.index)
	}
	ch.nextTag++
	d.ConsumerTag, d.DeliveryTag = consumerTag, ch.nextTag
	if d.RoutingKey == "" && d.Exchange == "" {
		d.RoutingKey = c.queue
	}
	select {
	case c.deliveries <- d:
	default:
		t.Fatalf("delivery buffer of %q is full", consumerTag)
	}
	return d.DeliveryTag
}

func activeMQConfig() config.Config {
	cfg := testConfig()
	cfg.STOMP.Dialect = config.DialectActiveMQ
	return cfg
}

func TestSelectorSkipsNonMatchingDeliveries(t *testing.T) {
	// Issue 14: a delivery the selector refuses is acked alone and never
	// sent; a cumulative ACK later does not cover it again.
	forEachTransport(t, func(t *testing.T, pair connPair) {
		h := connected(t, pair, testConfig(), newFakeBroker(), "1.2")
		h.subscribe("s", "/topic/t", "ack:client", "selector:n > 2 AND color = 'red'")
		ch := h.sub("T_s")
		ch.deliverWith(t, "T_s", amqp.Delivery{Exchange: "amq.topic", RoutingKey: "t", Headers: amqp.Table{"n": "3", "color": "red"}, Body: []byte("m1")})
		ch.deliverWith(t, "T_s", amqp.Delivery{Exchange: "amq.topic", RoutingKey: "t", Headers: amqp.Table{"n": "1", "color": "red"}, Body: []byte("m2")})
		ch.deliverWith(t, "T_s", amqp.Delivery{Exchange: "amq.topic", RoutingKey: "t", Headers: amqp.Table{"color": "red"}, Body: []byte("m3")}) // n NULL: UNKNOWN
		ch.deliverWith(t, "T_s", amqp.Delivery{Exchange: "amq.topic", RoutingKey: "t", Headers: amqp.Table{"n": int32(7), "color": "red"}, Body: []byte("m4")})
		h.expectMessage("m1")
		last := h.expectMessage("m4")
		if got := last.Value("n"); got != "7" {
			t.Errorf("n = %q, want 7", got)
		}
		h.expectNothing()
		ch.waitCall(t, "Ack 2 multiple=false")
		ch.waitCall(t, "Ack 3 multiple=false")
		h.send("ACK\nid:" + last.Value("ack") + "\nreceipt:a\n\n\x00")
		h.expectReceipt("a")
		ch.waitCall(t, "Ack 4 multiple=true")
		if acks := ch.callsOf("Ack"); len(acks) != 3 {
			t.Errorf("acks = %q, want the two skipped ones and one cumulative", acks)
		}
	})
}

func TestSelectorAutoAckSkips(t *testing.T) {
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.subscribe("s", "/exchange/ex/k", "selector:JMSType = 'a'")
	ch := h.sub("T_s")
	ch.deliverWith(t, "T_s", amqp.Delivery{Exchange: "ex", RoutingKey: "k", Type: "b", Body: []byte("skip")})
	ch.deliverWith(t, "T_s", amqp.Delivery{Exchange: "ex", RoutingKey: "k", Type: "a", Body: []byte("keep")})
	h.expectMessage("keep")
	ch.waitCall(t, "Ack 1 multiple=false")
}

func TestSelectorRefusals(t *testing.T) {
	tests := []struct {
		name, dest, sel, body string
	}{
		{"queue", "/queue/q", "n > 1", "Selectors are supported on /topic and /exchange subscriptions only, not on queue destinations"},
		{"amq queue", "/amq/queue/q", "n > 1", "Selectors are supported on /topic and /exchange subscriptions only"},
		{"parse error", "/topic/t", "n > ", "Invalid selector at position 5"},
		{"unterminated", "/topic/t", "color = 'red", "Invalid selector at position 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
			h.send("SUBSCRIBE\nid:0\ndestination:" + tt.dest + "\nselector:" + tt.sel + "\n\n\x00")
			f := h.expectFrame("ERROR")
			if got := f.Value("message"); got != "Invalid selector" {
				t.Errorf("message = %q", got)
			}
			if !strings.HasPrefix(f.Body, tt.body) {
				t.Errorf("body = %q, want prefix %q", f.Body, tt.body)
			}
			if n := h.broker.conn(t, 0).channelCount(); n != 0 {
				t.Errorf("%d channels opened for a refused SUBSCRIBE", n)
			}
		})
	}
}

func TestActiveMQSubscribeHeaders(t *testing.T) {
	b := newFakeBroker()
	h := startSession(t, pipePair, activeMQConfig(), b)
	h.send(connectFrame("accept-version:1.2", "client-id:app.1"))
	h.expectFrame("CONNECTED")
	h.subscribe("d", "/topic/prices.>", "activemq.subscriptionName:sub1", "activemq.prefetchSize:3")
	h.subscribe("x", "/queue/work", "activemq.exclusive:true")
	c := b.conn(t, 0)
	calls := strings.Join(append(c.consumerChannel(t, "T_d").callLog(), c.consumerChannel(t, "T_x").callLog()...), "\n")
	for _, want := range []string{
		"QueueDeclare stomp-durable.app%2E1.sub1 durable=true autoDelete=false exclusive=false",
		"QueueBind stomp-durable.app%2E1.sub1 key=prices.# exchange=amq.topic",
		"Qos 3 0 global=false",
		"QueueDeclare work durable=true autoDelete=false exclusive=false noWait=false args=map[x-single-active-consumer:true]",
	} {
		if !strings.Contains(calls, want) {
			t.Errorf("no call %q in\n%s", want, calls)
		}
	}
	// UNSUBSCRIBE with the name ends the consumer and deletes the queue.
	h.send("UNSUBSCRIBE\nid:d\nactivemq.subscriptionName:sub1\nreceipt:u\n\n\x00")
	h.expectReceipt("u")
	found := c.findChannel(func(ch *fakeChannel) bool {
		for _, call := range ch.calls {
			if strings.HasPrefix(call, "QueueDelete stomp-durable.app%2E1.sub1 ") {
				return true
			}
		}
		return false
	})
	if found == nil {
		t.Error("the durable queue was not deleted")
	}
}

func TestActiveMQDurableNeedsClientID(t *testing.T) {
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.send("SUBSCRIBE\nid:d\ndestination:/topic/t\nactivemq.subscriptionName:s\n\n\x00")
	h.expectError("Missing Header", "A durable subscription (activemq.subscriptionName) needs a client-id header on CONNECT\n")
}

func TestWildcardOnlyWithDialect(t *testing.T) {
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.subscribe("w", "/topic/a.>")
	if calls := strings.Join(h.sub("T_w").callLog(), "\n"); !strings.Contains(calls, "key=a.> exchange=amq.topic") {
		t.Errorf("without the dialect '>' is literal, as with the plugin:\n%s", calls)
	}
}

func TestActiveMQSendHeaders(t *testing.T) {
	h := connected(t, pipePair, activeMQConfig(), newFakeBroker(), "1.2")
	past := time.Now().Add(-time.Minute).UnixMilli()
	future := time.Now().Add(time.Minute).UnixMilli()
	h.send(fmt.Sprintf("SEND\ndestination:/queue/q\nexpires:%d\nreceipt:expired\n\nx\x00", past))
	h.expectReceipt("expired")
	h.send(fmt.Sprintf("SEND\ndestination:/queue/q\nexpires:%d\nreceipt:live\n\nlive\x00", future))
	pub := h.pub()
	ps := pub.waitPublishes(t, 1)
	if ps[0].Key != "q" || string(ps[0].Msg.Body) != "live" {
		t.Fatalf("publish %+v, want the live message only", ps[0])
	}
	ttl, _ := strconv.ParseInt(ps[0].Msg.Expiration, 10, 64)
	if ttl < 50000 || ttl > 60000 {
		t.Errorf("expiration = %q, want about 60000", ps[0].Msg.Expiration)
	}
	pub.confirm(t, 1, true)
	h.expectReceipt("live")

	h.send("SEND\ndestination:/topic/a.b\nAMQ_SCHEDULED_DELAY:1900\nreceipt:d\n\nlater\x00")
	ps = pub.waitPublishes(t, 2)
	if ps[1].Exchange != "stompgate.delay.amq.topic.2000" || ps[1].Key != "a.b" {
		t.Errorf("delayed publish to %q key %q, want stompgate.delay.amq.topic.2000 key a.b", ps[1].Exchange, ps[1].Key)
	}
	if _, ok := ps[1].Msg.Headers["AMQ_SCHEDULED_DELAY"]; ok {
		t.Error("AMQ_SCHEDULED_DELAY went on to the broker")
	}
	calls := strings.Join(pub.callLog(), "\n")
	for _, want := range []string{
		"ExchangeDeclare stompgate.delay.amq.topic.2000 kind=fanout durable=true",
		"QueueDeclare stompgate.delay.amq.topic.2000 durable=true autoDelete=false exclusive=false noWait=false args=map[x-dead-letter-exchange:amq.topic x-message-ttl:2000 x-queue-type:classic]",
		"QueueBind stompgate.delay.amq.topic.2000 key= exchange=stompgate.delay.amq.topic.2000",
	} {
		if !strings.Contains(calls, want) {
			t.Errorf("no call %q in\n%s", want, calls)
		}
	}
	pub.confirm(t, 2, true)
	h.expectReceipt("d")
}

func TestActiveMQMessageHeaders(t *testing.T) {
	h := connected(t, pipePair, activeMQConfig(), newFakeBroker(), "1.2")
	h.subscribe("s", "/queue/q")
	ts := time.Unix(1700000000, 0)
	h.sub("T_s").deliverWith(t, "T_s", amqp.Delivery{Timestamp: ts, DeliveryMode: amqp.Transient, Expiration: "5000", Body: []byte("a")})
	f := h.expectMessage("a")
	want := map[string]string{"expires": "0", "priority": "4", "timestamp": "1700000000000"}
	for k, v := range want {
		if got, _ := f.Get(k); got != v {
			t.Errorf("%s = %q, want %q (%s)", k, got, v, f)
		}
	}
	for _, absent := range []string{"redelivered", "persistent", "expiration"} {
		if v, ok := f.Get(absent); ok {
			t.Errorf("%s:%s present, ActiveMQ leaves it out", absent, v)
		}
	}
}

func TestRedeliveryLimitCountsAndDeadLetters(t *testing.T) {
	b := newFakeBroker()
	h := connected(t, pipePair, testConfig(), b, "1.2")
	h.subscribe("r", "/queue/q", "ack:client-individual", "max-redeliveries:1")
	sub := h.sub("T_r")
	sub.deliverWith(t, "T_r", amqp.Delivery{DeliveryMode: amqp.Persistent, Body: []byte("poison")})
	m := h.expectMessage("poison")
	if v, ok := m.Get(mapping.HdrDeliveryCount); ok {
		t.Errorf("first delivery carries %s:%s", mapping.HdrDeliveryCount, v)
	}
	h.send("NACK\nid:" + m.Value("ack") + "\nreceipt:n1\n\n\x00")
	// The republish goes on the redelivery channel, confirmed before the ack.
	c := b.conn(t, 0)
	rc := c.channelWhere(t, "the redelivery channel", func(ch *fakeChannel) bool { return len(ch.published) > 0 })
	ps := rc.waitPublishes(t, 1)
	if ps[0].Exchange != "" || ps[0].Key != "q" || ps[0].Msg.Headers[mapping.HdrDeliveryCount] != int64(2) {
		t.Fatalf("republish %+v", ps[0])
	}
	if len(sub.callsOf("Ack")) != 0 {
		t.Fatal("original acked before the republish was confirmed")
	}
	rc.confirm(t, 1, true)
	h.expectReceipt("n1")
	sub.waitCall(t, "Ack 1 multiple=false")

	// The broker delivers the republished copy.
	sub.deliverWith(t, "T_r", amqp.Delivery{Exchange: "", RoutingKey: "q", DeliveryMode: amqp.Persistent, Headers: ps[0].Msg.Headers, Body: ps[0].Msg.Body})
	m = h.expectMessage("poison")
	if m.Value("redelivered") != "true" || m.Value(mapping.HdrDeliveryCount) != "2" || m.Value("destination") != "/queue/q" {
		t.Errorf("redelivery %s", m)
	}
	if _, ok := m.Get(hdrOrigExchange); ok {
		t.Errorf("internal header shown: %s", m)
	}
	h.send("NACK\nid:" + m.Value("ack") + "\nreceipt:n2\n\n\x00")
	ps = rc.waitPublishes(t, 2)
	if ps[1].Key != "DLQ.q" || ps[1].Msg.Headers[hdrOriginalDestination] != "/queue/q" {
		t.Fatalf("dead-letter publish %+v", ps[1])
	}
	rc.confirm(t, 2, true)
	h.expectReceipt("n2")
	sub.waitCall(t, "Ack 2 multiple=false")
	if !strings.Contains(strings.Join(c.publisher(t).callLog(), "\n"), "QueueDeclare DLQ.q durable=true") {
		t.Error("DLQ.q not declared")
	}
}

func TestRedeliveryLimitWithDeadLetterExchange(t *testing.T) {
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.subscribe("r", "/queue/q", "ack:client-individual", "max-redeliveries:0", "x-dead-letter-exchange:dlx")
	// max-redeliveries:0 is no limit: plain NACK with requeue.
	sub := h.sub("T_r")
	sub.deliver(t, "T_r", "a")
	m := h.expectMessage("a")
	h.send("NACK\nid:" + m.Value("ack") + "\nreceipt:n\n\n\x00")
	h.expectReceipt("n")
	sub.waitCall(t, "Nack 1 multiple=false requeue=true")

	h2 := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h2.subscribe("r", "/queue/q", "ack:client-individual", "max-redeliveries:1", "x-dead-letter-exchange:dlx")
	sub2 := h2.sub("T_r")
	sub2.deliverWith(t, "T_r", amqp.Delivery{Headers: amqp.Table{mapping.HdrDeliveryCount: int64(2), hdrOrigExchange: "", hdrOrigRoutingKey: "q"}, Body: []byte("b")})
	m = h2.expectMessage("b")
	h2.send("NACK\nid:" + m.Value("ack") + "\nreceipt:n\n\n\x00")
	h2.expectReceipt("n")
	sub2.waitCall(t, "Nack 1 multiple=false requeue=false")
}

func TestSelectorDeliveryAllocatesNothing(t *testing.T) {
	sel, err := selector.Parse("color = 'red' AND weight > 2 AND JMSPriority >= 4")
	if err != nil {
		t.Fatal(err)
	}
	a := subAMQ{sel: sel}
	d := sampleDelivery()
	hdrs := mapping.AppendMessageHeaders(nil, mapping.MessageInfo{SubscriptionID: "s", HasSubscription: true, MessageID: "T_s@@x@@1"}, &d)
	if !a.matches(hdrs) {
		t.Fatalf("selector does not match %v", hdrs)
	}
	if n := testing.AllocsPerRun(100, func() { a.matches(hdrs) }); n != 0 {
		t.Errorf("%v allocations per selector check, want 0", n)
	}
}

func sampleDelivery() amqp.Delivery {
	return amqp.Delivery{
		Exchange: "amq.topic", RoutingKey: "orders.eu",
		Headers:      amqp.Table{"color": "red", "weight": "3", "region": "eu", "customer": "c-1234"},
		ContentType:  "text/plain",
		DeliveryMode: amqp.Persistent,
		Timestamp:    time.Unix(1700000000, 0),
		Body:         []byte("hello"),
	}
}

// BenchmarkSelectorDelivery is the selector's cost per delivery: the
// check on the MESSAGE headers the gateway builds anyway.
func BenchmarkSelectorDelivery(b *testing.B) {
	for _, src := range []string{
		"color = 'red'",
		"color = 'red' AND weight > 2 AND JMSPriority >= 4",
		"region IN ('us', 'eu', 'apac') AND customer LIKE 'c-%' AND NOT (weight BETWEEN 10 AND 20)",
	} {
		b.Run(src, func(b *testing.B) {
			sel, err := selector.Parse(src)
			if err != nil {
				b.Fatal(err)
			}
			a := subAMQ{sel: sel}
			d := sampleDelivery()
			hdrs := mapping.AppendMessageHeaders(make(codec.Headers, 0, 16), mapping.MessageInfo{MessageID: "T_s@@x@@1"}, &d)
			b.ReportAllocs()
			for b.Loop() {
				if !a.matches(hdrs) {
					b.Fatal("no match")
				}
			}
		})
	}
}

func TestSelectorSurvivesResume(t *testing.T) {
	// A resumed subscription (resume.go) keeps its selector and limit.
	b := newFakeBroker()
	h := connected(t, pipePair, resumeConfig(), b, "1.2")
	h.subscribe("s", "/topic/t", "selector:n = 1", "ack:client-individual", "max-redeliveries:3")
	old := b.conn(t, 0)
	old.closeWithError(linkLost)
	fresh := b.conn(t, 1)
	sub := fresh.consumerChannel(t, "T_s")
	sub.deliverWith(t, "T_s", amqp.Delivery{Exchange: "amq.topic", RoutingKey: "t", Headers: amqp.Table{"n": "2"}, Body: []byte("skip")})
	sub.deliverWith(t, "T_s", amqp.Delivery{Exchange: "amq.topic", RoutingKey: "t", Headers: amqp.Table{"n": "1"}, Body: []byte("keep")})
	m := h.expectMessage("keep")
	sub.waitCall(t, "Ack 1 multiple=false")
	h.send("NACK\nid:" + m.Value("ack") + "\n\n\x00")
	rc := fresh.channelWhere(t, "the redelivery channel", func(ch *fakeChannel) bool { return len(ch.published) > 0 })
	if p := rc.waitPublishes(t, 1)[0]; p.Msg.Headers[mapping.HdrDeliveryCount] != int64(2) {
		t.Errorf("republish after the resume: %+v", p)
	}
	rc.confirm(t, 1, true)
	sub.waitCall(t, "Ack 2 multiple=false")
}

func TestActiveMQScheduledRefusalsAndDrops(t *testing.T) {
	h := connected(t, pipePair, activeMQConfig(), newFakeBroker(), "1.2")
	// Expires before its delivery time: answered, never published.
	h.send(fmt.Sprintf("SEND\ndestination:/queue/q\nAMQ_SCHEDULED_DELAY:5000\nexpires:%d\nreceipt:gone\n\nx\x00", time.Now().Add(2*time.Second).UnixMilli()))
	h.expectReceipt("gone")
	if pub := h.broker.conn(t, 0).publisherIfOpen(); pub != nil && len(pub.publishes()) != 0 {
		t.Fatalf("published %+v", pub.publishes())
	}
	h.send("SEND\ndestination:/queue/q\nAMQ_SCHEDULED_DELAY:" + strconv.FormatInt((8*24*time.Hour).Milliseconds(), 10) + "\n\nx\x00")
	f := h.expectFrame("ERROR")
	if f.Value("message") != "Invalid header" || !strings.Contains(f.Body, "stomp.max_scheduled_delay") {
		t.Errorf("ERROR %s", f)
	}
}

func TestActiveMQHeadersIgnoredWithoutDialect(t *testing.T) {
	// Without stomp.dialect the plugin's meaning stays: expires and
	// AMQ_SCHEDULED_DELAY are plain message headers.
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.send("SEND\ndestination:/queue/q\nexpires:1\nAMQ_SCHEDULED_DELAY:5000\n\nx\x00")
	p := h.pub().waitPublishes(t, 1)[0]
	if p.Exchange != "" || p.Key != "q" || p.Msg.Expiration != "" || p.Msg.Headers["expires"] != "1" || p.Msg.Headers["AMQ_SCHEDULED_DELAY"] != "5000" {
		t.Errorf("publish %+v", p)
	}
}
