//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/config"
	"github.com/stompgate/stompgate/mapping"
)

// ActiveMQ's dialect against RabbitMQ, feature by feature (issue 14). The
// differential test (activemq_differential_test.go) compares the whole
// with a real ActiveMQ.

func activeMQDialect(c *config.Config) { c.STOMP.Dialect = config.DialectActiveMQ }

// quietMessages reads MESSAGE frames until none arrives for quiet; any
// other frame fails the test.
func quietMessages(t *testing.T, c *rawConn, quiet time.Duration) []*rawFrame {
	t.Helper()
	var got []*rawFrame
	for {
		f, err := readFrame(c, quiet)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return got
		}
		if err != nil {
			t.Fatalf("reading MESSAGEs: %v", err)
		}
		if f.Command != "MESSAGE" {
			t.Fatalf("want MESSAGE, got %s", f)
		}
		got = append(got, f)
	}
}

func sendReceipted(t *testing.T, c *rawConn, frame, receipt string) {
	t.Helper()
	send(t, c, strings.Replace(frame, "\n\n", "\nreceipt:"+receipt+"\n\n", 1))
	f := expectFrame(t, c, "RECEIPT")
	expectHeader(t, f, "receipt-id", receipt)
}

func TestActiveMQSelectorsE2E(t *testing.T) {
	n := newNames(t)
	addr := startGateway(t) // selectors need no dialect
	requireGateway(t, "selectors are stompgate's")
	topic := "/topic/" + n.key("sel")
	messages := []struct{ body, headers string }{
		{"m1", "n:1\ncolor:red\nopt:x"},
		{"m2", "n:2\ncolor:green\ntype:t2"},
		{"m3", "n:3\ncolor:blue\nopt:y"},
		{"m4", "n:10\ncolor:redish\npriority:7"},
		{"m5", "n:2.5\ncolor:Red"},
		{"m6", "n:abc\ncolor:r_d"},
	}
	// Expected as ActiveMQ 5.17.2 answers (e2e/testdata/activemq), plus
	// arithmetic done right and the JMS header names.
	selectors := []struct {
		sel  string
		want []string
	}{
		{"n > 2", []string{"m3", "m4"}},
		{"n = 2", []string{"m2"}},
		{"n <> 2", []string{"m1", "m3", "m4", "m5", "m6"}},
		{"n >= 2.5", []string{"m3", "m4", "m5"}},
		{"n < 2", []string{"m1"}},
		{"n <= 2", []string{"m1", "m2"}},
		{"color = 'red'", []string{"m1"}},
		{"color <> 'red'", []string{"m2", "m3", "m4", "m5", "m6"}},
		{"color IN ('red', 'blue')", []string{"m1", "m3"}},
		{"color NOT IN ('red', 'blue')", []string{"m2", "m4", "m5", "m6"}},
		{"color LIKE 're%'", []string{"m1", "m4"}},
		{"color LIKE 'r_d'", []string{"m1", "m6"}},
		{"color LIKE 'r!_d' ESCAPE '!'", []string{"m6"}},
		{"color NOT LIKE 're%'", []string{"m2", "m3", "m5", "m6"}},
		{"n BETWEEN 2 AND 3", []string{"m2", "m3"}},
		{"n NOT BETWEEN 2 AND 3", []string{"m1", "m4"}},
		{"opt IS NULL", []string{"m2", "m4", "m5", "m6"}},
		{"opt IS NOT NULL", []string{"m1", "m3"}},
		{"opt = 'x' OR n > 5", []string{"m1", "m4"}},
		{"opt = 'x' AND color = 'red'", []string{"m1"}},
		{"NOT (color = 'red')", []string{"m2", "m3", "m4", "m5", "m6"}},
		{"missing > 1", nil},
		{"NOT (missing > 1)", nil},
		{"missing > 1 OR n = 1", []string{"m1"}},
		{"missing > 1 AND n = 1", nil},
		{"missing IN ('a')", nil},
		{"missing LIKE 'a%'", nil},
		{"TRUE", []string{"m1", "m2", "m3", "m4", "m5", "m6"}},
		{"FALSE", nil},
		{"n * 2 = 4", []string{"m2"}},
		{"n + 1 > 3", []string{"m3", "m4", "m5"}},
		{"n - 1 = 0 OR n / 2 = 5", []string{"m1", "m4"}},
		{"-n < -5", []string{"m4"}},
		{"JMSType = 't2'", []string{"m2"}},
		{"JMSPriority > 4", []string{"m4"}},
		{"JMSDeliveryMode = 'NON_PERSISTENT' AND n = 1", []string{"m1"}},
	}
	sub := connectRaw(t, addr, "1.2")
	for i, s := range selectors {
		sendReceipted(t, sub, fmt.Sprintf("SUBSCRIBE\nid:s%d\ndestination:%s\nselector:%s\n\n\x00", i, topic, s.sel), fmt.Sprintf("sub-%d", i))
	}
	pub := connectRaw(t, addr, "1.2")
	for _, m := range messages {
		sendReceipted(t, pub, "SEND\ndestination:"+topic+"\n"+m.headers+"\n\n"+m.body+"\x00", "send-"+m.body)
	}
	got := map[string][]string{}
	for _, f := range quietMessages(t, sub, time.Second) {
		id, _ := f.Get("subscription")
		got[id] = append(got[id], string(f.Body))
	}
	for i, s := range selectors {
		if g := got[fmt.Sprintf("s%d", i)]; !slices.Equal(g, s.want) {
			t.Errorf("selector %q matched %q, want %q", s.sel, g, s.want)
		}
	}

	// Refused on queues, and parse errors with the position.
	for _, tt := range []struct{ dest, sel, body string }{
		{"/queue/" + n.queue("selq"), "n > 1", "Selectors are supported on /topic and /exchange subscriptions only, not on queue destinations: a shared queue cannot skip messages without taking them from other consumers\n"},
		{"/amq/queue/" + n.queue("selq"), "n > 1", ""},
		{topic, "n >", "Invalid selector at position 4: "},
		{topic, "color LIKE 5", "Invalid selector at position 12: "},
		{topic, "(n = 1", "Invalid selector at position 7: "},
	} {
		c := connectRaw(t, addr, "1.2")
		send(t, c, "SUBSCRIBE\nid:bad\ndestination:"+tt.dest+"\nselector:"+tt.sel+"\n\n\x00")
		f := expectError(t, c, "Invalid selector", "", "")
		if !strings.HasPrefix(string(f.Body), tt.body) {
			t.Errorf("selector %q on %s: ERROR body %q, want it to start with %q", tt.sel, tt.dest, f.Body, tt.body)
		}
		expectDisconnect(t, c)
	}
}

