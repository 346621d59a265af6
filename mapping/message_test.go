package mapping

import (
	"reflect"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/codec"
)

// fullDelivery sets every property and a table with one entry of each
// interesting kind, including names that try to shadow gateway headers.
func fullDelivery() *amqp.Delivery {
	return &amqp.Delivery{
		Exchange:    "amq.topic",
		RoutingKey:  "orders.eu",
		DeliveryTag: 42,
		Redelivered: true,
		Headers: amqp.Table{
			"zz-string":      "z",
			"aa-bytes":       []byte("bytes"),
			"i8":             int8(-8),
			"u8":             uint8(8),
			"i16":            int16(-16),
			"u16":            uint16(16),
			"i32":            int32(-32),
			"u32":            uint32(32),
			"i64":            int64(-64),
			"float":          3.5,
			"bool":           true,
			"time":           time.Unix(5, 0),
			"nested":         amqp.Table{"a": "b"},
			"array":          []any{"a"},
			"nil":            nil,
			"decimal":        amqp.Decimal{Scale: 1, Value: 5},
			"message-id":     "forged",
			"ack":            "forged",
			"subscription":   "forged",
			"redelivered":    "forged",
			"destination":    "forged",
			"content-length": "9",
			"priority":       "forged",
			"persistent":     "forged",
			"reply-to":       "forged",
			"":               "empty name",
		},
		AppId:           "shop",
		UserId:          "guest",
		Type:            "order",
		Timestamp:       time.Unix(1700000000, 0),
		MessageId:       "m1",
		Expiration:      "60000",
		ReplyTo:         "amq.gen-abc",
		CorrelationId:   "c1",
		Priority:        5,
		DeliveryMode:    amqp.Persistent,
		ContentEncoding: "gzip",
		ContentType:     "text/plain",
	}
}

// TestAppendMessageHeadersOrder checks the exact order of semantics 8.1.
func TestAppendMessageHeadersOrder(t *testing.T) {
	const id = "T_sub-1@@session-abc@@42"
	info := MessageInfo{SubscriptionID: "sub-1", HasSubscription: true, MessageID: id, AckID: id}
	prefix := codec.Headers{{Name: "already", Value: "there"}}
	got := AppendMessageHeaders(prefix, info, fullDelivery())
	want := hdrs(
		"already", "there",
		"subscription", "sub-1",
		"destination", "/topic/orders.eu",
		"message-id", id,
		"redelivered", "true",
		"ack", id,
		"aa-bytes", "bytes",
		"i16", "-16",
		"i32", "-32",
		"i64", "-64",
		"i8", "-8",
		"u16", "16",
		"u32", "32",
		"u8", "8",
		"zz-string", "z",
		"app-id", "shop",
		"user-id", "guest",
		"type", "order",
		"timestamp", "1700000000",
		"amqp-message-id", "m1",
		"expiration", "60000",
		"reply-to", "/reply-queue/amq.gen-abc",
		"correlation-id", "c1",
		"priority", "5",
		"persistent", "true",
		"content-encoding", "gzip",
		"content-type", "text/plain",
	)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AppendMessageHeaders =\n%s\nwant\n%s", dump(got), dump(want))
	}
}

