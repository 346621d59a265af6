package mapping

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/codec"
)

// TestDurableSubscriptionName checks the recipe of semantics 5.4 against
// its worked examples and against values computed with Erlang's own
// term_to_binary (LIST_EXT for more than 65535 bytes, raw non-ASCII bytes).
func TestDurableSubscriptionName(t *testing.T) {
	tests := []struct {
		rk, id, want string
	}{
		{"orders.eu", "billing-1", "stomp-subscription-ZcZqX455OG-UXv3OfAFdNg"},
		{"", "x", "stomp-subscription-h-fwebydKM-y5XzgjiGmqA"},
		{strings.Repeat("a", 70000), "x", "stomp-subscription-mHYrF_JImAoSkSMq83BofQ"},
		{"a/b%", "\xc8\xc9", "stomp-subscription-4iiyXQEoIRUdQZ7NNhWkxQ"},
	}
	for _, tt := range tests {
		if got := DurableSubscriptionName(tt.rk, tt.id); got != tt.want {
			t.Errorf("DurableSubscriptionName(%.20q, %q) = %q; want %q", tt.rk, tt.id, got, tt.want)
		}
	}
}

func testSubscribeOptions() SubscribeOptions {
	return SubscribeOptions{
		TopicExchange:   "amq.topic",
		DefaultPrefetch: 1000,
		MaxPrefetch:     10000,
		RandomName:      func() string { return "RRRRRRRRRRRRRRRRRRRRRR" },
	}
}

