package gateway

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/codec"
)

// Server properties of connection.start, replayed by the profile tests
// (semantics 17).

// rabbitMQ310Start was captured live from Debian's rabbitmq-server 3.10.8
// (amqp091-go Connection.Properties).
var rabbitMQ310Start = amqp.Table{
	"capabilities": amqp.Table{
		"authentication_failure_close": true, "basic.nack": true, "connection.blocked": true,
		"consumer_cancel_notify": true, "consumer_priorities": true, "direct_reply_to": true,
		"exchange_exchange_bindings": true, "per_consumer_qos": true, "publisher_confirms": true,
	},
	"cluster_name": "rabbit@vm",
	"copyright":    "Copyright (c) 2007-2022 VMware, Inc. or its affiliates.",
	"information":  "Licensed under the MPL 2.0. Website: https://rabbitmq.com",
	"platform":     "Erlang/OTP 25.2.3",
	"product":      "RabbitMQ",
	"version":      "3.10.8",
}

// garageMQStart was captured live from Debian's garagemq
// 0.0~git20200204.15e6a9d (it reports version "0.1").
var garageMQStart = amqp.Table{
	"capabilities": amqp.Table{
		"authentication_failure_close": true, "basic.nack": true, "connection.blocked": false,
		"consumer_cancel_notify": true, "consumer_priorities": false, "exchange_exchange_bindings": false,
		"per_consumer_qos": true, "publisher_confirms": true,
	},
	"copyright": "Alexander Valinurov, 2018",
	"host":      "vm",
	"platform":  "amd64",
	"product":   "garagemq",
	"version":   "0.1",
}

// qpidBrokerJ9Start is what Qpid Broker-J 9.x sends on AMQP 0-9-1. It was
// NOT captured live (Broker-J is not installable here): it is written from
// Broker-J's source, AMQPConnection_0_8Impl's connection.start, which sends
// product and version from qpidversion.properties (qpid.name "qpid") and
// the keys of ServerPropertyNames/ConnectionStartProperties, all as
// longstr "true"/"false", and no RabbitMQ-style capabilities table.
// qpid.build and qpid.instance_name are illustrative values.
var qpidBrokerJ9Start = amqp.Table{
	"product":                               "qpid",
	"version":                               "9.2.0",
	"qpid.build":                            "4f6c3b5e1c",
	"qpid.instance_name":                    "Broker",
	"qpid.close_when_no_route":              "true",
	"qpid.message_compression_supported":    "true",
	"qpid.confirmed_publish_supported":      "true",
	"qpid.virtualhost_properties_supported": "true",
	"qpid.queue_lifetime_supported":         "true",
}

