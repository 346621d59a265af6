package mapping

import (
	"errors"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/mapping/selector"
)

func TestActiveMQTopicPattern(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{in: "prices", want: "prices"},
		{in: "prices.>", want: "prices.#"},
		{in: ">", want: "#"},
		{in: "a.*.c", want: "a.*.c"},
		{in: "*.*", want: "*.*"},
		{in: "a.*.>", want: "a.*.#"},
		{in: "a*b.c>", want: "a*b.c>"}, // wildcards are whole words only
		{in: "a.b#", want: "a.b#"},
		{in: "a..b", want: "a..b"},
		{in: "", want: ""},
		{in: "a.>.c", err: true},
		{in: ">.a", err: true},
		{in: ">.>", err: true},
		{in: "a.#", err: true}, // a literal # in ActiveMQ, a wildcard in AMQP
		{in: "#", err: true},
	}
	for _, tc := range tests {
		got, err := ActiveMQTopicPattern(tc.in)
		if tc.err {
			if !errors.Is(err, ErrTopicWildcard) {
				t.Errorf("ActiveMQTopicPattern(%q) = %q, %v; want ErrTopicWildcard", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ActiveMQTopicPattern(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestActiveMQDurableQueueName(t *testing.T) {
	long := strings.Repeat("s", 300)
	tests := []struct {
		clientID, sub, want string
	}{
		{"app1", "orders", "stomp-durable.app1.orders"},
		{"app1", "orders.eu", "stomp-durable.app1.orders.eu"},
		{"app.1", "orders", "stomp-durable.app%2E1.orders"},
		{"app", "1.orders", "stomp-durable.app.1.orders"},
		{"100%", "x", "stomp-durable.100%25.x"},
		{"c", long, "stomp-durable.c." + strings.Repeat("s", 255-33-16) + "~55a4fb70008cadc87c4f4cfa1fd43daa"},
	}
	for _, tc := range tests {
		got := ActiveMQDurableQueueName(tc.clientID, tc.sub)
		if got != tc.want {
			t.Errorf("ActiveMQDurableQueueName(%q, %q) = %q; want %q", tc.clientID, tc.sub, got, tc.want)
		}
		if tc.sub == long {
			if len(got) != 255 {
				t.Errorf("ActiveMQDurableQueueName(%q, long) is %d bytes; want 255", tc.clientID, len(got))
			}
			if again := ActiveMQDurableQueueName(tc.clientID, tc.sub); again != got {
				t.Errorf("ActiveMQDurableQueueName is not stable: %q then %q", got, again)
			}
			if other := ActiveMQDurableQueueName(tc.clientID, tc.sub+"t"); other == got {
				t.Errorf("two long subscription names share the queue %q", got)
			}
		}
	}
	// Distinct pairs whose plain join would collide.
	if a, b := ActiveMQDurableQueueName("a.b", "c"), ActiveMQDurableQueueName("a", "b.c"); a == b {
		t.Errorf("(a.b, c) and (a, b.c) share the queue %q", a)
	}
	// Never the plugin-style name.
	if got := ActiveMQDurableQueueName("x", "y"); strings.HasPrefix(got, subscriptionQueuePrefix) {
		t.Errorf("ActiveMQDurableQueueName = %q shares the plugin prefix", got)
	}
}

func TestFitShortstrUTF8(t *testing.T) {
	name := strings.Repeat("é", 200) // 400 bytes, 2-byte runes
	got := fitShortstr(name, name)
	if len(got) != 255 {
		t.Fatalf("fitShortstr: %d bytes; want 255", len(got))
	}
	if !strings.HasPrefix(got, strings.Repeat("é", 111)+"~") {
		t.Errorf("fitShortstr cut inside a rune: %q", got)
	}
}

func TestActiveMQDeadLetterQueue(t *testing.T) {
	if got := ActiveMQDeadLetterQueue("orders"); got != "DLQ.orders" {
		t.Errorf("ActiveMQDeadLetterQueue(orders) = %q; want DLQ.orders", got)
	}
	if got := ActiveMQDeadLetterQueue(strings.Repeat("q", 255)); len(got) != 255 || !strings.HasPrefix(got, "DLQ.qqq") {
		t.Errorf("ActiveMQDeadLetterQueue(255 bytes) = %q (%d bytes); want 255 bytes", got, len(got))
	}
}

func TestExpiresTTL(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	tests := []struct {
		expires string // "" = absent
		want    string
		drop    bool
		err     wantError
	}{
		{expires: "", want: ""},
		{expires: "0", want: ""},
		{expires: "1700000005000", want: "5000"},
		{expires: "1700000000001", want: "1"},
		{expires: "1700000000000", drop: true},
		{expires: "1600000000000", drop: true},
		{expires: "soon", err: wantError{"Invalid header", "'expires' must be a time in milliseconds since the epoch, not 'soon'\n"}},
		{expires: "-5", err: wantError{"Invalid header", "'expires' must be a time in milliseconds since the epoch, not '-5'\n"}},
	}
	for _, tc := range tests {
		h := hdrs("destination", "/queue/a")
		if tc.expires != "" {
			h = hdrs("expires", tc.expires)
		}
		got, drop, err := ExpiresTTL(h, now)
		checkError(t, "ExpiresTTL("+tc.expires+")", err, tc.err)
		if got != tc.want || drop != tc.drop {
			t.Errorf("ExpiresTTL(%q) = %q, %v; want %q, %v", tc.expires, got, drop, tc.want, tc.drop)
		}
	}
}

func TestScheduledDelay(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	tests := []struct {
		h    []string
		want time.Duration
		err  wantError
	}{
		{h: nil, want: 0},
		{h: []string{"AMQ_SCHEDULED_DELAY", "5000"}, want: 5 * time.Second},
		{h: []string{"AMQ_SCHEDULED_DELAY", "0"}, want: 0},
		{h: []string{"AMQ_SCHEDULED_TIME", "1700000002500"}, want: 2500 * time.Millisecond},
		{h: []string{"AMQ_SCHEDULED_TIME", "1600000000000"}, want: 0},
		{h: []string{"AMQ_SCHEDULED_DELAY", "100", "AMQ_SCHEDULED_TIME", "1700000009000"}, want: 100 * time.Millisecond},
		{h: []string{"AMQ_SCHEDULED_DELAY", "-1"}, err: wantError{"Invalid header", "'AMQ_SCHEDULED_DELAY' must be a delay in milliseconds, not '-1'\n"}},
		{h: []string{"AMQ_SCHEDULED_DELAY", "1.5"}, err: wantError{"Invalid header", "'AMQ_SCHEDULED_DELAY' must be a delay in milliseconds, not '1.5'\n"}},
		{h: []string{"AMQ_SCHEDULED_DELAY", "9223372036854775807"}, err: wantError{"Invalid header", "'AMQ_SCHEDULED_DELAY' must be a delay in milliseconds, not '9223372036854775807'\n"}},
		{h: []string{"AMQ_SCHEDULED_TIME", "x"}, err: wantError{"Invalid header", "'AMQ_SCHEDULED_TIME' must be a time in milliseconds since the epoch, not 'x'\n"}},
	}
	for _, tc := range tests {
		got, err := ScheduledDelay(hdrs(tc.h...), now)
		call := "ScheduledDelay(" + strings.Join(tc.h, ":") + ")"
		checkError(t, call, err, tc.err)
		if got != tc.want {
			t.Errorf("%s = %v; want %v", call, got, tc.want)
		}
	}
}

func TestDelayBucket(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		delay, want time.Duration
	}{
		{0, 0},
		{-5 * ms, 0},
		{1 * ms, 250 * ms},
		{250 * ms, 250 * ms},
		{251 * ms, 500 * ms},
		{9999 * ms, 10000 * ms},
		{10000 * ms, 10000 * ms},
		{10001 * ms, 10500 * ms},
		{10500 * ms, 10500 * ms},
		{10501 * ms, 11025 * ms},
		{time.Hour, 3666588 * ms}, // 1.85 % late
	}
	for _, tc := range tests {
		got, err := DelayBucket(tc.delay, 0)
		if err != nil {
			t.Fatalf("DelayBucket(%v) = %v", tc.delay, err)
		}
		if got != tc.want {
			t.Errorf("DelayBucket(%v) = %v; want %v", tc.delay, got, tc.want)
		}
	}
	if _, err := DelayBucket(DefaultMaxDelay+ms, 0); !errors.Is(err, ErrDelayTooLong) {
		t.Errorf("DelayBucket(max + 1ms) = %v; want ErrDelayTooLong", err)
	}
	if _, err := DelayBucket(2*time.Second, time.Second); !errors.Is(err, ErrDelayTooLong) {
		t.Errorf("DelayBucket(2s, max 1s) = %v; want ErrDelayTooLong", err)
	}
}

// TestDelayBucketBound checks the promise for every delay on a
// dense sample up to the maximum: never early, late by less than
// max(10 % of the delay, 1 s), and in fact by less than half of that.
func TestDelayBucketBound(t *testing.T) {
	seen := map[time.Duration]bool{}
	check := func(d time.Duration) {
		b, err := DelayBucket(d, 0)
		if err != nil {
			t.Fatalf("DelayBucket(%v) = %v", d, err)
		}
		budget := max(d/10, time.Second)
		if b < d || b-d >= budget/2+time.Millisecond {
			t.Fatalf("DelayBucket(%v) = %v: %v late; budget %v", d, b, b-d, budget)
		}
		seen[b] = true
	}
	for d := time.Millisecond; d <= 20*time.Second; d += time.Millisecond {
		check(d)
	}
	for d := 20 * time.Second; d <= DefaultMaxDelay; d += d/1000 + 7*time.Millisecond {
		check(d)
	}
	check(DefaultMaxDelay)
	if n := DelayBucketCount(0); len(seen) > n || n != 266 {
		t.Errorf("DelayBucketCount(0) = %d; sampled %d distinct buckets; want 266 >= sampled", n, len(seen))
	}
	if n := DelayBucketCount(10 * time.Second); n != 40 {
		t.Errorf("DelayBucketCount(10s) = %d; want 40", n)
	}
	if n := DelayBucketCount(time.Second); n != 4 {
		t.Errorf("DelayBucketCount(1s) = %d; want 4", n)
	}
}

func TestPlanDelay(t *testing.T) {
	tests := []struct {
		exchange string
		bucket   time.Duration
		name     string
	}{
		{"amq.topic", 5 * time.Second, "stompgate.delay.amq.topic.5000"},
		{"", 250 * time.Millisecond, "stompgate.delay.amq.default.250"},
		{"orders", 11025 * time.Millisecond, "stompgate.delay.orders.11025"},
	}
	for _, tc := range tests {
		p := PlanDelay(tc.exchange, tc.bucket)
		want := DelayPlan{
			Bucket:   tc.bucket,
			Exchange: tc.name,
			Queue: QueueDeclare{Name: tc.name, Durable: true, Args: amqp.Table{
				"x-message-ttl":          tc.bucket.Milliseconds(),
				"x-dead-letter-exchange": tc.exchange,
				"x-queue-type":           "classic",
			}},
			Binding: Binding{Exchange: tc.name},
		}
		if p.Exchange != want.Exchange || p.Queue.Name != want.Queue.Name || !p.Queue.Durable || p.Queue.AutoDelete || p.Queue.Exclusive || p.Binding != want.Binding || p.Bucket != want.Bucket {
			t.Errorf("PlanDelay(%q, %v) = %+v; want %+v", tc.exchange, tc.bucket, p, want)
		}
		if len(p.Queue.Args) != len(want.Queue.Args) {
			t.Errorf("PlanDelay(%q, %v) args = %v; want %v", tc.exchange, tc.bucket, p.Queue.Args, want.Queue.Args)
		}
		for k, v := range want.Queue.Args {
			if p.Queue.Args[k] != v {
				t.Errorf("PlanDelay(%q, %v) arg %s = %#v; want %#v", tc.exchange, tc.bucket, k, p.Queue.Args[k], v)
			}
		}
		if _, ok := p.Queue.Args["x-dead-letter-routing-key"]; ok {
			t.Errorf("PlanDelay sets x-dead-letter-routing-key; the message's own key must be kept")
		}
	}
	long := PlanDelay(strings.Repeat("x", 250), time.Second)
	if len(long.Queue.Name) != 255 || long.Exchange != long.Queue.Name {
		t.Errorf("PlanDelay(250-byte exchange) name %q (%d bytes); want 255 bytes", long.Queue.Name, len(long.Queue.Name))
	}
}

func TestSelectorHeaders(t *testing.T) {
	s := &SelectorHeaders{H: hdrs("destination", "/topic/a", "priority", "7", "correlation-id", "c1", "type", "t",
		"timestamp", "123", "expires", "456", "message-id", "m1", "persistent", "true", "redelivered", "true",
		"JMSXDeliveryCount", "3", "subscription", "s1", "color", "red", "ack", "a1")}
	tests := []struct {
		name, want string
		ok         bool
	}{
		{"JMSDestination", "/topic/a", true}, {"JMSPriority", "7", true}, {"JMSCorrelationID", "c1", true},
		{"JMSType", "t", true}, {"JMSTimestamp", "123", true}, {"JMSExpiration", "456", true},
		{"JMSMessageID", "m1", true}, {"JMSDeliveryMode", "PERSISTENT", true}, {"JMSRedelivered", "true", true},
		{"JMSXDeliveryCount", "3", true}, {"color", "red", true}, {"ack", "a1", true},
		// ActiveMQ consumes these as JMS header fields: not properties.
		{"destination", "", false}, {"priority", "", false}, {"type", "", false}, {"timestamp", "", false},
		{"expires", "", false}, {"persistent", "", false}, {"redelivered", "", false}, {"subscription", "", false},
		{"message-id", "", false}, {"correlation-id", "", false},
	}
	for _, tc := range tests {
		if got, ok := s.Get(tc.name); ok != tc.ok || got != tc.want {
			t.Errorf("Get(%q) = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	empty := &SelectorHeaders{}
	for name, want := range map[string]string{"JMSPriority": "4", "JMSExpiration": "0", "JMSDeliveryMode": "NON_PERSISTENT",
		"JMSRedelivered": "false", "JMSXDeliveryCount": "1"} {
		if got, ok := empty.Get(name); !ok || got != want {
			t.Errorf("empty Get(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	for _, name := range []string{"JMSType", "JMSDestination", "color"} {
		if v, ok := empty.Get(name); ok {
			t.Errorf("empty Get(%q) = %q; want NULL", name, v)
		}
	}
}

func TestSelectorHeadersMatchDoesNotAllocate(t *testing.T) {
	sel, err := selector.Parse("JMSPriority > 3 AND color = 'red' AND JMSType IS NULL AND type IS NULL")
	if err != nil {
		t.Fatal(err)
	}
	h := &SelectorHeaders{H: hdrs("priority", "5", "color", "red")}
	if !sel.Match(h) {
		t.Fatalf("%q does not match %v", sel, h.H)
	}
	if n := testing.AllocsPerRun(100, func() { sel.Match(h) }); n != 0 {
		t.Errorf("Match(&SelectorHeaders) allocates %v times; want 0", n)
	}
}

func TestSubscriptionSelector(t *testing.T) {
	topic := Destination{Kind: DestTopic, RoutingKey: "a"}
	tests := []struct {
		d     Destination
		h     []string
		match bool // against color:red
		none  bool
		err   wantError
	}{
		{d: topic, none: true},
		{d: topic, h: []string{"selector", ""}, none: true},
		{d: topic, h: []string{"selector", " "}, none: true},
		{d: topic, h: []string{"selector", "color = 'red'"}, match: true},
		{d: Destination{Kind: DestExchange, Exchange: "x"}, h: []string{"selector", "color <> 'red'"}},
		{d: Destination{Kind: DestQueue, Queue: "q"}, h: []string{"selector", "color = 'red'"},
			err: wantError{"Invalid selector", "Selectors are supported on /topic and /exchange subscriptions only, not on queue destinations: a shared queue cannot skip messages without taking them from other consumers\n"}},
		{d: Destination{Kind: DestAmqQueue, Queue: "q"}, h: []string{"selector", "x"},
			err: wantError{"Invalid selector", "Selectors are supported on /topic and /exchange subscriptions only, not on amqqueue destinations: a shared queue cannot skip messages without taking them from other consumers\n"}},
		{d: topic, h: []string{"selector", "color = 'red' AND (weight > 2"},
			err: wantError{"Invalid selector", "Invalid selector at position 30: expected ')'\n"}},
	}
	for _, tc := range tests {
		sel, err := SubscriptionSelector(tc.d, hdrs(tc.h...))
		call := "SubscriptionSelector(" + tc.d.Kind.String() + ", " + strings.Join(tc.h, ":") + ")"
		checkError(t, call, err, tc.err)
		if tc.err != (wantError{}) {
			continue
		}
		if tc.none {
			if sel != nil {
				t.Errorf("%s = %v; want no selector", call, sel)
			}
			continue
		}
		if sel == nil {
			t.Fatalf("%s = nil; want a selector", call)
		}
		if got := sel.Match(&SelectorHeaders{H: hdrs("color", "red")}); got != tc.match {
			t.Errorf("%s matches color:red = %v; want %v", call, got, tc.match)
		}
	}
}