// TestPlanSubscription has one row per SUBSCRIBE line of the semantics 5.2
// and 5.3 tables and per header of 6.1.
func TestPlanSubscription(t *testing.T) {
	const random = "stomp-subscription-RRRRRRRRRRRRRRRRRRRRRR"
	durableName := DurableSubscriptionName("orders.eu", "sub-1")
	tests := []struct {
		name string
		dest string
		h    codec.Headers
		want SubscriptionPlan // Destination filled in by the test
		err  wantError
	}{
		{
			name: "queue declares durable q, no bind",
			dest: "/queue/q", h: hdrs("id", "0"),
			want: SubscriptionPlan{ID: "0", HasID: true, ConsumerTag: "T_0", Prefetch: 1000, Queue: "q",
				Declare: &QueueDeclare{Name: "q", Durable: true}},
		},
		{
			name: "bare name, no id: Q_ tag",
			dest: "q",
			want: SubscriptionPlan{ConsumerTag: "Q_q", Prefetch: 1000, Queue: "q",
				Declare: &QueueDeclare{Name: "q", Durable: true}},
		},
		{
			name: "queue durable:false",
			dest: "/queue/q", h: hdrs("durable", "false"),
			want: SubscriptionPlan{ConsumerTag: "Q_/queue/q", Prefetch: 1000, Queue: "q",
				Declare: &QueueDeclare{Name: "q", Exclusive: true, AutoDelete: true}},
		},
		{
			name: "queue persistent:false is an alias on SUBSCRIBE",
			dest: "/queue/q", h: hdrs("persistent", "false"),
			want: SubscriptionPlan{ConsumerTag: "Q_/queue/q", Prefetch: 1000, Queue: "q",
				Declare: &QueueDeclare{Name: "q", Exclusive: true, AutoDelete: true}},
		},
		{
			name: "queue arguments",
			dest: "/queue/q", h: hdrs("id", "a", "x-queue-type", "quorum", "x-max-length", "7"),
			want: SubscriptionPlan{ID: "a", HasID: true, ConsumerTag: "T_a", Prefetch: 1000, Queue: "q",
				Declare: &QueueDeclare{Name: "q", Durable: true, Args: amqp.Table{"x-queue-type": "quorum", "x-max-length": int64(7)}}},
		},
		{
			name: "amq/queue declares nothing",
			dest: "/amq/queue/q", h: hdrs("id", "1", "x-max-length", "7"),
			want: SubscriptionPlan{ID: "1", HasID: true, ConsumerTag: "T_1", Prefetch: 1000, Queue: "q"},
		},
		{
			name: "reply-queue declares nothing",
			dest: "/reply-queue/amq.gen-1", h: hdrs("id", "1"),
			want: SubscriptionPlan{ID: "1", HasID: true, ConsumerTag: "T_1", Prefetch: 1000, Queue: "amq.gen-1"},
		},
		{
			name: "topic transient: exclusive, auto-delete, bound to T",
			dest: "/topic/orders.eu", h: hdrs("id", "1"),
			want: SubscriptionPlan{ID: "1", HasID: true, ConsumerTag: "T_1", Prefetch: 1000, Queue: random,
				Declare: &QueueDeclare{Name: random, Exclusive: true, AutoDelete: true},
				Bind:    &Binding{Exchange: "amq.topic", RoutingKey: "orders.eu"}},
		},
		{
			name: "topic transient exclusive:false honored",
			dest: "/topic/t", h: hdrs("exclusive", "false"),
			want: SubscriptionPlan{ConsumerTag: "Q_/topic/t", Prefetch: 1000, Queue: random,
				Declare: &QueueDeclare{Name: random, AutoDelete: true},
				Bind:    &Binding{Exchange: "amq.topic", RoutingKey: "t"}},
		},
		{
			name: "exchange transient with key",
			dest: "/exchange/x/k", h: hdrs("id", "1"),
			want: SubscriptionPlan{ID: "1", HasID: true, ConsumerTag: "T_1", Prefetch: 1000, Queue: random,
				Declare: &QueueDeclare{Name: random, Exclusive: true, AutoDelete: true},
				Bind:    &Binding{Exchange: "x", RoutingKey: "k"}},
		},
		{
			name: "exchange transient without key binds with \"\"",
			dest: "/exchange/amq.fanout", h: hdrs("id", "1"),
			want: SubscriptionPlan{ID: "1", HasID: true, ConsumerTag: "T_1", Prefetch: 1000, Queue: random,
				Declare: &QueueDeclare{Name: random, Exclusive: true, AutoDelete: true},
				Bind:    &Binding{Exchange: "amq.fanout", RoutingKey: ""}},
		},
		{
			name: "topic durable: durable, non-exclusive, auto-delete, recipe name",
			dest: "/topic/orders.eu", h: hdrs("id", "sub-1", "durable", "true"),
			want: SubscriptionPlan{ID: "sub-1", HasID: true, ConsumerTag: "T_sub-1", Prefetch: 1000, Queue: durableName, Durable: true,
				Declare: &QueueDeclare{Name: durableName, Durable: true, AutoDelete: true},
				Bind:    &Binding{Exchange: "amq.topic", RoutingKey: "orders.eu"}},
		},
		{
			name: "topic durable via persistent:True, auto-delete:false",
			dest: "/topic/orders.eu", h: hdrs("persistent", "True", "id", "sub-1", "auto-delete", "false"),
			want: SubscriptionPlan{ID: "sub-1", HasID: true, ConsumerTag: "T_sub-1", Prefetch: 1000, Queue: durableName, Durable: true,
				Declare: &QueueDeclare{Name: durableName, Durable: true},
				Bind:    &Binding{Exchange: "amq.topic", RoutingKey: "orders.eu"}},
		},
		{
			name: "exchange durable hashes only the key",
			dest: "/exchange/other/orders.eu", h: hdrs("id", "sub-1", "durable", "true"),
			want: SubscriptionPlan{ID: "sub-1", HasID: true, ConsumerTag: "T_sub-1", Prefetch: 1000, Queue: durableName, Durable: true,
				Declare: &QueueDeclare{Name: durableName, Durable: true, AutoDelete: true},
				Bind:    &Binding{Exchange: "other", RoutingKey: "orders.eu"}},
		},
		{
			name: "x-queue-name verbatim, transient",
			dest: "/topic/t", h: hdrs("id", "1", "x-queue-name", "my-q"),
			want: SubscriptionPlan{ID: "1", HasID: true, ConsumerTag: "T_1", Prefetch: 1000, Queue: "my-q",
				Declare: &QueueDeclare{Name: "my-q", Exclusive: true, AutoDelete: true},
				Bind:    &Binding{Exchange: "amq.topic", RoutingKey: "t"}},
		},
		{
			name: "x-queue-name verbatim, durable",
			dest: "/topic/t", h: hdrs("id", "1", "durable", "true", "x-queue-name", "my-q"),
			want: SubscriptionPlan{ID: "1", HasID: true, ConsumerTag: "T_1", Prefetch: 1000, Queue: "my-q", Durable: true,
				Declare: &QueueDeclare{Name: "my-q", Durable: true, AutoDelete: true},
				Bind:    &Binding{Exchange: "amq.topic", RoutingKey: "t"}},
		},
		{
			name: "ack client, prefetch 10",
			dest: "/amq/queue/q", h: hdrs("ack", "client", "prefetch-count", "10"),
			want: SubscriptionPlan{ConsumerTag: "Q_/amq/queue/q", Ack: AckClient, Prefetch: 10, Queue: "q"},
		},
		{
			name: "ack client-individual, prefetch 0 clamps to max",
			dest: "/amq/queue/q", h: hdrs("ack", "client-individual", "prefetch-count", "0"),
			want: SubscriptionPlan{ConsumerTag: "Q_/amq/queue/q", Ack: AckClientIndividual, Prefetch: 10000, Queue: "q"},
		},
		{
			name: "ack auto explicit, prefetch above max clamps",
			dest: "/amq/queue/q", h: hdrs("ack", "auto", "prefetch-count", "20000"),
			want: SubscriptionPlan{ConsumerTag: "Q_/amq/queue/q", Prefetch: 10000, Queue: "q"},
		},
		{
			name: "x-stream-offset first",
			dest: "/amq/queue/s", h: hdrs("x-stream-offset", "first"),
			want: SubscriptionPlan{ConsumerTag: "Q_/amq/queue/s", Prefetch: 1000, Queue: "s", ConsumeArgs: amqp.Table{"x-stream-offset": "first"}},
		},
		{
			name: "x-stream-offset last",
			dest: "/amq/queue/s", h: hdrs("x-stream-offset", "last"),
			want: SubscriptionPlan{ConsumerTag: "Q_/amq/queue/s", Prefetch: 1000, Queue: "s", ConsumeArgs: amqp.Table{"x-stream-offset": "last"}},
		},
		{
			name: "x-stream-offset next",
			dest: "/amq/queue/s", h: hdrs("x-stream-offset", "next"),
			want: SubscriptionPlan{ConsumerTag: "Q_/amq/queue/s", Prefetch: 1000, Queue: "s", ConsumeArgs: amqp.Table{"x-stream-offset": "next"}},
		},
		{
			name: "x-stream-offset offset=",
			dest: "/amq/queue/s", h: hdrs("x-stream-offset", "offset=42"),
			want: SubscriptionPlan{ConsumerTag: "Q_/amq/queue/s", Prefetch: 1000, Queue: "s", ConsumeArgs: amqp.Table{"x-stream-offset": int64(42)}},
		},
		{
			name: "x-stream-offset timestamp=",
			dest: "/amq/queue/s", h: hdrs("x-stream-offset", "timestamp=1700000000"),
			want: SubscriptionPlan{ConsumerTag: "Q_/amq/queue/s", Prefetch: 1000, Queue: "s", ConsumeArgs: amqp.Table{"x-stream-offset": time.Unix(1700000000, 0)}},
		},
		{
			name: "selector ignored",
			dest: "/amq/queue/q", h: hdrs("selector", "a = 1"),
			want: SubscriptionPlan{ConsumerTag: "Q_/amq/queue/q", Prefetch: 1000, Queue: "q"},
		},
		{
			name: "repeated id: first wins",
			dest: "/amq/queue/q", h: hdrs("id", "first", "id", "second"),
			want: SubscriptionPlan{ID: "first", HasID: true, ConsumerTag: "T_first", Prefetch: 1000, Queue: "q"},
		},

		// Errors of 6.1.
		{name: "durable without id", dest: "/topic/t", h: hdrs("durable", "true"),
			err: wantError{"Missing Header", "Header 'id' is required for durable subscriptions"}},
		{name: "persistent without id", dest: "/queue/q", h: hdrs("persistent", "true"),
			err: wantError{"Missing Header", "Header 'id' is required for durable subscriptions"}},
		{name: "temp-queue id", dest: "/queue/q", h: hdrs("id", "/temp-queue/x"),
			err: wantError{"Invalid id", "SUBSCRIBE 'id' may not start with /temp-queue/\n"}},
		{name: "bad ack", dest: "/queue/q", h: hdrs("ack", "Client"),
			err: wantError{"Invalid header", "'ack' must be auto, client or client-individual, not 'Client'\n"}},
		{name: "negative prefetch", dest: "/queue/q", h: hdrs("prefetch-count", "-1"),
			err: wantError{"Invalid header", "'prefetch-count' must be a non-negative integer, not '-1'\n"}},
		{name: "non-integer prefetch", dest: "/queue/q", h: hdrs("prefetch-count", "lots"),
			err: wantError{"Invalid header", "'prefetch-count' must be a non-negative integer, not 'lots'\n"}},
		{name: "bad stream offset", dest: "/amq/queue/s", h: hdrs("x-stream-offset", "offset=abc"),
			err: wantError{"Invalid header", "'x-stream-offset' must be first, last, next, offset=<integer> or timestamp=<integer>, not 'offset=abc'\n"}},
		{name: "unknown stream offset", dest: "/amq/queue/s", h: hdrs("x-stream-offset", "FIRST"),
			err: wantError{"Invalid header", "'x-stream-offset' must be first, last, next, offset=<integer> or timestamp=<integer>, not 'FIRST'\n"}},
		{name: "bad queue argument", dest: "/topic/t", h: hdrs("x-expires", "soon"),
			err: wantError{"Invalid header", "'x-expires' must be an integer, not 'soon'\n"}},
		{name: "tag too long", dest: "/queue/q", h: hdrs("id", strings.Repeat("i", 254)),
			err: wantError{"Invalid header", "consumer tag '" + truncate("T_"+strings.Repeat("i", 254)) + "' is longer than 255 bytes: shorten the 'id' (or 'destination') header\n"}},
		{name: "x-queue-name too long", dest: "/topic/t", h: hdrs("x-queue-name", strings.Repeat("n", 256)),
			err: wantError{"Invalid header", "'x-queue-name' must be a queue name of at most 255 bytes, not '" + truncate(strings.Repeat("n", 256)) + "'\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseDestination(tt.dest, codec.CmdSubscribe)
			if err != nil {
				t.Fatalf("ParseDestination(%q) = %v", tt.dest, err)
			}
			got, err := PlanSubscription(d, tt.h, testSubscribeOptions())
			call := fmt.Sprintf("PlanSubscription(%q, %v)", tt.dest, tt.h)
			checkError(t, call, err, tt.err)
			if err != nil {
				return
			}
			tt.want.Destination = d
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s =\n %+v\nwant\n %+v", call, got, tt.want)
				if got.Declare != nil && tt.want.Declare != nil {
					t.Errorf("declare %+v; want %+v", *got.Declare, *tt.want.Declare)
				}
			}
		})
	}
}

