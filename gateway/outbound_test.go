package gateway

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The writer goroutine, heart-beats and flow control towards the client:
// semantics 3, 10.3, 13.

// ackedTags returns the delivery tags covered by the Ack calls recorded on
// ch (multiple=true covers every tag up to its own).
func ackedTags(ch *fakeChannel) map[uint64]bool {
	acked := map[uint64]bool{}
	for _, c := range ch.callsOf("Ack") {
		var tag uint64
		var multiple bool
		if _, err := fmt.Sscanf(c, "Ack %d multiple=%t", &tag, &multiple); err != nil {
			panic(err)
		}
		acked[tag] = true
		if multiple {
			for t := uint64(1); t < tag; t++ {
				acked[t] = true
			}
		}
	}
	return acked
}

func TestAutoAckAfterWrite(t *testing.T) {
	// Semantics 10.3: an ack:auto delivery is acked once its MESSAGE was
	// written to the socket. net.Pipe has no buffer: a write completes only
	// when the client reads.
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.subscribe("0", "/queue/a")
	ch := h.sub("T_0")
	ch.deliver(t, "T_0", "m1")
	h.expectNothingRead()
	if got := ch.callsOf("Ack"); len(got) != 0 {
		t.Fatalf("acked before the MESSAGE was written: %q", got)
	}
	h.expectMessage("m1")
	ch.waitCall(t, "Ack 1 multiple=false")

	for i := 2; i <= 5; i++ {
		ch.deliver(t, "T_0", fmt.Sprint("m", i))
	}
	for i := 2; i <= 5; i++ {
		h.expectMessage(fmt.Sprint("m", i))
	}
	eventually(t, "tags 1..5 acked", func() bool { return len(ackedTags(ch)) == 5 }, ch.callLog)
}

func TestAutoAcksAreCoalesced(t *testing.T) {
	// Semantics 10.3: ack:auto acks are batched with multiple=true; with a
	// large prefetch they may wait for autoAckBatch deliveries or
	// autoAckDelay, never for more than that.
	h := connected(t, tcpPair, testConfig(), newFakeBroker(), "1.2")
	h.subscribe("0", "/queue/a") // default prefetch 1000
	ch := h.sub("T_0")
	const n = 300
	for i := 1; i <= n; i++ {
		ch.deliver(t, "T_0", fmt.Sprint("m", i))
	}
	for i := 1; i <= n; i++ {
		h.expectMessage(fmt.Sprint("m", i))
	}
	eventually(t, "every written delivery acked", func() bool { return len(ackedTags(ch)) == n }, ch.callLog)
	if calls := len(ch.callsOf("Ack")); calls >= n/2 {
		t.Errorf("%d Ack calls for %d deliveries: not coalesced", calls, n)
	}

	// A small prefetch is acked at once, one by one, never on the timer.
	h.subscribe("1", "/queue/b", "prefetch-count:1")
	ch2 := h.sub("T_1")
	ch2.deliver(t, "T_1", "only")
	h.expectMessage("only")
	ch2.waitCall(t, "Ack 1 multiple=false")
}

func TestUnsubscribeAcksWrittenAutoDeliveriesBeforeClosing(t *testing.T) {
	// An ack on a channel that is already closed is a connection error on
	// RabbitMQ (504 CHANNEL_ERROR); a written ack:auto delivery that is not
	// acked before the close is requeued and delivered twice. UNSUBSCRIBE
	// therefore writes, then acks, then closes.
	h := connected(t, tcpPair, testConfig(), newFakeBroker(), "1.2")
	h.subscribe("0", "/queue/a") // default prefetch: acks are coalesced
	ch := h.sub("T_0")
	for i := 1; i <= 3; i++ {
		ch.deliver(t, "T_0", fmt.Sprint("m", i))
	}
	for i := 1; i <= 3; i++ {
		h.expectMessage(fmt.Sprint("m", i))
	}
	h.send("UNSUBSCRIBE\nid:0\nreceipt:u\n\n\x00")
	h.expectReceipt("u")
	log := ch.callLog()
	closeAt, lastAck := -1, -1
	for i, c := range log {
		switch {
		case strings.HasPrefix(c, "Close"):
			closeAt = i
		case strings.HasPrefix(c, "Ack"):
			lastAck = i
		}
	}
	if closeAt < 0 || lastAck < 0 || lastAck > closeAt {
		t.Fatalf("want the acks before the channel Close, calls %q", log)
	}
	if got := len(ackedTags(ch)); got != 3 {
		t.Errorf("%d of 3 written deliveries acked before the close; calls %q", got, log)
	}
}

// expectNothingRead waits quietPeriod without reading from the connection,
// so that nothing the server writes can complete on a net.Pipe.
func (h *sessionHarness) expectNothingRead() {
	time.Sleep(quietPeriod) // the absence of an event: nothing to poll for
}