func TestActiveMQDurableSubscriptionE2E(t *testing.T) {
	n := newNames(t)
	addr := startGateway(t)
	requireGateway(t, "client-id durable subscriptions are stompgate's")
	clientID, subName := n.base+"-cid", "billing"
	queue := mapping.ActiveMQDurableQueueName(clientID, subName)
	n.addQueue(queue)
	topic := "/topic/" + n.key("dur")
	connectAs := func() *rawConn {
		c := dialRaw(t, addr)
		send(t, c, "CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\nclient-id:"+clientID+"\n\n\x00")
		expectFrame(t, c, "CONNECTED")
		return c
	}
	c := connectAs()
	sendReceipted(t, c, "SUBSCRIBE\nid:d\ndestination:"+topic+"\nactivemq.subscriptionName:"+subName+"\n\n\x00", "sub-1")
	sendReceipted(t, c, "DISCONNECT\n\n\x00", "bye")

	pub := connectRaw(t, addr, "1.2")
	sendReceipted(t, pub, "SEND\ndestination:"+topic+"\npersistent:true\n\nwhile-away\x00", "send-1")

	c = connectAs()
	sendReceipted(t, c, "SUBSCRIBE\nid:d\ndestination:"+topic+"\nactivemq.subscriptionName:"+subName+"\n\n\x00", "sub-2")
	msgs := quietMessages(t, c, time.Second)
	if len(msgs) != 1 || string(msgs[0].Body) != "while-away" {
		t.Fatalf("after the reconnect got %d messages %v, want while-away", len(msgs), msgs)
	}
	ch := amqpChannel(t)
	if _, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil); err != nil {
		t.Fatalf("durable queue %s: %v", queue, err)
	}
	sendReceipted(t, c, "UNSUBSCRIBE\nid:d\nactivemq.subscriptionName:"+subName+"\n\n\x00", "unsub")
	ch = amqpChannel(t)
	var ae *amqp.Error
	if _, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil); !errors.As(err, &ae) || ae.Code != amqp.NotFound {
		t.Errorf("after UNSUBSCRIBE with activemq.subscriptionName: passive declare of %s = %v, want NOT_FOUND", queue, err)
	}
	// Without client-id on CONNECT the subscription is refused.
	bad := connectRaw(t, addr, "1.2")
	send(t, bad, "SUBSCRIBE\nid:d\ndestination:"+topic+"\nactivemq.subscriptionName:"+subName+"\n\n\x00")
	expectError(t, bad, "Missing Header", "", "A durable subscription (activemq.subscriptionName) needs a client-id header on CONNECT\n")
}