// TestAppendMessageHeaders has one row per line of the AMQP → MESSAGE
// column of semantics 7.1 and per optional item of 8.1.
func TestAppendMessageHeaders(t *testing.T) {
	base := func() *amqp.Delivery { return &amqp.Delivery{RoutingKey: "q", DeliveryTag: 1} }
	const id = "Q_/queue/q@@s@@1"
	fixed := hdrs("destination", "/queue/q", "message-id", id, "redelivered", "false")
	tests := []struct {
		name  string
		info  MessageInfo
		edit  func(d *amqp.Delivery)
		extra codec.Headers // expected after the fixed headers
	}{
		{name: "id-less subscription, no ack, nothing set"},
		{name: "content-type", edit: func(d *amqp.Delivery) { d.ContentType = "a/b" }, extra: hdrs("content-type", "a/b")},
		{name: "content-encoding", edit: func(d *amqp.Delivery) { d.ContentEncoding = "gzip" }, extra: hdrs("content-encoding", "gzip")},
		{name: "correlation-id", edit: func(d *amqp.Delivery) { d.CorrelationId = "c" }, extra: hdrs("correlation-id", "c")},
		{name: "type", edit: func(d *amqp.Delivery) { d.Type = "t" }, extra: hdrs("type", "t")},
		{name: "app-id", edit: func(d *amqp.Delivery) { d.AppId = "a" }, extra: hdrs("app-id", "a")},
		{name: "persistent mode 2", edit: func(d *amqp.Delivery) { d.DeliveryMode = 2 }, extra: hdrs("persistent", "true")},
		{name: "persistent mode 1", edit: func(d *amqp.Delivery) { d.DeliveryMode = 1 }, extra: hdrs("persistent", "false")},
		{name: "persistent mode 3 omitted", edit: func(d *amqp.Delivery) { d.DeliveryMode = 3 }},
		{name: "priority", edit: func(d *amqp.Delivery) { d.Priority = 255 }, extra: hdrs("priority", "255")},
		{name: "reply-to queue", edit: func(d *amqp.Delivery) { d.ReplyTo = "/queue/x" }, extra: hdrs("reply-to", "/queue/x")},
		{name: "reply-to bare", edit: func(d *amqp.Delivery) { d.ReplyTo = "rq" }, extra: hdrs("reply-to", "/reply-queue/rq")},
		{name: "expiration as received", edit: func(d *amqp.Delivery) { d.Expiration = "1000" }, extra: hdrs("expiration", "1000")},
		{name: "amqp-message-id", edit: func(d *amqp.Delivery) { d.MessageId = "m" }, extra: hdrs("amqp-message-id", "m")},
		{name: "timestamp seconds", edit: func(d *amqp.Delivery) { d.Timestamp = time.Unix(1700000000, 0) }, extra: hdrs("timestamp", "1700000000")},
		{name: "timestamp epoch", edit: func(d *amqp.Delivery) { d.Timestamp = time.Unix(0, 0) }, extra: hdrs("timestamp", "0")},
		{name: "user-id", edit: func(d *amqp.Delivery) { d.UserId = "guest" }, extra: hdrs("user-id", "guest")},
		{name: "table entry", edit: func(d *amqp.Delivery) { d.Headers = amqp.Table{"x-trace": "abc", "n": int64(1) << 40} },
			extra: hdrs("n", "1099511627776", "x-trace", "abc")},
		{name: "uint64, int and uint table values", edit: func(d *amqp.Delivery) {
			d.Headers = amqp.Table{"a": uint64(1) << 63, "b": int(-3), "c": uint(3)}
		}, extra: hdrs("a", "9223372036854775808", "b", "-3", "c", "3")},
		{name: "table shadowing every gateway header", edit: func(d *amqp.Delivery) {
			d.Headers = amqp.Table{}
			for _, n := range []string{"subscription", "destination", "message-id", "redelivered", "ack", "content-length",
				"app-id", "user-id", "type", "timestamp", "amqp-message-id", "expiration", "reply-to",
				"correlation-id", "priority", "persistent", "content-encoding", "content-type"} {
				d.Headers[n] = "forged"
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := base()
			if tt.edit != nil {
				tt.edit(d)
			}
			info := tt.info
			info.MessageID = id
			got := AppendMessageHeaders(nil, info, d)
			want := append(append(codec.Headers{}, fixed...), tt.extra...)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("AppendMessageHeaders =\n%s\nwant\n%s", dump(got), dump(want))
			}
		})
	}
}

// TestAppendMessageHeadersTempQueueReply: semantics 9, a reply on a temp
// queue carries subscription /temp-queue/<name> and no ack.
func TestAppendMessageHeadersTempQueueReply(t *testing.T) {
	id := string(AppendMessageID(nil, "T_/temp-queue/t", "session-x", 3))
	got := AppendMessageHeaders(nil, MessageInfo{SubscriptionID: "/temp-queue/t", HasSubscription: true, MessageID: id},
		&amqp.Delivery{RoutingKey: "amq.gen-abc", DeliveryTag: 3})
	want := hdrs("subscription", "/temp-queue/t", "destination", "/queue/amq.gen-abc",
		"message-id", "T_/temp-queue/t@@session-x@@3", "redelivered", "false")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AppendMessageHeaders =\n%s\nwant\n%s", dump(got), dump(want))
	}
}

func dump(h codec.Headers) string {
	var b strings.Builder
	for _, x := range h {
		b.WriteString("  " + x.Name + ":" + x.Value + "\n")
	}
	return b.String()
}

