package broker

import (
	"math"
	"reflect"
	"strconv"
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

// qpidBrokerJStart is what a live Qpid Broker-J 10.1.0 sent, as
// amqp091-go decodes it: testdata/connection-start.bin, captured byte for
// byte (e2e/testdata/qpid/README.md). TestQpidBrokerJCapturedHandshake
// replays those bytes and checks that they decode to exactly this table.
// Every value is a longstr; there is no capabilities table.
var qpidBrokerJStart = amqp.Table{
	"product":                               "Apache Qpid Broker-J Core",
	"version":                               "10.1.0",
	"qpid.build":                            "90e0ae4d8b6fe71f8638ad1c3fe1b2f71301c009",
	"qpid.instance_name":                    "stompgate-qpid",
	"qpid.virtualhost_properties_supported": "true",
	"qpid.message_compression_supported":    "true",
	"qpid.queue_lifetime_supported":         "true",
	"qpid.confirmed_publish_supported":      "true",
	"qpid.close_when_no_route":              "true",
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
	rabbitCaps := Capabilities{PublisherConfirms: true, BasicNack: true, ConsumerCancelNotify: true, ConnectionBlocked: true}
	garageCaps := Capabilities{PublisherConfirms: true, BasicNack: true, ConsumerCancelNotify: true}
	qpidCaps := Capabilities{PublisherConfirms: true, BasicNack: true}
	tests := []struct {
		name        string
		configured  string
		props       amqp.Table
		wantProfile string
		wantCaps    Capabilities
		wantNamed   bool // server-named queues
	}{
		{"RabbitMQ 3.10 auto", "auto", rabbitMQ310Start, "rabbitmq", rabbitCaps, true},
		{"RabbitMQ empty config means auto", "", rabbitMQ310Start, "rabbitmq", rabbitCaps, true},
		{"RabbitMQ product as bytes", "auto", withProps(rabbitMQ310Start, "product", []byte("RabbitMQ")), "rabbitmq", rabbitCaps, true},
		{"RabbitMQ without a capabilities table assumes all", "auto", amqp.Table{"product": "RabbitMQ"}, "rabbitmq", rabbitCaps, true},
		{"garagemq auto is generic", "auto", garageMQStart, "generic", garageCaps, false},
		{"Qpid Broker-J 10.1.0 auto", "auto", qpidBrokerJStart, "qpid", qpidCaps, true},
		{"Qpid short product name", "auto", withProps(qpidBrokerJStart, "product", "qpid"), "qpid", qpidCaps, true},
		{"Qpid without confirmed publish", "auto", withProps(qpidBrokerJStart, "qpid.confirmed_publish_supported", nil), "qpid", Capabilities{BasicNack: true}, true},
		{"Qpid confirmed publish false", "auto", withProps(qpidBrokerJStart, "qpid.confirmed_publish_supported", "false"), "qpid", Capabilities{BasicNack: true}, true},
		{"Qpid with a capabilities table: the table wins", "auto",
			withProps(qpidBrokerJStart, "capabilities", amqp.Table{"publisher_confirms": false, "basic.nack": false, "connection.blocked": true}),
			"qpid", Capabilities{ConnectionBlocked: true}, true},
		{"unknown product is generic", "auto", amqp.Table{"product": "ActiveMQ"}, "generic", Capabilities{}, false},
		{"no properties at all is generic", "auto", nil, "generic", Capabilities{}, false},
		{"forced rabbitmq on garagemq keeps garagemq's capabilities", "rabbitmq", garageMQStart, "rabbitmq", garageCaps, true},
		{"forced generic on RabbitMQ", "generic", rabbitMQ310Start, "generic", rabbitCaps, false},
		{"forced qpid, any case", " QPID ", rabbitMQ310Start, "qpid", rabbitCaps, true},
		{"forced generic without capabilities has no confirms", "generic", amqp.Table{"product": "RabbitMQ"}, "generic", Capabilities{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := SelectProfile(tc.configured, tc.props)
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

func profileCaps(t *testing.T, p Profile) Capabilities {
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
	return Capabilities{}
}

func TestProfileQueueArgs(t *testing.T) {
	rabbit := SelectProfile("rabbitmq", rabbitMQ310Start)
	qpid := SelectProfile("qpid", qpidBrokerJStart)
	generic := SelectProfile("generic", garageMQStart)
	tests := []struct {
		name     string
		profile  Profile
		args     amqp.Table
		want     amqp.Table
		wantBody string // ERROR Invalid header body, "" for success
	}{
		{"rabbitmq passes everything", rabbit,
			amqp.Table{"x-queue-type": "quorum", "x-message-ttl": int64(5), "x-max-priority": int64(3)},
			amqp.Table{"x-queue-type": "quorum", "x-message-ttl": int64(5), "x-max-priority": int64(3)}, ""},
		{"rabbitmq nil stays nil", rabbit, nil, nil, ""},
		{"qpid nil gets a maximum delivery count", qpid, nil, amqp.Table{"x-qpid-maximum-delivery-count": int64(1)}, ""},
		{"qpid x-max-priority becomes x-qpid-priorities", qpid,
			amqp.Table{"x-max-priority": int64(10)}, amqp.Table{"x-qpid-priorities": int64(10), "x-qpid-maximum-delivery-count": int64(1)}, ""},
		{"qpid classic queue type dropped", qpid,
			amqp.Table{"x-queue-type": "classic", "x-max-priority": int64(4)}, amqp.Table{"x-qpid-priorities": int64(4), "x-qpid-maximum-delivery-count": int64(1)}, ""},
		{"qpid only classic leaves the delivery count", qpid, amqp.Table{"x-queue-type": "classic"}, amqp.Table{"x-qpid-maximum-delivery-count": int64(1)}, ""},
		{"qpid expires refused", qpid, amqp.Table{"x-expires": int64(1000)}, nil,
			"'x-expires' is not supported by broker profile qpid\n"},
		{"qpid max length refused", qpid, amqp.Table{"x-max-length": int64(10)}, nil,
			"'x-max-length' is not supported by broker profile qpid\n"},
		{"qpid dead-letter routing key refused", qpid, amqp.Table{"x-dead-letter-routing-key": "k"}, nil,
			"'x-dead-letter-routing-key' is not supported by broker profile qpid\n"},
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
	rabbit := SelectProfile("rabbitmq", rabbitMQ310Start)
	msg := amqp.Publishing{Expiration: "500"}
	if err := rabbit.AdaptPublishing(&msg); err != nil || msg.Expiration != "500" {
		t.Errorf("rabbitmq: expiration %q, err %v; want \"500\" unchanged", msg.Expiration, err)
	}
	d := amqp.Delivery{Expiration: "500"}
	rabbit.AdaptDelivery(&d)
	if d.Expiration != "500" {
		t.Errorf("rabbitmq delivery expiration %q, want 500", d.Expiration)
	}

	generic := SelectProfile("auto", garageMQStart)
	msg = amqp.Publishing{Expiration: "500"}
	expectInvalidHeader(t, generic.AdaptPublishing(&msg), "'expiration' is not supported by broker profile generic\n")
	msg = amqp.Publishing{Priority: 3, ContentType: "text/plain"}
	if err := generic.AdaptPublishing(&msg); err != nil {
		t.Errorf("generic without expiration: %v", err)
	}
}
