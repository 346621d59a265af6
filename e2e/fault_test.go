//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stompgate/stompgate/gateway/config"
)

// The fault suite of issue 4: the gateway's AMQP connections go through a
// faultProxy (faultproxy_test.go) that passes, stalls, refuses and cuts.
// The promises checked are those of semantics 11 and 14.3: a RECEIPT means
// the broker has the message (receipted ⊆ delivered, Jepsen style); a SEND
// whose confirm never came gets none; a client whose broker link dies is
// told with an ERROR and closed; unacked deliveries go back to the queue;
// new sessions work again once the broker is back.

// faultHeartbeat is the AMQP heartbeat of gateways behind the proxy, so a
// stalled link is noticed in about three intervals (semantics 3, 14.3).
const faultHeartbeat = time.Second

// brokerHostPort is host:port of amqpURL(), the proxy's target.
func brokerHostPort(t testing.TB) string {
	t.Helper()
	u, err := url.Parse(amqpURL())
	if err != nil {
		t.Fatalf("parse AMQP_URL: %v", err)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "5672")
	}
	return u.Host
}

// startGatewayBehindProxy starts a fault proxy and a gateway whose broker
// link goes through it. The proxy is made to pass and its links cut before
// the gateway shuts down, so a session wedged on a stalled link cannot
// hold the shutdown (its cleanup is registered after the gateway's and so
// runs first).
func startGatewayBehindProxy(t *testing.T, mutate ...func(*config.Config)) (*faultProxy, string) {
	t.Helper()
	requireGateway(t, "the gateway's broker link must go through the fault proxy")
	proxy := newFaultProxy(t, brokerHostPort(t))
	addr := startGateway(t, append([]func(*config.Config){func(cfg *config.Config) {
		cfg.AMQP.URL = proxy.URL()
		cfg.AMQP.Heartbeat = faultHeartbeat
		cfg.AMQP.DialTimeout = 2 * time.Second
	}}, mutate...)...)
	t.Cleanup(func() {
		proxy.Pass()
		proxy.Cut()
	})
	return proxy, addr
}

// drainQueue takes every message of queue over AMQP (acking it) and returns
// the count per value of header key (or per body when key is "").
func drainQueue(t testing.TB, queue, key string) (counts map[string]int, redelivered map[string]bool) {
	t.Helper()
	ch := amqpChannel(t)
	counts, redelivered = map[string]int{}, map[string]bool{}
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatalf("drain %q: basic.get: %v", queue, err)
		}
		if !ok {
			return counts, redelivered
		}
		v := string(d.Body)
		if key != "" {
			v = fmt.Sprint(d.Headers[key])
		}
		counts[v]++
		if d.Redelivered {
			redelivered[v] = true
		}
	}
}

// waitReady polls the queue until it holds want ready messages and no
// consumers, or fails after timeout.
func waitReady(t testing.TB, queue string, want int, timeout time.Duration) {
	t.Helper()
	ch := amqpChannel(t)
	deadline := time.Now().Add(timeout)
	for {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			t.Fatalf("passive declare %q: %v", queue, err)
		}
		if q.Messages == want && q.Consumers == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue %q: %d ready, %d consumers after %v; want %d ready, no consumer", queue, q.Messages, q.Consumers, timeout, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// expectConnectionDied reads frames until an ERROR and fails on anything
// else but MESSAGE (those may be in flight, and are returned), then expects
// the close. The ERROR must say the AMQP link is gone (semantics 14.3).
func expectConnectionDied(t testing.TB, c *rawConn, within time.Duration) (messages []*rawFrame) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		f, err := readFrame(c, time.Until(deadline))
		if err != nil {
			t.Fatalf("want ERROR \"AMQP connection died\" within %v, read failed: %v", within, err)
		}
		switch f.Command {
		case "MESSAGE":
			messages = append(messages, f)
			continue
		case "ERROR":
			expectHeader(t, f, "message", "AMQP connection died")
			if !strings.HasPrefix(string(f.Body), "Reason: ") {
				t.Errorf("ERROR body %q, want \"Reason: <error>\" (semantics 14.3)", f.Body)
			}
			expectDisconnect(t, c)
			return messages
		default:
			t.Fatalf("want ERROR after the broker link died, got %s", f)
		}
	}
}

