//go:build e2e

package e2e

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/stompgate/stompgate/gateway/config"
)

// The hostile-input suite of issue 4, beyond badinput_test.go (which has
// the single cases of a body longer than its content-length, a header line
// without a colon, an oversize line and body, an invalid destination, a
// frame before CONNECT, an unknown command and wrong credentials). Here:
// floods that never end a frame, limits at their defaults, invalid UTF-8
// and escapes per version, broken content-lengths, malformed destinations,
// duplicate subscriptions, ACKs of unknown ids, a slowloris, a consumer
// that never reads, and max_connections. Every case must end in an ERROR
// (and/or a close) in bounded time, the heap must stay bounded, and a
// healthy go-stomp client keeps sending and receiving throughout.

// hostileBound is how long a case may take to be answered with an ERROR,
// and then again to be closed.
const hostileBound = 3 * time.Second

// concurrentFloodBound replaces hostileBound when all floods run at once.
const concurrentFloodBound = 15 * time.Second

// hostileMaxBody is limits.max_body of the hostile gateway.
const hostileMaxBody = 4 << 20

// heapWatch samples the process heap (the gateway runs in-process) every
// 20 ms and keeps the peak of HeapInuse.
type heapWatch struct {
	base uint64
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func heapInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func startHeapWatch() *heapWatch {
	runtime.GC()
	w := &heapWatch{base: heapInuse(), stop: make(chan struct{}), done: make(chan struct{})}
	w.peak.Store(w.base)
	go func() {
		defer close(w.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
				if h := heapInuse(); h > w.peak.Load() {
					w.peak.Store(h)
				}
			}
		}
	}()
	return w
}

// finish stops sampling and returns the peak and the settled heap (after
// a GC) above the baseline, in MiB.
func (w *heapWatch) finish() (peakMiB, afterMiB float64) {
	close(w.stop)
	<-w.done
	runtime.GC()
	after := heapInuse()
	mib := func(v uint64) float64 {
		if v < w.base {
			return 0
		}
		return float64(v-w.base) / (1 << 20)
	}
	return mib(w.peak.Load()), mib(after)
}

// healthyClient is a go-stomp client that sends with receipts and receives
// its own messages in a loop, in its own goroutine, for as long as the
// hostile cases run. err is the first failure.
type healthyClient struct {
	rounds atomic.Int64
	mu     sync.Mutex
	err    error
	stop   chan struct{}
	done   chan struct{}
}