func TestActiveMQExpiresE2E(t *testing.T) {
	n := newNames(t)
	addr := startGateway(t, activeMQDialect)
	requireGateway(t, "stomp.dialect: activemq")
	q := "/queue/" + n.queue("exp")
	pub := connectRaw(t, addr, "1.2")
	now := time.Now().UnixMilli()
	sendReceipted(t, pub, fmt.Sprintf("SEND\ndestination:%s\nexpires:%d\n\nexpired\x00", q, now-1000), "s1")
	sendReceipted(t, pub, fmt.Sprintf("SEND\ndestination:%s\nexpires:%d\n\nshort\x00", q, now+300), "s2")
	future := now + 600000
	sendReceipted(t, pub, fmt.Sprintf("SEND\ndestination:%s\nexpires:%d\n\nlive\x00", q, future), "s3")
	sendReceipted(t, pub, "SEND\ndestination:"+q+"\n\nforever\x00", "s4")
	time.Sleep(700 * time.Millisecond) // "short" expires in the queue
	sub := connectRaw(t, addr, "1.2")
	sendReceipted(t, sub, "SUBSCRIBE\nid:e\ndestination:"+q+"\n\n\x00", "sub")
	msgs := quietMessages(t, sub, time.Second)
	var bodies []string
	for _, m := range msgs {
		bodies = append(bodies, string(m.Body))
	}
	if !slices.Equal(bodies, []string{"live", "forever"}) {
		t.Fatalf("delivered %q, want live and forever", bodies)
	}
	expectHeader(t, msgs[0], "expires", strconv.FormatInt(future, 10))
	expectHeader(t, msgs[1], "expires", "0")
	expectHeader(t, msgs[1], "priority", "4")
	for _, m := range msgs {
		for _, absent := range []string{"expiration", "redelivered", "persistent"} {
			if v, ok := m.Get(absent); ok {
				t.Errorf("MESSAGE has %s:%s, which ActiveMQ does not send", absent, v)
			}
		}
		ts, _ := m.Get("timestamp")
		if ms, err := strconv.ParseInt(ts, 10, 64); err != nil || ms < now-2000 || ms > now+5000 {
			t.Errorf("timestamp %q, want the send time in ms (about %d)", ts, now)
		}
	}
}