func TestWriterQueueFullStopsTakingDeliveries(t *testing.T) {
	// Semantics 13: while the writer queue is full, no deliveries are
	// taken; they stay at the broker (here: in the consumer's channel).
	cfg := testConfig()
	cfg.Flow.MaxOutboundBytes = 1024
	h := connected(t, pipePair, cfg, newFakeBroker(), "1.2")
	h.subscribe("0", "/queue/a")
	ch := h.sub("T_0")
	const pushed = 400
	body := strings.Repeat("x", 200)
	for i := range pushed {
		ch.deliver(t, "T_0", fmt.Sprintf("%03d%s", i, body))
	}
	// The loop reads the first subscription's deliveries itself: it takes
	// what fits 1 KiB plus the batch the writer is stuck on.
	eventually(t, "the session took some deliveries", func() bool { return pushed-ch.pendingDeliveries("T_0") >= 4 })
	h.expectNothingRead()
	if taken := pushed - ch.pendingDeliveries("T_0"); taken > 12 {
		t.Fatalf("the session took %d deliveries while its writer queue was full", taken)
	}
	if got := ch.callsOf("Ack"); len(got) != 0 {
		t.Fatalf("acked unwritten deliveries: %q", got)
	}
	for i := range pushed {
		h.expectMessage(fmt.Sprintf("%03d%s", i, body))
	}
	eventually(t, "all deliveries acked", func() bool { return len(ackedTags(ch)) == pushed })
}

// expectHeartbeats reads n EOLs; any other byte fails the test.
func (c *stompClient) expectHeartbeats(n int) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(waitBound))
	for i := 0; i < n; i++ {
		b, err := c.br.ReadByte()
		if err != nil {
			c.t.Fatalf("waiting for heart-beat %d: %v", i+1, err)
		}
		if b != '\n' {
			c.t.Fatalf("got %q, want a heart-beat LF", b)
		}
	}
}

func TestWriterSendsHeartbeatsWhenIdle(t *testing.T) {
	forEachTransport(t, func(t *testing.T, pair connPair) {
		h := startSession(t, pair, testConfig(), newFakeBroker())
		h.send(connectFrame("heart-beat:0,40"))
		f := h.expectFrame("CONNECTED")
		if got := f.Value("heart-beat"); got != "40,0" {
			t.Fatalf("CONNECTED heart-beat %q, want 40,0", got)
		}
		start := time.Now()
		h.expectHeartbeats(3)
		// One LF whenever nothing was written for S/2: three take at
		// least a full interval.
		if d := time.Since(start); d < 40*time.Millisecond {
			t.Errorf("3 heart-beats within %v, faster than every S/2", d)
		}
	})
}

// shortWriterIdle makes idle writers park after d for one test.
func shortWriterIdle(t *testing.T, d time.Duration) {
	old := writerIdleTimeout
	writerIdleTimeout = d
	t.Cleanup(func() { writerIdleTimeout = old })
}

func (o *outbound) isWriterRunning() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.writerRunning
}

func TestIdleWriterParksAndStartsAgain(t *testing.T) {
	// Without heart-beats to send, the writer goroutine returns when idle
	// and the next frame starts a new one; nothing is lost or reordered.
	shortWriterIdle(t, 10*time.Millisecond)
	forEachTransport(t, func(t *testing.T, pair connPair) {
		h := connected(t, pair, testConfig(), newFakeBroker(), "1.2")
		h.subscribe("0", "/queue/a")
		ch := h.sub("T_0")
		for round := range 3 {
			eventually(t, "the writer parked", func() bool { return !h.sess.out.isWriterRunning() })
			for i := range 3 {
				ch.deliver(t, "T_0", fmt.Sprintf("round %d message %d", round, i))
			}
			for i := range 3 {
				h.expectMessage(fmt.Sprintf("round %d message %d", round, i))
			}
		}
		// ack:auto deliveries written by a writer that then parked are
		// acknowledged, not left for the broker to requeue.
		eventually(t, "all 9 deliveries acked", func() bool { return len(ackedTags(ch)) == 9 })
		h.send("DISCONNECT\nreceipt:bye\n\n\x00")
		h.expectReceipt("bye")
	})
}

func TestWriterWithHeartbeatsDoesNotPark(t *testing.T) {
	shortWriterIdle(t, 10*time.Millisecond)
	h := startSession(t, pipePair, testConfig(), newFakeBroker())
	h.send(connectFrame("heart-beat:0,40"))
	h.expectFrame("CONNECTED")
	h.expectHeartbeats(3) // a parked writer would send none
	if !h.sess.out.isWriterRunning() {
		t.Error("the writer of a session with heart-beats parked")
	}
}