func startHealthyClient(t *testing.T, addr, queue string) *healthyClient {
	t.Helper()
	conn := dialStomp(t, addr, stomp.ConnOpt.AcceptVersion(stomp.V12))
	sub, err := conn.Subscribe("/queue/"+queue, stomp.AckClientIndividual)
	if err != nil {
		t.Fatalf("healthy SUBSCRIBE: %v", err)
	}
	h := &healthyClient{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for i := 0; ; i++ {
			select {
			case <-h.stop:
				return
			default:
			}
			body := "healthy " + strconv.Itoa(i)
			if err := conn.Send("/queue/"+queue, "text/plain", []byte(body), stomp.SendOpt.Receipt); err != nil {
				h.fail(fmt.Errorf("round %d: SEND: %w", i, err))
				return
			}
			select {
			case msg, ok := <-sub.C:
				if !ok || msg.Err != nil {
					h.fail(fmt.Errorf("round %d: subscription ended: %v", i, msg))
					return
				}
				if string(msg.Body) != body {
					h.fail(fmt.Errorf("round %d: got %q, want %q", i, msg.Body, body))
					return
				}
				if err := conn.Ack(msg); err != nil {
					h.fail(fmt.Errorf("round %d: ACK: %w", i, err))
					return
				}
			case <-time.After(5 * time.Second):
				h.fail(fmt.Errorf("round %d: no message within 5s", i))
				return
			}
			h.rounds.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return h
}

func (h *healthyClient) fail(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		h.err = err
	}
}

// check fails t if the client failed or made no progress since the
// previous check.
func (h *healthyClient) check(t *testing.T, last *int64) {
	t.Helper()
	h.mu.Lock()
	err := h.err
	h.mu.Unlock()
	if err != nil {
		t.Fatalf("healthy client failed: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.rounds.Load() <= *last {
		if time.Now().After(deadline) {
			t.Fatalf("healthy client made no round trip in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	*last = h.rounds.Load()
}

func (h *healthyClient) halt() {
	close(h.stop)
	<-h.done
}

// flood writes chunk to c again and again, from its own goroutine, until
// the server stops taking it (closed, reset) or stop is called.
type flood struct {
	written atomic.Int64
	done    chan struct{}
}

func startFlood(c *rawConn, prefix string, chunk []byte) *flood {
	f := &flood{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		_ = c.conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.WriteString(c.conn, prefix); err != nil {
			return
		}
		for {
			n, err := c.conn.Write(chunk)
			f.written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	return f
}

// expectErrorIn reads the answer to a hostile input: an ERROR whose message
// is one of messages within bound, then the close (within
// disconnectTimeout).
func expectErrorIn(t testing.TB, c *rawConn, bound time.Duration, messages ...string) *rawFrame {
	t.Helper()
	start := time.Now()
	f, err := readFrame(c, bound)
	if err != nil {
		t.Fatalf("no ERROR within %v: %v", bound, err)
	}
	answered := time.Since(start)
	if f.Command != "ERROR" {
		t.Fatalf("want ERROR, got %s", f)
	}
	msg, _ := f.Get("message")
	ok := false
	for _, m := range messages {
		ok = ok || msg == m
	}
	if !ok {
		t.Errorf("ERROR message %q, want one of %q: %s", msg, messages, f)
	}
	expectDisconnect(t, c)
	t.Logf("ERROR %q after %v, closed %v later", msg, answered.Round(time.Millisecond), (time.Since(start) - answered).Round(time.Millisecond))
	return f
}

const connect12 = "CONNECT\nlogin:guest\npasscode:guest\nhost:/\naccept-version:1.2\n\n\x00"

func connectVersion(v string) string {
	return "CONNECT\nlogin:guest\npasscode:guest\nhost:/\naccept-version:" + v + "\n\n\x00"
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// TestHostileInput runs every hostile case on its own connection against
// one gateway with default limits (but a short connect_timeout, and
// max_body 4 MiB: a body flood legitimately buffers up to max_body per
// session, which the heap bound below would have to allow ten times), a
// healthy client alongside, then all the flooding cases at once, and checks
// the heap.
//
// Not parallel: the heap is the process's, so no other test may run
// meanwhile (parallel tests wait until the sequential ones are done).
func TestHostileInput(t *testing.T) {
	requireGateway(t, "asserts gateway limits and a gateway in this process (heap)")
	n := newNames(t)
	const connectTimeout = time.Second
	addr := startGateway(t, func(cfg *config.Config) {
		cfg.Limits.ConnectTimeout = connectTimeout
		cfg.Limits.MaxBody = hostileMaxBody
	})
	def := config.DefaultConfig().Limits
	q := "/queue/" + n.queue("hostile")
	heap := startHeapWatch()
	healthy := startHealthyClient(t, addr, n.queue("healthy"))
	var lastRound int64

	type hostileCase struct {
		name     string
		version  string // "" = no CONNECT first, else accept-version
		input    string // written at once, tolerating an early close
		prefix   string // or: flood, prefix then chunk forever
		chunk    []byte
		messages []string // acceptable ERROR messages
		receipt  string   // want this receipt-id on the ERROR
	}
	tenThousandHeaders := "SEND\ndestination:" + q + "\n" + strings.Repeat("h:v\n", 10000) + "\nbody\x00"
	cases := []hostileCase{
		// Before CONNECT (semantics 2.1).
		{name: "garbage bytes before CONNECT", input: "\x01\x02" + string(randomBytes(64<<10)), messages: []string{"Bad command", "Malformed frame", "Frame too large"}},
		{name: "LF flood before CONNECT", prefix: "", chunk: []byte(strings.Repeat("\n", 4096)), messages: []string{"Frame too large"}},
		{name: "CONNECT header flood, no NUL", prefix: "CONNECT\n", chunk: []byte(strings.Repeat("h:v\n", 1024)), messages: []string{"Frame too large"}},
		{name: "CONNECT endless line", prefix: "CONNECT\nlogin:", chunk: []byte(strings.Repeat("x", 4096)), messages: []string{"Frame too large"}},
		{name: "login without passcode", input: "CONNECT\nlogin:guest\nhost:/\naccept-version:1.2\n\n\x00", messages: []string{"Bad CONNECT"}},
		{name: "bad heart-beat header", input: "CONNECT\nlogin:guest\npasscode:guest\nheart-beat:-1,abc\n\n\x00", messages: []string{"Bad CONNECT"}},
		{name: "version mismatch", input: "CONNECT\nlogin:guest\npasscode:guest\naccept-version:2.0\n\n\x00", messages: []string{"Version mismatch"}},

		// After CONNECT: floods that never end a frame (semantics 4.5).
		{name: "garbage bytes after CONNECT", version: "1.2", input: "\x01\x02" + string(randomBytes(64<<10)), messages: []string{"Bad command", "Malformed frame", "Frame too large"}},
		{name: "header flood, no NUL", version: "1.2", prefix: "SEND\ndestination:" + q + "\n", chunk: []byte(strings.Repeat("h:v\n", 1024)), messages: []string{"Frame too large"}},
		{name: "endless header line", version: "1.2", prefix: "SEND\ndestination:" + q + "\nh:", chunk: []byte(strings.Repeat("x", 4096)), messages: []string{"Frame too large"}},
		{name: "endless command line", version: "1.2", prefix: "", chunk: []byte(strings.Repeat("S", 4096)), messages: []string{"Bad command"}},
		{name: "endless body, no content-length, no NUL", version: "1.2", prefix: "SEND\ndestination:" + q + "\n\n", chunk: []byte(strings.Repeat("b", 64<<10)), messages: []string{"Frame too large"}},
		{name: "10,000 headers", version: "1.2", input: tenThousandHeaders, messages: []string{"Frame too large"}},
		{name: "100 MiB content-length claim", version: "1.2", input: "SEND\ndestination:" + q + "\nreceipt:big\ncontent-length:104857600\n\n", messages: []string{"Frame too large"}, receipt: "big"},
		{name: "command line over 32 bytes", version: "1.2", input: strings.Repeat("SEND", 9) + "\n\n\x00", messages: []string{"Bad command"}},
		{name: "server command from client", version: "1.2", input: "MESSAGE\n\n\x00", messages: []string{"Bad command"}},
		{name: "CR without LF", version: "1.2", input: "SEND\rdestination:" + q + "\n\nx\x00", messages: []string{"Malformed frame", "Bad command"}},
		{name: "NUL in headers", version: "1.2", input: "SEND\ndestination:" + q + "\x00\n\nx\x00", messages: []string{"Malformed frame"}},
		{name: "empty header name", version: "1.2", input: "SEND\n:v\ndestination:" + q + "\n\nx\x00", messages: []string{"Malformed frame"}},
		{name: "content-length -1", version: "1.2", input: "SEND\ndestination:" + q + "\ncontent-length:-1\n\nx\x00", messages: []string{"Malformed frame"}},
		{name: "content-length abc", version: "1.2", input: "SEND\ndestination:" + q + "\ncontent-length:abc\n\nx\x00", messages: []string{"Malformed frame"}},
		{name: "content-length overflow", version: "1.2", input: "SEND\ndestination:" + q + "\ncontent-length:99999999999999999999999\n\nx\x00", messages: []string{"Malformed frame", "Frame too large"}},
		{name: "second CONNECT", version: "1.2", input: connect12, messages: []string{"Bad CONNECT"}},

		// Invalid UTF-8 and escapes (semantics 4.2, 4.3).
		{name: "invalid UTF-8 value 1.0", version: "1.0", input: "SEND\ndestination:" + q + "\nx:\xff\xfe\n\nx\x00", messages: []string{"Malformed frame"}},
		{name: "invalid UTF-8 value 1.1", version: "1.1", input: "SEND\ndestination:" + q + "\nx:\xc3\x28\n\nx\x00", messages: []string{"Malformed frame"}},
		{name: "invalid UTF-8 name 1.2", version: "1.2", input: "SEND\ndestination:" + q + "\n\xed\xa0\x80:v\n\nx\x00", messages: []string{"Malformed frame"}},
		{name: "invalid UTF-8 via escape 1.2", version: "1.2", input: "SEND\ndestination:" + q + "\nx:a\\c\xff\n\nx\x00", messages: []string{"Malformed frame"}},
		{name: "invalid escape 1.1", version: "1.1", input: "SEND\ndestination:" + q + "\nx:a\\tb\n\nx\x00", messages: []string{"Malformed frame"}},
		{name: "trailing backslash 1.1", version: "1.1", input: "SEND\ndestination:" + q + "\nx:a\\\n\nx\x00", messages: []string{"Malformed frame"}},
		{name: "invalid escape 1.2", version: "1.2", input: "SEND\ndestination:" + q + "\nx:\\x41\n\nx\x00", messages: []string{"Malformed frame"}},
		{name: "invalid escape in name 1.2", version: "1.2", input: "SEND\ndestination:" + q + "\na\\tb:v\n\nx\x00", messages: []string{"Malformed frame"}},

		// Malformed destinations (semantics 5.1) and broker refusals (14.3).
		{name: "destination /queue/", version: "1.2", input: "SEND\ndestination:/queue/\n\nx\x00", messages: []string{"Invalid destination"}},
		{name: "destination /topic/a/b", version: "1.2", input: "SUBSCRIBE\nid:1\ndestination:/topic/a/b\n\n\x00", messages: []string{"Invalid destination"}},
		{name: "destination /exchange/", version: "1.2", input: "SEND\ndestination:/exchange/\n\nx\x00", messages: []string{"Invalid destination"}},
		{name: "destination unknown prefix", version: "1.2", input: "SEND\ndestination:/bogus/x\n\nx\x00", messages: []string{"Unknown destination"}},
		{name: "destination empty", version: "1.2", input: "SEND\ndestination:\n\nx\x00", messages: []string{"Invalid destination"}},
		{name: "destination temp-queue on SEND", version: "1.2", input: "SEND\ndestination:/temp-queue/x\n\nx\x00", messages: []string{"Invalid destination"}},
		{name: "destination name over 255 bytes", version: "1.2", input: "SEND\ndestination:/queue/" + strings.Repeat("q", 300) + "\n\nx\x00", messages: []string{"Invalid destination"}},
		{name: "missing destination", version: "1.2", input: "SEND\n\nx\x00", messages: []string{"Missing destination"}},
		{name: "missing exchange", version: "1.2", input: "SEND\ndestination:/exchange/" + n.key("no-such-exchange") + "/k\nreceipt:nx\n\nx\x00", messages: []string{"not_found"}},
		{name: "missing amq queue", version: "1.2", input: "SUBSCRIBE\nid:1\ndestination:/amq/queue/" + n.queue("no-such-queue") + "\n\n\x00", messages: []string{"not_found"}},
		{name: "reserved amq. queue name", version: "1.2", input: "SEND\ndestination:/queue/amq.hostile\n\nx\x00", messages: []string{"access_refused"}},

		// Subscriptions and acks (semantics 6.2, 10.2).
		{name: "duplicate subscription id", version: "1.2", input: "SUBSCRIBE\nid:dup\ndestination:" + q + "\n\n\x00SUBSCRIBE\nid:dup\ndestination:" + q + "\nreceipt:dup2\n\n\x00", messages: []string{"Duplicated subscription identifier"}, receipt: "dup2"},
		{name: "ACK without id", version: "1.2", input: "ACK\n\n\x00", messages: []string{"Missing header"}},
		{name: "ACK of a malformed id", version: "1.2", input: "ACK\nid:not-an-ack-id\n\n\x00", messages: []string{"Invalid header"}},
		{name: "ACK of an unknown subscription", version: "1.2", input: "ACK\nid:T_nope@@SESSION@@1\n\n\x00", messages: []string{"Subscription not found"}},
		{name: "UNSUBSCRIBE of an unknown id", version: "1.2", input: "UNSUBSCRIBE\nid:nope\n\n\x00", messages: []string{"No subscription found"}},
		{name: "BEGIN without transaction", version: "1.2", input: "BEGIN\n\n\x00", messages: []string{"Missing transaction"}},
		{name: "SEND in an unknown transaction", version: "1.2", input: "SEND\ndestination:" + q + "\ntransaction:nope\n\nx\x00", messages: []string{"Bad transaction"}},
	}
	if def.MaxHeaders >= 10000 {
		t.Fatalf("limits.max_headers default %d: the 10,000 headers case would not breach it", def.MaxHeaders)
	}
	if def.MaxBody >= 100<<20 {
		t.Fatalf("limits.max_body default %d: the 100 MiB claim would not breach it", def.MaxBody)
	}
	if def.MaxHeaders != 1000 || def.MaxHeaderLine != 64<<10 || def.MaxPreconnectBytes != 64<<10 {
		t.Logf("limit defaults changed: %+v", def)
	}

	run := func(t *testing.T, tc hostileCase, bound time.Duration) {
		c := dialRaw(t, addr)
		if tc.version != "" {
			send(t, c, connectVersion(tc.version))
			connected := expectFrame(t, c, "CONNECTED")
			if strings.Contains(tc.input, "@@SESSION@@") {
				session, _ := connected.Get("session")
				tc.input = strings.ReplaceAll(tc.input, "SESSION", session)
			}
		}
		var fl *flood
		if tc.chunk != nil {
			fl = startFlood(c, tc.prefix, tc.chunk)
		} else {
			sendTolerant(t, c, tc.input)
		}
		f := expectErrorIn(t, c, bound, tc.messages...)
		if tc.receipt != "" {
			expectHeader(t, f, "receipt-id", tc.receipt)
		}
		if fl != nil {
			_ = c.conn.Close()
			<-fl.done
			t.Logf("flooded %d bytes before the gateway stopped reading", fl.written.Load())
		}
	}
	// Each case lingers up to stomp.error_linger after its ERROR (the
	// attacker does not close), so they run in parallel.
	var roundsMu sync.Mutex
	checkHealthy := func(t *testing.T) {
		roundsMu.Lock()
		defer roundsMu.Unlock()
		healthy.check(t, &lastRound)
	}
	t.Run("cases", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				run(t, tc, hostileBound)
				checkHealthy(t)
			})
		}
	})

	// The ACK of a delivery tag never delivered, on a live subscription.
	t.Run("ACK of an unknown delivery tag", func(t *testing.T) {
		c := connectRaw(t, addr, "1.2")
		send(t, c, "SUBSCRIBE\nid:s\ndestination:"+q+"\nack:client\nreceipt:s\n\n\x00")
		expectFrame(t, c, "RECEIPT")
		session := ""
		// The ack id needs the session id; CONNECTED was consumed by
		// connectRaw, so read it from a delivery.
		send(t, c, "SEND\ndestination:"+q+"\n\nprobe\x00")
		msg := expectFrame(t, c, "MESSAGE")
		ack, _ := msg.Get("ack")
		if parts := strings.Split(ack, "@@"); len(parts) == 3 {
			session = parts[1]
		}
		send(t, c, "ACK\nid:"+strings.Join([]string{"T_s", session, "999999"}, "@@")+"\nreceipt:a\n\n\x00")
		f := expectErrorIn(t, c, hostileBound, "precondition_failed")
		expectHeader(t, f, "receipt-id", "a")
		healthy.check(t, &lastRound)
	})

	// Slowloris: one byte of a CONNECT every 100 ms; limits.connect_timeout
	// (1 s here) ends it with ERROR "Connect timeout" (semantics 2.1).
	t.Run("slowloris CONNECT", func(t *testing.T) {
		c := dialRaw(t, addr)
		start := time.Now()
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := c.conn.Write([]byte{connect12[i%len(connect12)]}); err != nil {
					return
				}
			}
		}()
		f, err := readFrame(c, connectTimeout+hostileBound)
		close(stop)
		if err != nil {
			t.Fatalf("no ERROR %v after accept: %v", connectTimeout+hostileBound, err)
		}
		elapsed := time.Since(start)
		if f.Command != "ERROR" {
			t.Fatalf("want ERROR, got %s", f)
		}
		expectHeader(t, f, "message", "Connect timeout")
		if elapsed < connectTimeout-100*time.Millisecond {
			t.Errorf("Connect timeout after %v, before limits.connect_timeout %v", elapsed, connectTimeout)
		}
		expectDisconnect(t, c)
		<-done
		t.Logf("slowloris ended after %v", elapsed.Round(time.Millisecond))
		healthy.check(t, &lastRound)
	})

	// All flooding cases at once, ten connections each: some 70
	// connections pushing megabytes each (every flood goes on through the
	// error linger) through one process on two cores under -race, hence
	// the longer bound.
	t.Run("concurrent floods", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, tc := range cases {
			if tc.chunk == nil {
				continue
			}
			for i := range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					t.Run(fmt.Sprintf("%s #%d", tc.name, i), func(t *testing.T) { run(t, tc, concurrentFloodBound) })
				}()
			}
		}
		wg.Wait()
		healthy.check(t, &lastRound)
	})

	healthy.check(t, &lastRound)
	healthy.halt()
	peak, after := heap.finish()
	t.Logf("heap in use above baseline: peak %.1f MiB, after %.1f MiB; healthy client made %d round trips", peak, after, healthy.rounds.Load())
	// Generous: buffering any one flood (or the 100 MiB claim) would pass it.
	if peak > 96 {
		t.Errorf("heap peaked %.1f MiB above the baseline (bound 96 MiB)", peak)
	}
	if after > 16 {
		t.Errorf("heap %.1f MiB above the baseline after the sessions ended (bound 16 MiB)", after)
	}
}