func TestActiveMQScheduledE2E(t *testing.T) {
	n := newNames(t)
	addr := startGateway(t, activeMQDialect)
	requireGateway(t, "stomp.dialect: activemq")
	q := "/queue/" + n.queue("delay")
	sub := connectRaw(t, addr, "1.2")
	sendReceipted(t, sub, "SUBSCRIBE\nid:d\ndestination:"+q+"\n\n\x00", "sub")
	pub := connectRaw(t, addr, "1.2")
	type sent struct {
		body  string
		at    time.Time
		delay time.Duration
	}
	var sends []sent
	for _, d := range []time.Duration{1200 * time.Millisecond, 3100 * time.Millisecond, 1700 * time.Millisecond} {
		body := "d" + strconv.FormatInt(d.Milliseconds(), 10)
		at := time.Now()
		sendReceipted(t, pub, fmt.Sprintf("SEND\ndestination:%s\nAMQ_SCHEDULED_DELAY:%d\n\n%s\x00", q, d.Milliseconds(), body), body)
		sends = append(sends, sent{body, at, d})
	}
	// AMQ_SCHEDULED_TIME: absolute.
	at := time.Now()
	sendReceipted(t, pub, fmt.Sprintf("SEND\ndestination:%s\nAMQ_SCHEDULED_TIME:%d\n\nabs\x00", q, at.Add(2*time.Second).UnixMilli()), "abs")
	sends = append(sends, sent{"abs", at, 2 * time.Second})
	sendReceipted(t, pub, "SEND\ndestination:"+q+"\n\nnow\x00", "now")
	sends = append(sends, sent{"now", time.Now(), 0})

	arrived := map[string]time.Time{}
	var order []string
	deadline := time.Now().Add(10 * time.Second)
	for len(arrived) < len(sends) && time.Now().Before(deadline) {
		f, err := readFrame(sub, time.Until(deadline))
		if err != nil {
			break
		}
		if f.Command != "MESSAGE" {
			t.Fatalf("want MESSAGE, got %s", f)
		}
		arrived[string(f.Body)] = time.Now()
		order = append(order, string(f.Body))
		if v, ok := f.Get("AMQ_SCHEDULED_DELAY"); ok {
			t.Errorf("MESSAGE carries AMQ_SCHEDULED_DELAY:%s", v)
		}
		for _, h := range f.Headers {
			if strings.HasPrefix(h[0], "x-") {
				t.Errorf("MESSAGE carries the delay queue's %s:%s", h[0], h[1])
			}
		}
	}
	t.Logf("order %v", order)
	for _, s := range sends {
		got, ok := arrived[s.body]
		if !ok {
			t.Errorf("%s never delivered", s.body)
			continue
		}
		late := got.Sub(s.at) - s.delay
		budget := max(s.delay/10, time.Second)
		t.Logf("%s: asked %v, delivered after %v", s.body, s.delay, got.Sub(s.at).Round(time.Millisecond))
		if late < 0 {
			t.Errorf("%s delivered %v early", s.body, -late)
		}
		if late > budget {
			t.Errorf("%s delivered %v late, budget %v", s.body, late, budget)
		}
	}
	if len(order) > 0 && order[0] != "now" {
		t.Errorf("first delivered %s, want the undelayed message", order[0])
	}
	// Beyond stomp.max_scheduled_delay: refused.
	send(t, pub, "SEND\ndestination:"+q+"\nAMQ_SCHEDULED_DELAY:"+strconv.FormatInt((8*24*time.Hour).Milliseconds(), 10)+"\n\ntoo-late\x00")
	expectError(t, pub, "Invalid header", "", "")
}

func TestActiveMQWildcardsE2E(t *testing.T) {
	n := newNames(t)
	addr := startGateway(t, activeMQDialect)
	requireGateway(t, "stomp.dialect: activemq")
	base := n.key("w")
	sub := connectRaw(t, addr, "1.2")
	patterns := map[string][]string{
		"prices.>":   {"prices.nyse.ibm", "prices.nasdaq", "prices", "prices.a.b.c"},
		"prices.*":   {"prices.nasdaq"},
		"*.nyse.*":   {"prices.nyse.ibm", "other.nyse.x"},
		"prices.*.*": {"prices.nyse.ibm"},
	}
	ids := map[string]string{}
	i := 0
	for p := range patterns {
		id := fmt.Sprintf("w%d", i)
		i++
		ids[id] = p
		sendReceipted(t, sub, "SUBSCRIBE\nid:"+id+"\ndestination:/topic/"+base+"."+p+"\n\n\x00", id)
	}
	pub := connectRaw(t, addr, "1.2")
	for _, k := range []string{"prices.nyse.ibm", "prices.nasdaq", "prices", "prices.a.b.c", "other.nyse.x", "pricesx.y"} {
		sendReceipted(t, pub, "SEND\ndestination:/topic/"+base+"."+k+"\n\n"+k+"\x00", k)
	}
	got := map[string][]string{}
	for _, f := range quietMessages(t, sub, time.Second) {
		id, _ := f.Get("subscription")
		got[ids[id]] = append(got[ids[id]], string(f.Body))
		dest, _ := f.Get("destination")
		if dest != "/topic/"+base+"."+string(f.Body) {
			t.Errorf("destination %q for %s", dest, f.Body)
		}
	}
	for p, want := range patterns {
		if !slices.Equal(got[p], want) {
			t.Errorf("%s matched %q, want %q", p, got[p], want)
		}
	}
	bad := connectRaw(t, addr, "1.2")
	send(t, bad, "SUBSCRIBE\nid:x\ndestination:/topic/"+base+".>.x\n\n\x00")
	expectError(t, bad, "Invalid destination", "", "")
}