// expectServiceWorks checks that a new session sends with a receipt and
// receives its message (issue 4: service recovers).
func expectServiceWorks(t testing.TB, addr, queue string) {
	t.Helper()
	conn := dialStomp(t, addr, stomp.ConnOpt.AcceptVersion(stomp.V12))
	sub, err := conn.Subscribe("/queue/"+queue, stomp.AckAuto)
	if err != nil {
		t.Fatalf("SUBSCRIBE after recovery: %v", err)
	}
	body := "after recovery " + strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := conn.Send("/queue/"+queue, "text/plain", []byte(body), stomp.SendOpt.Receipt); err != nil {
		t.Fatalf("SEND after recovery: %v", err)
	}
	if got := receiveWithin(t, sub, 5*time.Second); string(got.Body) != body {
		t.Fatalf("after recovery got %q, want %q", got.Body, body)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatalf("UNSUBSCRIBE after recovery: %v", err)
	}
}

// producer pipelines persistent SENDs with receipts (receipt and seq
// header = the sequence number) on a raw 1.2 session until stopped or the
// socket fails. Runs in its own goroutine.
type producer struct {
	c       *rawConn
	queue   string
	body    []byte
	sent    atomic.Int64
	stop    chan struct{}
	done    chan struct{}
	lastErr error
}

func startProducer(c *rawConn, queue string, bodySize int) *producer {
	p := &producer{c: c, queue: queue, body: []byte(strings.Repeat("p", bodySize)), stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *producer) run() {
	defer close(p.done)
	for i := 0; ; i++ {
		select {
		case <-p.stop:
			return
		default:
		}
		frame := fmt.Sprintf("SEND\ndestination:/queue/%s\npersistent:true\nreceipt:%d\nseq:%d\ncontent-length:%d\n\n%s\x00", p.queue, i, i, len(p.body), p.body)
		_ = p.c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(p.c.conn, frame); err != nil {
			p.lastErr = err
			return
		}
		p.sent.Add(1)
	}
}

// halt stops the producer and waits for it; closing the socket unblocks a
// write the server no longer reads.
func (p *producer) halt() {
	close(p.stop)
	_ = p.c.conn.Close()
	<-p.done
}

// TestFaultCutWhileProducing: a producer sends with receipts while the AMQP
// connection is cut. Every receipted message is in the queue afterwards
// (receipted ⊆ delivered, none twice), the client got ERROR "AMQP
// connection died" and a close, and a new session works.
func TestFaultCutWhileProducing(t *testing.T) {
	t.Parallel()
	n := newNames(t)
	proxy, addr := startGatewayBehindProxy(t)
	queue := n.queue("cut-producer")

	c := connectRaw(t, addr, "1.2")
	p := startProducer(c, queue, 200)
	const cutAfter = 500
	receipted := map[string]bool{}
	var errFrame *rawFrame
	cutDone := false
	var cutAt time.Time
	deadline := time.Now().Add(30 * time.Second)
	for errFrame == nil {
		f, err := readFrame(c, time.Until(deadline))
		if err != nil {
			p.halt()
			t.Fatalf("after %d receipts (cut: %v): want RECEIPTs then ERROR, read failed: %v", len(receipted), cutDone, err)
		}
		switch f.Command {
		case "RECEIPT":
			id, _ := f.Get("receipt-id")
			if receipted[id] {
				t.Errorf("RECEIPT %s twice", id)
			}
			receipted[id] = true
			if len(receipted) >= cutAfter && !cutDone {
				cutDone = true
				cutAt = time.Now()
				if links := proxy.Cut(); links == 0 {
					t.Fatalf("proxy had no link to cut")
				}
			}
		case "ERROR":
			errFrame = f
		default:
			t.Fatalf("unexpected frame %s", f)
		}
	}
	if !cutDone {
		t.Fatalf("ERROR before the cut: %s", errFrame)
	}
	t.Logf("ERROR %.1fs after the cut: %s", time.Since(cutAt).Seconds(), errFrame)
	expectHeader(t, errFrame, "message", "AMQP connection died")
	if !strings.HasPrefix(string(errFrame.Body), "Reason: ") {
		t.Errorf("ERROR body %q, want \"Reason: <error>\" (semantics 14.3)", errFrame.Body)
	}
	expectDisconnect(t, c)
	p.halt()

	// The broker noticed the cut (the proxy closed its side): nothing of
	// this session is in flight any more.
	counts, _ := drainQueue(t, queue, "seq")
	lost := 0
	for id := range receipted {
		if counts[id] == 0 {
			lost++
			if lost <= 10 {
				t.Errorf("receipted message seq %s is not in the queue", id)
			}
		}
	}
	for seq, k := range counts {
		if k > 1 {
			t.Errorf("seq %s is in the queue %d times", seq, k)
		}
	}
	t.Logf("sent %d, receipted %d, in the queue %d, receipted but lost %d", p.sent.Load(), len(receipted), len(counts), lost)
	if lost > 0 {
		t.Fatalf("%d receipted messages lost", lost)
	}

	expectServiceWorks(t, addr, n.queue("recovered"))
}

// TestFaultStallNoReceipt: while the broker link is stalled, SENDs get no
// RECEIPT; the AMQP heartbeat notices the stall and the session ends with
// ERROR "AMQP connection died". Once the proxy passes again new sessions
// work. Small messages: nothing blocks in a socket write.
func TestFaultStallNoReceipt(t *testing.T) {
	t.Parallel()
	testStall(t, 16, 100)
}

// TestFaultStallFullSocket is TestFaultStallNoReceipt with enough bytes
// that the gateway's socket to the stalled broker fills up and a publish
// blocks in its write: the session must still end with an ERROR within a
// few heartbeat intervals, not hang.
func TestFaultStallFullSocket(t *testing.T) {
	t.Parallel()
	testStall(t, 400, 256<<10)
}

func testStall(t *testing.T, sends, bodySize int) {
	n := newNames(t)
	proxy, addr := startGatewayBehindProxy(t)
	queue := n.queue("stall")

	c := connectRaw(t, addr, "1.2")
	send(t, c, "SEND\ndestination:/queue/"+queue+"\nreceipt:before\n\nbefore the stall\x00")
	expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "before")

	proxy.Stall()
	stallAt := time.Now()
	body := strings.Repeat("s", bodySize)
	// The writes may block once the gateway stops reading (unconfirmed
	// cap, full socket), so they run in their own goroutine.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range sends {
			_ = c.conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
			frame := fmt.Sprintf("SEND\ndestination:/queue/%s\nreceipt:stalled-%d\ncontent-length:%d\n\n%s\x00", queue, i, len(body), body)
			if _, err := io.WriteString(c.conn, frame); err != nil {
				return
			}
		}
	}()
	// Semantics 11: no confirm, no RECEIPT. The heartbeat (1 s, three
	// missed) ends the session after about 3 s; allow generously more.
	const within = 15 * time.Second
	var errFrame *rawFrame
	for errFrame == nil {
		f, err := readFrame(c, within-time.Since(stallAt))
		if err != nil {
			t.Errorf("no ERROR %v after the broker link stalled: %v", within, err)
			break
		}
		switch f.Command {
		case "RECEIPT":
			t.Errorf("RECEIPT %s while the broker link is stalled (semantics 11: only after the confirm)", f)
		case "ERROR":
			errFrame = f
		default:
			t.Errorf("unexpected frame %s", f)
		}
	}
	if errFrame != nil {
		t.Logf("ERROR %.1fs after the stall: %s", time.Since(stallAt).Seconds(), errFrame)
		expectHeader(t, errFrame, "message", "AMQP connection died")
		expectDisconnect(t, c)
	}
	_ = c.conn.Close()
	wg.Wait()

	// Drop what the proxy held, then let the broker back in.
	proxy.Cut()
	proxy.Pass()
	expectServiceWorks(t, addr, n.queue("recovered"))
}