// TestHostileSlowConsumer: a client that subscribes and never reads while
// its queue floods it. With a small writer queue and write timeout
// (semantics 13), the session is closed as a slow consumer without an
// ERROR, its unacked deliveries are back in the queue, and a healthy client
// on the same gateway is not affected.
func TestHostileSlowConsumer(t *testing.T) {
	t.Parallel()
	requireGateway(t, "needs flow.max_outbound_bytes and flow.write_timeout")
	n := newNames(t)
	const writeTimeout = time.Second
	addr := startGateway(t, func(cfg *config.Config) {
		cfg.Flow.MaxOutboundBytes = 64 << 10
		cfg.Flow.WriteTimeout = writeTimeout
	})
	healthy := startHealthyClient(t, addr, n.queue("healthy"))
	var lastRound int64
	healthy.check(t, &lastRound)

	queue := n.queue("flood")
	const total, size = 300, 64 << 10
	ch := amqpChannel(t)
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatalf("declare: %v", err)
	}
	body := strings.Repeat("f", size)
	for range total {
		if err := ch.Publish("", queue, false, false, amqpPublishing(body)); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	waitReady(t, queue, total, 10*time.Second)

	c := dialRaw(t, addr)
	send(t, c, connect12)
	expectFrame(t, c, "CONNECTED")
	send(t, c, fmt.Sprintf("SUBSCRIBE\nid:slow\ndestination:/queue/%s\nack:client\nprefetch-count:%d\nreceipt:sub\n\n\x00", queue, total))
	expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "sub")
	start := time.Now()
	// From here the client reads nothing. Its session must end, and all
	// its deliveries (none acked) return.
	waitReady(t, queue, total, writeTimeout+10*time.Second)
	t.Logf("slow consumer's session ended and %d deliveries were requeued %v after it stopped reading", total, time.Since(start).Round(time.Millisecond))
	healthy.check(t, &lastRound)

	// What reaches the client is MESSAGEs, then the close (the last
	// MESSAGE may be cut short): no ERROR can pass a blocked socket
	// (semantics 13).
	messages := 0
	for {
		f, err := readFrame(c, 5*time.Second)
		if err != nil {
			if !isClosedErr(err) || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("after %d MESSAGEs: want the close, got %v", messages, err)
			}
			break
		}
		if f.Command != "MESSAGE" {
			t.Fatalf("slow consumer got %s", f.Command)
		}
		messages++
	}
	t.Logf("the slow consumer had %d MESSAGEs in its socket buffers", messages)
	if messages >= total {
		t.Errorf("all %d MESSAGEs reached the client: it was never slow, the test proves nothing", messages)
	}
	healthy.check(t, &lastRound)
	healthy.halt()
}