// TestAckIDs covers semantics 8.1 item 3 and 8.2, including consumer tags
// that contain "@@".
func TestAckIDs(t *testing.T) {
	round := []struct {
		tag, session string
		n            uint64
		want         string
	}{
		{"T_0", "session-abc", 1, "T_0@@session-abc@@1"},
		{"Q_/queue/a", "session-abc", 18446744073709551615, "Q_/queue/a@@session-abc@@18446744073709551615"},
		{"T_a@@b", "session-s", 7, "T_a@@b@@session-s@@7"},
		{"T_@@", "session-s", 0, "T_@@@@session-s@@0"},
		{"T_x@", "session-s", 9, "T_x@@@session-s@@9"},
		{"T_/temp-queue/t", "session-s", 2, "T_/temp-queue/t@@session-s@@2"},
	}
	for _, tt := range round {
		got := string(AppendMessageID(nil, tt.tag, tt.session, tt.n))
		if got != tt.want {
			t.Errorf("AppendMessageID(%q, %q, %d) = %q; want %q", tt.tag, tt.session, tt.n, got, tt.want)
		}
		tag, session, n, ok := ParseAckID(got)
		if !ok || tag != tt.tag || session != tt.session || n != tt.n {
			t.Errorf("ParseAckID(%q) = %q, %q, %d, %v; want %q, %q, %d, true", got, tag, session, n, ok, tt.tag, tt.session, tt.n)
		}
	}
	for _, bad := range []string{
		"", "T_0", "T_0@@1", "T_0@@s@@", "T_0@@s@@x", "T_0@@s@@-1", "T_0@@s@@+1", "T_0@@s@@1 ",
		"T_0@@s@@18446744073709551616", "T_0@s@1",
	} {
		if tag, session, n, ok := ParseAckID(bad); ok {
			t.Errorf("ParseAckID(%q) = %q, %q, %d, true; want not ok", bad, tag, session, n)
		}
	}
}

// TestAckIDHeader has one row per line of the semantics 10.1 table.
func TestAckIDHeader(t *testing.T) {
	both := hdrs("message-id", "M", "id", "I", "subscription", "s")
	tests := []struct {
		v         codec.Version
		h         codec.Headers
		value     string
		present   bool
		headerNam string
	}{
		{codec.Version12, both, "I", true, "id"},
		{codec.Version12, hdrs("message-id", "M"), "M", true, "id"},
		{codec.Version12, hdrs("subscription", "s"), "", false, "id"},
		{codec.Version11, both, "M", true, "message-id"},
		{codec.Version11, hdrs("id", "I"), "I", true, "message-id"},
		{codec.Version10, both, "M", true, "message-id"},
		{codec.Version10, hdrs("id", "I"), "I", true, "message-id"},
		{codec.Version10, nil, "", false, "message-id"},
	}
	for _, tt := range tests {
		value, present, name := AckIDHeader(tt.v, tt.h)
		if value != tt.value || present != tt.present || name != tt.headerNam {
			t.Errorf("AckIDHeader(%v, %v) = %q, %v, %q; want %q, %v, %q", tt.v, tt.h, value, present, name, tt.value, tt.present, tt.headerNam)
		}
	}
	checkError(t, "MissingAckID", MissingAckID(codec.CmdAck, "id"), wantError{"Missing header", "\"ACK\" must include the \"id\" header\n"})
	checkError(t, "InvalidAckID", InvalidAckID(codec.CmdNack, "message-id"), wantError{"Invalid header", "\"NACK\" must include a valid \"message-id\" header\n"})
}

func BenchmarkAppendMessageHeaders(b *testing.B) {
	d := &amqp.Delivery{
		Exchange: "", RoutingKey: "orders", DeliveryTag: 1,
		Headers:     amqp.Table{"x-trace": "abc", "retries": int32(2), "source": []byte("web")},
		ContentType: "application/json", DeliveryMode: amqp.Persistent, Timestamp: time.Unix(1700000000, 0),
		CorrelationId: "c-1",
	}
	info := MessageInfo{SubscriptionID: "0", HasSubscription: true, MessageID: "T_0@@session-abc@@1", AckID: "T_0@@session-abc@@1"}
	dst := make(codec.Headers, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendMessageHeaders(dst[:0], info, d)
	}
}