// TestFaultCutConsumer: a consumer whose AMQP side is cut gets ERROR "AMQP
// connection died" and a close; its unacked deliveries are back in the
// queue (redelivered), its acked ones are gone.
func TestFaultCutConsumer(t *testing.T) {
	t.Parallel()
	n := newNames(t)
	proxy, addr := startGatewayBehindProxy(t)
	queue := n.queue("cut-consumer")
	const total, prefetch, acked = 50, 10, 3

	ch := amqpChannel(t)
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatalf("declare %q: %v", queue, err)
	}
	for i := range total {
		if err := ch.Publish("", queue, false, false, amqp.Publishing{Body: []byte(fmt.Sprintf("m-%d", i)), DeliveryMode: amqp.Persistent}); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	waitReady(t, queue, total, 5*time.Second)

	c := connectRaw(t, addr, "1.2")
	send(t, c, fmt.Sprintf("SUBSCRIBE\nid:s\ndestination:/queue/%s\nack:client-individual\nprefetch-count:%d\nreceipt:sub\n\n\x00", queue, prefetch))
	expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "sub")
	var delivered []*rawFrame
	for range prefetch {
		delivered = append(delivered, expectFrame(t, c, "MESSAGE"))
	}
	ackedBodies := map[string]bool{}
	for i := range acked {
		ack, _ := delivered[i].Get("ack")
		send(t, c, "ACK\nid:"+ack+"\nreceipt:ack-"+strconv.Itoa(i)+"\n\n\x00")
		ackedBodies[string(delivered[i].Body)] = true
	}
	// Each ACK opens the prefetch window: a MESSAGE may come before or
	// after its RECEIPT.
	for receipts := 0; receipts < acked; {
		f, err := readFrame(c, frameTimeout)
		if err != nil {
			t.Fatalf("want the ACK RECEIPTs: %v", err)
		}
		switch f.Command {
		case "RECEIPT":
			receipts++
		case "MESSAGE":
			delivered = append(delivered, f)
		default:
			t.Fatalf("want RECEIPT or MESSAGE, got %s", f)
		}
	}
	// A RECEIPT for an ACK means written to the AMQP socket (semantics 11);
	// give the proxy a moment to pass the basic.ack on before cutting.
	time.Sleep(300 * time.Millisecond)
	if proxy.Cut() == 0 {
		t.Fatalf("proxy had no link to cut")
	}
	delivered = append(delivered, expectConnectionDied(t, c, 10*time.Second)...)

	waitReady(t, queue, total-acked, 10*time.Second)
	counts, redelivered := drainQueue(t, queue, "")
	for i := range total {
		body := fmt.Sprintf("m-%d", i)
		switch {
		case ackedBodies[body] && counts[body] != 0:
			t.Errorf("acked %s is back in the queue", body)
		case !ackedBodies[body] && counts[body] != 1:
			t.Errorf("%s is in the queue %d times, want once", body, counts[body])
		}
	}
	for _, f := range delivered[acked:] {
		if !redelivered[string(f.Body)] {
			t.Errorf("unacked %s came back without the redelivered flag", f.Body)
		}
	}
	expectServiceWorks(t, addr, n.queue("recovered"))
}