// withProps returns a copy of base with the given keys replaced (nil
// value: removed).
func withProps(base amqp.Table, kv ...any) amqp.Table {
	out := amqp.Table{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func TestProfileSelection(t *testing.T) {
	rabbitCaps := brokerCapabilities{PublisherConfirms: true, BasicNack: true, ConsumerCancelNotify: true, ConnectionBlocked: true}
	garageCaps := brokerCapabilities{PublisherConfirms: true, BasicNack: true, ConsumerCancelNotify: true}
	qpidCaps := brokerCapabilities{PublisherConfirms: true, BasicNack: true}
	tests := []struct {
		name        string
		configured  string
		props       amqp.Table
		wantProfile string
		wantCaps    brokerCapabilities
		wantNamed   bool // server-named queues
	}{
		{"RabbitMQ 3.10 auto", "auto", rabbitMQ310Start, "rabbitmq", rabbitCaps, true},
		{"RabbitMQ empty config means auto", "", rabbitMQ310Start, "rabbitmq", rabbitCaps, true},
		{"RabbitMQ product as bytes", "auto", withProps(rabbitMQ310Start, "product", []byte("RabbitMQ")), "rabbitmq", rabbitCaps, true},
		{"RabbitMQ without a capabilities table assumes all", "auto", amqp.Table{"product": "RabbitMQ"}, "rabbitmq", rabbitCaps, true},
		{"garagemq auto is generic", "auto", garageMQStart, "generic", garageCaps, false},
		{"Qpid Broker-J 9 auto", "auto", qpidBrokerJ9Start, "qpid", qpidCaps, true},
		{"Qpid product spelled out", "auto", withProps(qpidBrokerJ9Start, "product", "Apache Qpid Broker-J"), "qpid", qpidCaps, true},
		{"Qpid without confirmed publish", "auto", withProps(qpidBrokerJ9Start, "qpid.confirmed_publish_supported", nil), "qpid", brokerCapabilities{BasicNack: true}, true},
		{"Qpid confirmed publish false", "auto", withProps(qpidBrokerJ9Start, "qpid.confirmed_publish_supported", "false"), "qpid", brokerCapabilities{BasicNack: true}, true},
		{"Qpid with a capabilities table: the table wins", "auto",
			withProps(qpidBrokerJ9Start, "capabilities", amqp.Table{"publisher_confirms": false, "basic.nack": false, "connection.blocked": true}),
			"qpid", brokerCapabilities{ConnectionBlocked: true}, true},
		{"unknown product is generic", "auto", amqp.Table{"product": "ActiveMQ"}, "generic", brokerCapabilities{}, false},
		{"no properties at all is generic", "auto", nil, "generic", brokerCapabilities{}, false},
		{"forced rabbitmq on garagemq keeps garagemq's capabilities", "rabbitmq", garageMQStart, "rabbitmq", garageCaps, true},
		{"forced generic on RabbitMQ", "generic", rabbitMQ310Start, "generic", rabbitCaps, false},
		{"forced qpid, any case", " QPID ", rabbitMQ310Start, "qpid", rabbitCaps, true},
		{"forced generic without capabilities has no confirms", "generic", amqp.Table{"product": "RabbitMQ"}, "generic", brokerCapabilities{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := selectProfile(tc.configured, tc.props)
			if p.Name() != tc.wantProfile {
				t.Fatalf("profile %q, want %q", p.Name(), tc.wantProfile)
			}
			if got := profileCaps(t, p); got != tc.wantCaps {
				t.Errorf("capabilities %+v, want %+v", got, tc.wantCaps)
			}
			if p.PublisherConfirms() != tc.wantCaps.PublisherConfirms {
				t.Errorf("PublisherConfirms() = %v, want %v", p.PublisherConfirms(), tc.wantCaps.PublisherConfirms)
			}
			if p.ServerNamedQueues() != tc.wantNamed {
				t.Errorf("ServerNamedQueues() = %v, want %v", p.ServerNamedQueues(), tc.wantNamed)
			}
			// Only generic avoids exclusive queues (garagemq deadlock).
			if want := tc.wantProfile != "generic"; p.ExclusiveQueues() != want {
				t.Errorf("ExclusiveQueues() = %v, want %v", p.ExclusiveQueues(), want)
			}
		})
	}
}

func profileCaps(t *testing.T, p brokerProfile) brokerCapabilities {
	t.Helper()
	switch p := p.(type) {
	case rabbitMQProfile:
		return p.caps
	case qpidProfile:
		return p.caps
	case genericProfile:
		return p.caps
	}
	t.Fatalf("unknown profile type %T", p)
	return brokerCapabilities{}
}

func TestProfileQueueArgs(t *testing.T) {
	rabbit := selectProfile("rabbitmq", rabbitMQ310Start)
	qpid := selectProfile("qpid", qpidBrokerJ9Start)
	generic := selectProfile("generic", garageMQStart)
	tests := []struct {
		name     string
		profile  brokerProfile
		args     amqp.Table
		want     amqp.Table
		wantBody string // ERROR Invalid header body, "" for success
	}{
		{"rabbitmq passes everything", rabbit,
			amqp.Table{"x-queue-type": "quorum", "x-message-ttl": int64(5), "x-max-priority": int64(3)},
			amqp.Table{"x-queue-type": "quorum", "x-message-ttl": int64(5), "x-max-priority": int64(3)}, ""},
		{"rabbitmq nil stays nil", rabbit, nil, nil, ""},
		{"qpid nil", qpid, nil, nil, ""},
		{"qpid x-max-priority becomes x-qpid-priorities", qpid,
			amqp.Table{"x-max-priority": int64(10)}, amqp.Table{"x-qpid-priorities": int64(10)}, ""},
		{"qpid classic queue type dropped", qpid,
			amqp.Table{"x-queue-type": "classic", "x-max-priority": int64(4)}, amqp.Table{"x-qpid-priorities": int64(4)}, ""},
		{"qpid only classic leaves no arguments", qpid, amqp.Table{"x-queue-type": "classic"}, nil, ""},
		{"qpid quorum refused", qpid, amqp.Table{"x-queue-type": "quorum"}, nil,
			"'x-queue-type: quorum' is not supported by broker profile qpid\n"},
		{"qpid message ttl refused", qpid, amqp.Table{"x-message-ttl": int64(1000)}, nil,
			"'x-message-ttl' is not supported by broker profile qpid\n"},
		{"qpid names the first refused argument in sorted order", qpid,
			amqp.Table{"x-max-priority": int64(2), "x-max-length": int64(9), "x-dead-letter-exchange": "dlx"}, nil,
			"'x-dead-letter-exchange' is not supported by broker profile qpid\n"},
		{"generic nil", generic, nil, nil, ""},
		{"generic classic queue type dropped", generic, amqp.Table{"x-queue-type": "classic"}, nil, ""},
		{"generic priority refused", generic, amqp.Table{"x-max-priority": int64(10)}, nil,
			"'x-max-priority' is not supported by broker profile generic\n"},
		{"generic ttl refused", generic, amqp.Table{"x-message-ttl": int64(10)}, nil,
			"'x-message-ttl' is not supported by broker profile generic\n"},
		{"generic expires refused", generic, amqp.Table{"x-expires": int64(10), "x-queue-type": "classic"}, nil,
			"'x-expires' is not supported by broker profile generic\n"},
		{"generic stream refused", generic, amqp.Table{"x-queue-type": "stream"}, nil,
			"'x-queue-type: stream' is not supported by broker profile generic\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.profile.AdaptQueueArgs(tc.args)
			if tc.wantBody != "" {
				expectInvalidHeader(t, err, tc.wantBody)
				return
			}
			if err != nil {
				t.Fatalf("AdaptQueueArgs(%v): %v", tc.args, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("AdaptQueueArgs(%v) = %#v, want %#v", tc.args, got, tc.want)
			}
		})
	}
}

func expectInvalidHeader(t *testing.T, err error, wantBody string) {
	t.Helper()
	pe, ok := err.(*codec.ProtocolError)
	if !ok {
		t.Fatalf("error %v (%T), want *codec.ProtocolError", err, err)
	}
	if pe.Message != "Invalid header" || pe.Detail != wantBody {
		t.Errorf("ERROR %q / %q, want %q / %q", pe.Message, pe.Detail, "Invalid header", wantBody)
	}
}

// fixedClock is the Qpid profile's clock in tests: 2026-01-02 03:04:05 UTC.
var fixedClock = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestProfileQpidExpiration(t *testing.T) {
	p := qpidProfile{caps: qpidDefaults, now: func() time.Time { return fixedClock }}
	nowMs := fixedClock.UnixMilli()
	publish := []struct {
		name, ttl, want string
		wantBody        string
	}{
		{"none", "", "", ""},
		{"relative ttl becomes absolute", "60000", strconv.FormatInt(nowMs+60000, 10), ""},
		{"zero ttl is now", "0", strconv.FormatInt(nowMs, 10), ""},
		{"huge ttl saturates", "9223372036854775000", strconv.FormatInt(math.MaxInt64, 10), ""},
		{"beyond int64 refused", "99999999999999999999", "", "'expiration' must be a non-negative integer (milliseconds) of at most 19 digits, not '99999999999999999999'\n"},
	}
	for _, tc := range publish {
		t.Run("publish "+tc.name, func(t *testing.T) {
			msg := amqp.Publishing{Expiration: tc.ttl}
			err := p.AdaptPublishing(&msg)
			if tc.wantBody != "" {
				expectInvalidHeader(t, err, tc.wantBody)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg.Expiration != tc.want {
				t.Errorf("expiration %q → %q, want %q", tc.ttl, msg.Expiration, tc.want)
			}
		})
	}
	deliver := []struct{ name, abs, want string }{
		{"none", "", ""},
		{"remaining ms", strconv.FormatInt(nowMs+1500, 10), "1500"},
		{"already due shows 1", strconv.FormatInt(nowMs-20, 10), "1"},
		{"due now shows 1", strconv.FormatInt(nowMs, 10), "1"},
		{"zero means never expires", "0", ""},
		{"not a number left alone", "soon", "soon"},
	}
	for _, tc := range deliver {
		t.Run("deliver "+tc.name, func(t *testing.T) {
			d := amqp.Delivery{Expiration: tc.abs}
			p.AdaptDelivery(&d)
			if d.Expiration != tc.want {
				t.Errorf("expiration %q → %q, want %q", tc.abs, d.Expiration, tc.want)
			}
		})
	}
}

func TestProfilePublishingOtherProfiles(t *testing.T) {
	rabbit := selectProfile("rabbitmq", rabbitMQ310Start)
	msg := amqp.Publishing{Expiration: "500"}
	if err := rabbit.AdaptPublishing(&msg); err != nil || msg.Expiration != "500" {
		t.Errorf("rabbitmq: expiration %q, err %v; want \"500\" unchanged", msg.Expiration, err)
	}
	d := amqp.Delivery{Expiration: "500"}
	rabbit.AdaptDelivery(&d)
	if d.Expiration != "500" {
		t.Errorf("rabbitmq delivery expiration %q, want 500", d.Expiration)
	}

	generic := selectProfile("auto", garageMQStart)
	msg = amqp.Publishing{Expiration: "500"}
	expectInvalidHeader(t, generic.AdaptPublishing(&msg), "'expiration' is not supported by broker profile generic\n")
	msg = amqp.Publishing{Priority: 3, ContentType: "text/plain"}
	if err := generic.AdaptPublishing(&msg); err != nil {
		t.Errorf("generic without expiration: %v", err)
	}
}

// The session under a profile, against the scripted fake broker (whose
// connection.start says only product "RabbitMQ", so a forced generic
// profile sees no capabilities and no publisher confirms).

func profileConfig(profile string) Config {
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
	if len(declares) != 1 || !strings.Contains(declares[0], "args=map[x-qpid-priorities:5]") {
		t.Errorf("declares %v, want x-qpid-priorities:5 only", declares)
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
