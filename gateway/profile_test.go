package gateway

import (
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stompgate/stompgate/gateway/config"
)

// The session under a profile, against the scripted fake broker (whose
// connection.start says only product "RabbitMQ", so a forced generic
// profile sees no capabilities and no publisher confirms).

func profileConfig(profile string) config.Config {
	cfg := testConfig()
	cfg.AMQP.Profile = profile
	return cfg
}

func TestProfileGenericSessionReceiptsWithoutConfirms(t *testing.T) {
	h := connected(t, pipePair, profileConfig("generic"), newFakeBroker(), "1.2")
	h.send("SEND\ndestination:/queue/q1\nreceipt:r1\n\nhello\x00")
	h.expectReceipt("r1")
	pub := h.pub()
	if got := pub.callsOf("Confirm"); len(got) != 0 {
		t.Errorf("confirm.select sent to a broker without publisher confirms: %v", got)
	}
	// Semantics 17: the receipt follows a synchronous round trip after the
	// publish.
	calls := pub.callLog()
	publishAt, qosAt := -1, -1
	for i, c := range calls {
		switch {
		case strings.HasPrefix(c, "Publish ") && publishAt < 0:
			publishAt = i
		case c == "Qos 0 0 global=false" && publishAt >= 0 && qosAt < 0:
			qosAt = i
		}
	}
	if publishAt < 0 || qosAt < 0 {
		t.Fatalf("want Publish then Qos 0 0 on the publisher channel, calls %v", calls)
	}
	found := false
	for _, e := range h.logs.AllEntries() {
		if strings.Contains(e.Message, "no publisher confirms") {
			found = true
		}
	}
	if !found {
		t.Error("no Warn about the missing publisher confirms")
	}
	// A SEND without receipt needs no round trip.
	h.send("SEND\ndestination:/queue/q1\n\nagain\x00")
	h.send("SEND\ndestination:/queue/q1\nreceipt:r2\n\nthird\x00")
	h.expectReceipt("r2")
	if got := len(pub.callsOf("Qos")); got != 2 {
		t.Errorf("%d round trips for 2 receipts, calls %v", got, pub.callLog())
	}
}

func TestProfileGenericSessionTempQueueNamedByGateway(t *testing.T) {
	h := connected(t, pipePair, profileConfig("generic"), newFakeBroker(), "1.2")
	h.send("SEND\ndestination:/queue/requests\nreply-to:/temp-queue/answers\nreceipt:r1\n\nask\x00")
	h.expectReceipt("r1")
	pubs := h.pub().waitPublishes(t, 1)
	if !strings.HasPrefix(pubs[0].Msg.ReplyTo, "stompgate-temp-") {
		t.Errorf("reply-to %q, want a gateway-chosen stompgate-temp-… name", pubs[0].Msg.ReplyTo)
	}
	tempCh := h.broker.conn(t, 0).channel(t, 1)
	declares := tempCh.callsOf("QueueDeclare")
	want := "QueueDeclare " + pubs[0].Msg.ReplyTo + " durable=false autoDelete=true exclusive=false "
	if len(declares) != 1 || !strings.HasPrefix(declares[0], want) {
		t.Errorf("temp queue declares %v, want one %q…", declares, want)
	}
}

func TestProfileGenericSessionDeclaresNoExclusiveQueues(t *testing.T) {
	b := newFakeBroker()
	h := connected(t, pipePair, profileConfig("generic"), b, "1.2")
	h.subscribe("t1", "/topic/news")
	h.send("SEND\ndestination:/queue/private\ndurable:false\nreceipt:r1\n\nx\x00")
	h.expectReceipt("r1")
	conn := b.conn(t, 0)
	var declares []string
	for i := range conn.channelCount() {
		declares = append(declares, conn.channel(t, i).callsOf("QueueDeclare")...)
	}
	if len(declares) != 2 {
		t.Fatalf("declares %v, want the subscription queue and /queue/private", declares)
	}
	for _, d := range declares {
		if !strings.Contains(d, "autoDelete=true exclusive=false") {
			t.Errorf("%s: want auto-delete, not exclusive, under the generic profile", d)
		}
	}
}