// TestPlanSubscriptionTagLimit: the longest id that fits is accepted.
func TestPlanSubscriptionTagLimit(t *testing.T) {
	d, _ := ParseDestination("/queue/q", codec.CmdSubscribe)
	p, err := PlanSubscription(d, hdrs("id", strings.Repeat("i", 253)), testSubscribeOptions())
	if err != nil || len(p.ConsumerTag) != 255 {
		t.Fatalf("PlanSubscription(253-byte id) = tag of %d bytes, %v; want 255, nil", len(p.ConsumerTag), err)
	}
}

// TestPlanSubscriptionRandomName: without RandomName, transient names are
// 22 characters of base64url and differ between calls.
func TestPlanSubscriptionRandomName(t *testing.T) {
	d, _ := ParseDestination("/topic/t", codec.CmdSubscribe)
	opt := testSubscribeOptions()
	opt.RandomName = nil
	a, err := PlanSubscription(d, nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := PlanSubscription(d, nil, opt)
	suffix, ok := strings.CutPrefix(a.Queue, "stomp-subscription-")
	if !ok || len(suffix) != 22 || strings.Trim(suffix, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Errorf("transient queue name %q; want stomp-subscription- + 22 base64url characters", a.Queue)
	}
	if a.Queue == b.Queue {
		t.Errorf("two transient subscriptions share queue %q", a.Queue)
	}
}

// TestPlanUnsubscribe has one row per line of the semantics 6.3 table.
func TestPlanUnsubscribe(t *testing.T) {
	tests := []struct {
		h    codec.Headers
		want UnsubscribeTarget
		err  wantError
	}{
		{h: hdrs("id", "0"), want: UnsubscribeTarget{ConsumerTag: "T_0", ID: "0", HasID: true}},
		{h: hdrs("destination", "/queue/a"), want: UnsubscribeTarget{ConsumerTag: "Q_/queue/a", Destination: "/queue/a"}},
		{h: hdrs("destination", "/queue/a", "id", "7"), want: UnsubscribeTarget{ConsumerTag: "T_7", ID: "7", HasID: true}},
		{h: hdrs("id", "s", "durable", "true"), want: UnsubscribeTarget{ConsumerTag: "T_s", ID: "s", HasID: true, DeleteDurable: true}},
		{h: hdrs("id", "s", "persistent", "True"), want: UnsubscribeTarget{ConsumerTag: "T_s", ID: "s", HasID: true, DeleteDurable: true}},
		{h: hdrs("id", "s", "durable", "false"), want: UnsubscribeTarget{ConsumerTag: "T_s", ID: "s", HasID: true}},
		{h: nil, err: wantError{"Missing destination or id", "UNSUBSCRIBE must include a 'destination' or 'id' header"}},
		{h: hdrs("receipt", "r"), err: wantError{"Missing destination or id", "UNSUBSCRIBE must include a 'destination' or 'id' header"}},
		{h: hdrs("id", "/temp-queue/x"), err: wantError{"Invalid id", "UNSUBSCRIBE 'id' may not start with /temp-queue/\n"}},
		{h: hdrs("destination", "/topic/t", "durable", "true"), err: wantError{"Missing Header", "Header 'id' is required for durable subscriptions"}},
		{h: hdrs("destination", "/topic/t", "persistent", "true"), err: wantError{"Missing Header", "Header 'id' is required for durable subscriptions"}},
	}
	for _, tt := range tests {
		got, err := PlanUnsubscribe(tt.h)
		call := fmt.Sprintf("PlanUnsubscribe(%v)", tt.h)
		checkError(t, call, err, tt.err)
		if err == nil && got != tt.want {
			t.Errorf("%s = %+v; want %+v", call, got, tt.want)
		}
	}
}

func TestNoSubscriptionFound(t *testing.T) {
	checkError(t, "NoSubscriptionFound(id)", NoSubscriptionFound(UnsubscribeTarget{ID: "0", HasID: true}),
		wantError{"No subscription found", "UNSUBSCRIBE must refer to an existing subscription.\nSubscription to \"id='0'\" not found.\n"})
	checkError(t, "NoSubscriptionFound(destination)", NoSubscriptionFound(UnsubscribeTarget{Destination: "/queue/a"}),
		wantError{"No subscription found", "UNSUBSCRIBE must refer to an existing subscription.\nSubscription to \"destination='/queue/a'\" not found.\n"})
	checkError(t, "NoSubscriptionFound(quote)", NoSubscriptionFound(UnsubscribeTarget{ID: `a"b\`, HasID: true}),
		wantError{"No subscription found", "UNSUBSCRIBE must refer to an existing subscription.\nSubscription to \"id='a\\\"b\\\\'\" not found.\n"})
	checkError(t, "DuplicateSubscription", DuplicateSubscription("T_0"),
		wantError{"Duplicated subscription identifier", "A subscription identified by 'T_0' already exists."})
}

func TestSubscriptionDescription(t *testing.T) {
	d, _ := ParseDestination("/queue/a", codec.CmdSubscribe)
	withID, _ := PlanSubscription(d, hdrs("id", "7"), testSubscribeOptions())
	withoutID, _ := PlanSubscription(d, nil, testSubscribeOptions())
	if got := withID.Description(); got != "id='7'" {
		t.Errorf("Description() with id = %q", got)
	}
	if got := withoutID.Description(); got != "destination='/queue/a'" {
		t.Errorf("Description() without id = %q", got)
	}
}

// TestTruncate: echoed values are cut on a rune boundary.
func TestTruncate(t *testing.T) {
	v := strings.Repeat("a", maxQuoted-1) + "é" // é straddles the limit
	if got, want := truncate(v), strings.Repeat("a", maxQuoted-1)+"..."; got != want {
		t.Errorf("truncate = %q; want %q", got, want)
	}
	if got := truncate("short"); got != "short" {
		t.Errorf("truncate(short) = %q", got)
	}
}