func TestHeartbeatTimeout(t *testing.T) {
	forEachTransport(t, func(t *testing.T, pair connPair) {
		h := startSession(t, pair, testConfig(), newFakeBroker())
		// R = 100 ms, tolerance 2: 200 ms of silence ends the session.
		h.send(connectFrame("heart-beat:100,0"))
		f := h.expectFrame("CONNECTED")
		if got := f.Value("heart-beat"); got != "0,100" {
			t.Fatalf("CONNECTED heart-beat %q, want 0,100", got)
		}
		// Heart-beats from the client keep it alive well past 200 ms.
		tick := time.NewTicker(20 * time.Millisecond)
		for range 20 {
			<-tick.C
			h.send("\n")
		}
		tick.Stop()
		// The session's receive deadline restarts when it reads again
		// after this frame, so after silent.
		silent := time.Now()
		h.send("SUBSCRIBE\nid:0\ndestination:/queue/a\nreceipt:alive\n\n\x00")
		h.expectReceipt("alive")
		h.expectError("Heart-beat timeout", "No data was received from the client within the negotiated heart-beat interval.\n")
		if d := time.Since(silent); d < 200*time.Millisecond {
			t.Errorf("timed out after %v of silence, before R × tolerance = 200ms", d)
		}
	})
}

func TestSlowConsumerClosesWithoutError(t *testing.T) {
	// Semantics 13: a write without progress for flow.write_timeout ends
	// the session; no ERROR can pass. Unwritten deliveries stay unacked.
	cfg := testConfig()
	cfg.Flow.WriteTimeout = 100 * time.Millisecond
	h := connected(t, pipePair, cfg, newFakeBroker(), "1.2")
	h.subscribe("0", "/queue/a")
	ch := h.sub("T_0")
	ch.deliver(t, "T_0", "never read")
	h.waitEnded()
	h.expectDisconnect()
	if got := ch.callsOf("Ack"); len(got) != 0 {
		t.Errorf("acked an unwritten delivery: %q", got)
	}
	if !h.broker.conn(t, 0).isClosed() {
		t.Error("AMQP connection left open")
	}
}

// Panics: style.md practice 7, a panic ends only its session.

func TestPanicInSessionLoopEndsSession(t *testing.T) {
	b := newFakeBroker()
	b.setHook(func(_ *fakeChannel, method string) error {
		if method == "Publish" {
			panic("fake broker bug")
		}
		return nil
	})
	h := connected(t, pipePair, testConfig(), b, "1.2")
	h.send("SEND\ndestination:/topic/t\n\nboom\x00")
	h.expectDisconnect()
	h.waitEnded()
	eventually(t, "AMQP connection closed", b.conn(t, 0).isClosed)
}

func TestPanicWithBlockedForwarderReleasesGoroutines(t *testing.T) {
	// The recover in session.run must stop every goroutine of the session,
	// including a forwarder blocked handing over a delivery while the
	// writer queue is full. The harness's goleak check fails otherwise.
	// The second subscription has the forwarder (the loop reads the
	// first's deliveries itself).
	cfg := testConfig()
	cfg.Flow.MaxOutboundBytes = 256
	b := newFakeBroker()
	h := connected(t, pipePair, cfg, b, "1.2")
	h.subscribe("0", "/queue/a")
	h.subscribe("1", "/queue/b")
	ch := h.sub("T_1")
	const pushed = 200
	for i := range pushed {
		ch.deliver(t, "T_1", fmt.Sprintf("message %03d with some padding to fill the queue", i))
	}
	eventually(t, "the forwarder blocked", func() bool { return pushed-ch.pendingDeliveries("T_1") >= 10 })
	b.setHook(func(_ *fakeChannel, method string) error {
		if method == "Publish" {
			panic("fake broker bug")
		}
		return nil
	})
	h.send("SEND\ndestination:/topic/t\n\nboom\x00")
	h.waitEnded()
	h.expectDisconnect()
}

const writerPanicEnv = "STOMPGATE_TEST_WRITER_PANIC"

func TestPanicInWriterGoroutineEndsOnlySession(t *testing.T) {
	// The writer goroutine acks ack:auto deliveries (ackWritten). A panic
	// there must not take the process down. Run in a child process, since
	// an unrecovered panic in a goroutine kills the test binary.
	if os.Getenv(writerPanicEnv) == "1" {
		b := newFakeBroker()
		h := connected(t, pipePair, testConfig(), b, "1.2")
		h.subscribe("0", "/queue/a")
		b.setHook(func(_ *fakeChannel, method string) error {
			if method == "Ack" {
				panic("fake broker bug in basic.ack")
			}
			return nil
		})
		h.sub("T_0").deliver(t, "T_0", "m")
		h.expectMessage("m")
		h.expectDisconnect()
		h.waitEnded()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPanicInWriterGoroutineEndsOnlySession$", "-test.count=1")
	cmd.Env = append(os.Environ(), writerPanicEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("the process died from a panic in a session's writer goroutine: %v\n%s", err, firstLines(string(out), 15))
	}
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