func TestProfileGenericSessionRefusesWhatTheBrokerCannotDo(t *testing.T) {
	tests := []struct {
		name, frame, body string
	}{
		{"queue argument on SEND", "SEND\ndestination:/queue/limited\nx-max-length:10\nreceipt:r1\n\nx\x00",
			"'x-max-length' is not supported by broker profile generic\n"},
		{"per-message expiration", "SEND\ndestination:/queue/plain\nexpiration:1000\nreceipt:r1\n\nx\x00",
			"'expiration' is not supported by broker profile generic\n"},
		{"queue argument on SUBSCRIBE", "SUBSCRIBE\ndestination:/queue/ttl\nid:s1\nx-message-ttl:100\nreceipt:r1\n\n\x00",
			"'x-message-ttl' is not supported by broker profile generic\n"},
		{"quorum queue on a topic subscription", "SUBSCRIBE\ndestination:/topic/t\nid:s1\nx-queue-type:quorum\nreceipt:r1\n\n\x00",
			"'x-queue-type: quorum' is not supported by broker profile generic\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBroker()
			h := connected(t, pipePair, profileConfig("generic"), b, "1.2")
			h.send(tc.frame)
			f := h.expectError("Invalid header", tc.body)
			if got := f.Value("receipt-id"); got != "r1" {
				t.Errorf("ERROR receipt-id %q, want r1", got)
			}
			// Refused before any declare or publish (semantics 17).
			conn := b.conn(t, 0)
			for i := range conn.channelCount() {
				for _, c := range conn.channel(t, i).callLog() {
					if strings.HasPrefix(c, "QueueDeclare ") || strings.HasPrefix(c, "Publish ") {
						t.Errorf("channel #%d: %s before the refusal", i, c)
					}
				}
			}
		})
	}
}

func TestProfileQpidSession(t *testing.T) {
	b := newFakeBroker()
	h := connected(t, pipePair, profileConfig("qpid"), b, "1.2")
	// Fake broker props have no qpid.confirmed_publish_supported: no
	// confirms, receipts after the round trip.
	before := time.Now().UnixMilli()
	h.send("SEND\ndestination:/queue/prio\nx-max-priority:5\nexpiration:60000\nreceipt:r1\n\nx\x00")
	h.expectReceipt("r1")
	after := time.Now().UnixMilli()
	pub := h.pub()
	declares := pub.callsOf("QueueDeclare")
	if len(declares) != 1 || !strings.Contains(declares[0], "args=map[x-qpid-maximum-delivery-count:1 x-qpid-priorities:5]") {
		t.Errorf("declares %v, want x-qpid-priorities:5 and x-qpid-maximum-delivery-count:1 only", declares)
	}
	msg := pub.waitPublishes(t, 1)[0].Msg
	abs, err := strconv.ParseInt(msg.Expiration, 10, 64)
	if err != nil || abs < before+60000 || abs > after+60000 {
		t.Errorf("published expiration %q, want absolute ms in [%d, %d]", msg.Expiration, before+60000, after+60000)
	}

	h.subscribe("s1", "/queue/prio", "ack:client")
	subCh := b.conn(t, 0).channel(t, 1)
	subCh.waitCall(t, "Consume prio tag=T_s1 autoAck=false exclusive=false noLocal=false noWait=false args=map[]")
	deliverWithExpiration(t, subCh, "T_s1", strconv.FormatInt(time.Now().UnixMilli()+30000, 10))
	f := h.expectMessage("payload")
	left, err := strconv.ParseInt(f.Value("expiration"), 10, 64)
	if err != nil || left < 1 || left > 30000 || left < 25000 {
		t.Errorf("MESSAGE expiration %q, want the remaining ms (about 30000)", f.Value("expiration"))
	}

	h.send("SUBSCRIBE\ndestination:/queue/dl\nid:s2\nx-dead-letter-exchange:dlx\nreceipt:r2\n\n\x00")
	h.expectError("Invalid header", "'x-dead-letter-exchange' is not supported by broker profile qpid\n")
}

// deliverWithExpiration pushes a delivery carrying an expiration property
// to consumerTag on ch.
func deliverWithExpiration(t *testing.T, ch *fakeChannel, consumerTag, expiration string) {
	t.Helper()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	c, ok := ch.consumers[consumerTag]
	if !ok {
		t.Fatalf("no consumer %q on channel #%d", consumerTag, ch.index)
	}
	ch.nextTag++
	c.deliveries <- amqp.Delivery{ConsumerTag: consumerTag, DeliveryTag: ch.nextTag, RoutingKey: c.queue, Body: []byte("payload"), Expiration: expiration}
}