// TestHostileMaxConnections: above limits.max_connections a new connection
// gets ERROR "Too many connections" and a close (semantics 2.1), a burst of
// them too; the sessions already open are unaffected, and a freed slot can
// be used again.
func TestHostileMaxConnections(t *testing.T) {
	t.Parallel()
	requireGateway(t, "needs limits.max_connections")
	n := newNames(t)
	const limit = 3
	addr := startGateway(t, func(cfg *config.Config) { cfg.Limits.MaxConnections = limit })
	queue := "/queue/" + n.queue("maxconn")
	var open []*rawConn
	for range limit {
		open = append(open, connectRaw(t, addr, "1.2"))
	}
	c := dialRaw(t, addr)
	expectErrorIn(t, c, hostileBound, "Too many connections")

	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(fmt.Sprintf("burst %d", i), func(t *testing.T) {
				c := dialRaw(t, addr)
				sendTolerant(t, c, connect12)
				expectErrorIn(t, c, hostileBound, "Too many connections")
			})
		}()
	}
	wg.Wait()

	for i, c := range open {
		send(t, c, fmt.Sprintf("SEND\ndestination:%s\nreceipt:r%d\n\nx\x00", queue, i))
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", fmt.Sprintf("r%d", i))
	}
	send(t, open[0], "DISCONNECT\nreceipt:bye\n\n\x00")
	expectFrame(t, open[0], "RECEIPT")
	expectDisconnect(t, open[0])
	// The slot is freed once the session's goroutine ends.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := dialRaw(t, addr)
		send(t, c, connect12)
		f, err := readFrame(c, frameTimeout)
		if err != nil {
			t.Fatalf("CONNECT after a slot was freed: %v", err)
		}
		if f.Command == "CONNECTED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot 5s after a DISCONNECT: %s", f)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