func TestActiveMQRedeliveryLimitE2E(t *testing.T) {
	n := newNames(t)
	addr := startGateway(t, func(c *config.Config) { c.STOMP.MaxRedeliveries = 5 })
	requireGateway(t, "the redelivery limit is stompgate's")
	qname := n.queue("poison")
	dlq := mapping.ActiveMQDeadLetterQueue(qname)
	n.addQueue(dlq)
	q := "/queue/" + qname
	c := connectRaw(t, addr, "1.2")
	// The SUBSCRIBE header overrides stomp.max_redeliveries.
	sendReceipted(t, c, "SUBSCRIBE\nid:r\ndestination:"+q+"\nack:client-individual\nmax-redeliveries:2\n\n\x00", "sub")
	pub := connectRaw(t, addr, "1.2")
	sendReceipted(t, pub, "SEND\ndestination:"+q+"\npersistent:true\nkind:poison\n\npoison\x00", "send")
	sendReceipted(t, pub, "SEND\ndestination:"+q+"\n\nfine\x00", "send-2")
	var counts []string
	for len(counts) < 3 {
		f := expectFrame(t, c, "MESSAGE")
		ack, _ := f.Get("ack")
		if string(f.Body) == "fine" {
			send(t, c, "ACK\nid:"+ack+"\n\n\x00")
			continue
		}
		expectHeader(t, f, "destination", q)
		expectHeader(t, f, "kind", "poison")
		if len(counts) == 0 {
			expectHeader(t, f, "redelivered", "false")
		} else {
			expectHeader(t, f, "redelivered", "true")
		}
		count, _ := f.Get(mapping.HdrDeliveryCount)
		counts = append(counts, count)
		send(t, c, "NACK\nid:"+ack+"\n\n\x00")
	}
	if !slices.Equal(counts, []string{"", "2", "3"}) {
		t.Errorf("JMSXDeliveryCount on the three deliveries: %q, want none, 2, 3", counts)
	}
	if more := quietMessages(t, c, 500*time.Millisecond); len(more) != 0 {
		t.Fatalf("delivered again past the limit: %v", more)
	}
	ch := amqpChannel(t)
	d := getWithin(t, ch, dlq, 5*time.Second)
	if string(d.Body) != "poison" || d.Headers["original-destination"] != q || d.Headers["kind"] != "poison" || d.DeliveryMode != amqp.Persistent {
		t.Errorf("dead-lettered %q headers %v mode %d", d.Body, d.Headers, d.DeliveryMode)
	}
	if st, err := ch.QueueDeclarePassive(qname, true, false, false, false, nil); err != nil || st.Messages != 0 {
		t.Errorf("queue %s: %+v, %v; want empty", qname, st, err)
	}

	// A queue with a dead-letter exchange: past the limit it goes there.
	dlxQueue := n.queue("dlx-target")
	qd, err := ch.QueueDeclare(dlxQueue, false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	src := n.queue("with-dlx")
	sendReceipted(t, c, "SUBSCRIBE\nid:x\ndestination:/queue/"+src+"\nack:client\nmax-redeliveries:1\nx-dead-letter-exchange:\nx-dead-letter-routing-key:"+qd.Name+"\n\n\x00", "sub-x")
	// Published over AMQP: a SEND would declare the queue without the
	// dead-letter arguments (PRECONDITION_FAILED, as with the plugin).
	if err := ch.Publish("", src, false, false, amqp.Publishing{Body: []byte("bad")}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		f := expectFrame(t, c, "MESSAGE")
		ack, _ := f.Get("ack")
		send(t, c, "NACK\nid:"+ack+"\n\n\x00")
	}
	d = getWithin(t, ch, dlxQueue, 5*time.Second)
	if string(d.Body) != "bad" {
		t.Errorf("dead-letter exchange got %q", d.Body)
	}
	if st, err := ch.QueueDeclarePassive(mapping.ActiveMQDeadLetterQueue(src), true, false, false, false, nil); err == nil {
		t.Errorf("DLQ.%s declared although the queue has a dead-letter exchange: %+v", src, st)
	}
}