// TestFaultRefusedBroker: with the broker refusing connections, CONNECT gets
// ERROR "Bad CONNECT" saying the broker could not be reached (semantics
// 2.3), then a close; once the broker accepts again, so does the gateway.
func TestFaultRefusedBroker(t *testing.T) {
	t.Parallel()
	n := newNames(t)
	proxy, addr := startGatewayBehindProxy(t)
	proxy.Refuse()
	c := dialRaw(t, addr)
	send(t, c, "CONNECT\nlogin:guest\npasscode:guest\nhost:/\naccept-version:1.2\n\n\x00")
	f := expectError(t, c, "Bad CONNECT", "", "")
	if !strings.HasPrefix(string(f.Body), "Could not reach the AMQP broker") || !strings.HasSuffix(string(f.Body), "\n") {
		t.Errorf("ERROR body %q, want \"Could not reach the AMQP broker…\\n\"", f.Body)
	}
	expectDisconnect(t, c)
	if proxy.Accepted() == 0 {
		t.Fatalf("the gateway never tried the broker")
	}
	proxy.Pass()
	expectServiceWorks(t, addr, n.queue("recovered"))
}

// TestFaultFailoverToSecondURL: amqp.url is a list tried in order (issue 4,
// several brokers); with the first broker refusing or stalled, new sessions
// go to the second.
func TestFaultFailoverToSecondURL(t *testing.T) {
	t.Parallel()
	requireGateway(t, "needs an amqp.url list")
	for _, tc := range []struct {
		name  string
		fault func(*faultProxy)
	}{
		{"refusing first broker", (*faultProxy).Refuse},
		{"stalled first broker", (*faultProxy).Stall},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := newNames(t)
			dead := newFaultProxy(t, brokerHostPort(t))
			tc.fault(dead)
			const dialTimeout = 2 * time.Second
			addr := startGateway(t, func(cfg *config.Config) {
				cfg.AMQP.URL = dead.URL() + ",amqp://" + brokerHostPort(t)
				cfg.AMQP.DialTimeout = dialTimeout
			})
			t.Cleanup(func() { dead.Pass(); dead.Cut() })
			for i := range 3 {
				start := time.Now()
				c := dialRaw(t, addr)
				send(t, c, "CONNECT\nlogin:guest\npasscode:guest\nhost:/\naccept-version:1.2\n\n\x00")
				f, err := readFrame(c, 3*dialTimeout)
				if err != nil {
					t.Fatalf("session %d: no answer to CONNECT: %v", i, err)
				}
				if f.Command != "CONNECTED" {
					t.Fatalf("session %d: want CONNECTED through the second URL, got %s", i, f)
				}
				t.Logf("session %d connected in %v", i, time.Since(start).Round(time.Millisecond))
				send(t, c, "DISCONNECT\nreceipt:bye\n\n\x00")
				expectFrame(t, c, "RECEIPT")
				expectDisconnect(t, c)
			}
			if got := dead.Accepted(); got < 3 {
				t.Errorf("the first URL was tried %d times, want every time (3)", got)
			}
			expectServiceWorks(t, addr, n.queue("failover"))
		})
	}
}

// isClosedErr reports whether err says the peer closed or reset.
func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded)
}

// amqpPublishing is a persistent message with body.
func amqpPublishing(body string) amqp.Publishing {
	return amqp.Publishing{Body: []byte(body), DeliveryMode: amqp.Persistent}
}
