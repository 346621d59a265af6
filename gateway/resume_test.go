package gateway

import (
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/broker"
	"github.com/stompgate/stompgate/gateway/config"
)

// resumeConfig is testConfig with amqp.resume_sessions.
func resumeConfig() config.Config {
	cfg := testConfig()
	cfg.AMQP.ResumeSessions = true
	cfg.AMQP.ResumeTimeout = 2 * time.Second
	return cfg
}

// linkLost is what amqp091-go reports when the socket to the broker fails.
var linkLost = &amqp.Error{Code: amqp.FrameError, Reason: "read tcp: connection reset by peer", Server: false}

// A lost AMQP connection does not end the session: the gateway dials
// again, subscribes again under the same id, publishes again what was not
// confirmed and sends its RECEIPT only after the new confirm.
func TestResumeCarriesTheSessionToANewConnection(t *testing.T) {
	forEachTransport(t, func(t *testing.T, pair connPair) {
		b := newFakeBroker()
		h := connected(t, pair, resumeConfig(), b, "1.2")
		h.subscribe("0", "/queue/in", "ack:client-individual")
		old := b.conn(t, 0)
		oldSub := old.consumerChannel(t, "T_0")
		oldSub.deliver(t, "T_0", "before")
		before := h.expectMessage("before")

		h.send("SEND\ndestination:/queue/out\nreceipt:r1\n\none\x00")
		h.send("SEND\ndestination:/queue/out\nreceipt:r2\n\ntwo\x00")
		oldPub := old.publisher(t)
		oldPub.waitPublishes(t, 2)
		oldPub.confirm(t, 1, true) // confirmed before the loss: not sent again
		h.expectReceipt("r1")

		old.closeWithError(linkLost)

		fresh := b.conn(t, 1)
		if got := b.dialLogins()[1]; got.Login != "alice" || got.Passcode != "secret" || got.VHost != "/" {
			t.Errorf("resume dialled with %+v, want the CONNECT's credentials and vhost", got)
		}
		pub := fresh.publisher(t)
		again := pub.waitPublishes(t, 1)
		if body := string(again[0].Msg.Body); body != "two" || again[0].Key != "out" {
			t.Errorf("published again %q to %q, want only the unconfirmed \"two\" to out", body, again[0].Key)
		}
		h.expectNothing() // no RECEIPT before the new confirm, and no ERROR
		pub.confirm(t, 1, true)
		h.expectReceipt("r2")

		sub := fresh.consumerChannel(t, "T_0")
		sub.deliver(t, "T_0", "after")
		after := h.expectMessage("after")
		if after.Value("subscription") != "0" {
			t.Errorf("MESSAGE after the resume has subscription %q, want 0", after.Value("subscription"))
		}
		// The old message's ACK is ignored (its delivery was requeued by
		// the broker); the new one is acknowledged on the new channel.
		h.send("ACK\nid:" + before.Value("ack") + "\nreceipt:a1\n\n\x00")
		h.expectReceipt("a1")
		h.send("ACK\nid:" + after.Value("ack") + "\nreceipt:a2\n\n\x00")
		h.expectReceipt("a2")
		if acks := sub.callsOf("Ack"); len(acks) != 1 {
			t.Errorf("acks on the new channel: %q, want one (the new message's)", acks)
		}

		// The session still works for new frames.
		h.send("SEND\ndestination:/queue/out\nreceipt:r3\n\nthree\x00")
		pub.waitPublishes(t, 2)
		pub.confirm(t, 2, true)
		h.expectReceipt("r3")
	})
}

// The broker's CONNECTION_FORCED (a node stopping) resumes too, and a
// SEND that finds the connection already gone is published after the
// resume rather than lost.
func TestResumeAfterConnectionForcedAndAFailedPublish(t *testing.T) {
	b := newFakeBroker()
	h := connected(t, tcpPair, resumeConfig(), b, "1.2")
	h.send("SEND\ndestination:/queue/out\nreceipt:r0\n\nzero\x00")
	old := b.conn(t, 0)
	old.publisher(t).waitPublishes(t, 1)
	old.publisher(t).confirm(t, 1, true)
	h.expectReceipt("r0")
	// The connection dies without the session having read the
	// notification yet: the next publish fails on the closed channel.
	old.closeWithError(&amqp.Error{Code: amqp.ConnectionForced, Reason: "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'", Server: true})
	h.send("SEND\ndestination:/queue/out\nreceipt:r1\n\none\x00")
	pub := b.conn(t, 1).publisher(t)
	got := pub.waitPublishes(t, 1)
	if string(got[0].Msg.Body) != "one" {
		t.Fatalf("after the resume published %q, want one", got[0].Msg.Body)
	}
	pub.confirm(t, 1, true)
	h.expectReceipt("r1")
}

// Without amqp.resume_sessions a lost connection ends the session as
// before (semantics 14.3).
func TestNoResumeWithoutTheSetting(t *testing.T) {
	b := newFakeBroker()
	h := connected(t, tcpPair, testConfig(), b, "1.2")
	b.conn(t, 0).closeWithError(linkLost)
	h.expectFrame("ERROR")
	h.waitEnded()
	if n := b.connCount(); n != 1 {
		t.Errorf("dialled %d connections, want 1 (no resume)", n)
	}
}

// A channel error on a live connection is not a lost connection.
func TestNoResumeForAChannelError(t *testing.T) {
	b := newFakeBroker()
	h := connected(t, tcpPair, resumeConfig(), b, "1.2")
	h.subscribe("0", "/queue/in")
	h.sub("T_0").closeWithError(&amqp.Error{Code: amqp.NotFound, Reason: "NOT_FOUND - no queue 'in'", Server: true})
	h.expectError("not_found", "NOT_FOUND - no queue 'in'")
	h.waitEnded()
	if n := b.connCount(); n != 1 {
		t.Errorf("dialled %d connections, want 1 (no resume for a channel error)", n)
	}
}

// What cannot move ends the session with an ERROR that says so.
func TestResumeRefusals(t *testing.T) {
	t.Run("open transaction", func(t *testing.T) {
		b := newFakeBroker()
		h := connected(t, tcpPair, resumeConfig(), b, "1.2")
		h.send("BEGIN\ntransaction:tx1\nreceipt:b\n\n\x00")
		h.expectReceipt("b")
		b.conn(t, 0).closeWithError(linkLost)
		h.expectError("Transaction aborted", "The AMQP connection was lost while a transaction was open; its frames were not applied. The session cannot be resumed.\n")
		h.waitEnded()
	})
	t.Run("temp queue", func(t *testing.T) {
		b := newFakeBroker()
		h := connected(t, tcpPair, resumeConfig(), b, "1.2")
		h.send("SEND\ndestination:/queue/rpc\nreply-to:/temp-queue/r\nreceipt:s\n\nq\x00")
		pub := b.conn(t, 0).publisher(t)
		pub.waitPublishes(t, 1)
		pub.confirm(t, 1, true)
		h.expectReceipt("s")
		b.conn(t, 0).closeWithError(linkLost)
		h.expectError("Session not resumed", "The AMQP connection was lost; temp queues cannot move to another broker connection.\n")
		h.waitEnded()
	})
	t.Run("no broker within resume_timeout", func(t *testing.T) {
		b := newFakeBroker()
		cfg := resumeConfig()
		cfg.AMQP.ResumeTimeout = 300 * time.Millisecond
		h := connected(t, tcpPair, cfg, b, "1.2")
		b.mu.Lock()
		b.dialErr = fmt.Errorf("%w: dial tcp: connection refused", broker.ErrUnreachable)
		b.mu.Unlock()
		start := time.Now()
		b.conn(t, 0).closeWithError(linkLost)
		f := h.expectFrame("ERROR")
		if f.Value("message") != "Session not resumed" || !strings.Contains(f.Body, "amqp.resume_timeout") {
			t.Errorf("ERROR %s, want Session not resumed naming amqp.resume_timeout", f)
		}
		if waited := time.Since(start); waited < 300*time.Millisecond {
			t.Errorf("gave up after %v, before resume_timeout", waited)
		}
		if n := len(b.dialLogins()); n < 3 {
			t.Errorf("tried %d dials in resume_timeout, want several (with backoff)", n)
		}
		h.waitEnded()
	})
}

// The next URL of the list is tried first after a loss.
func TestResumeAvoidsTheLostBroker(t *testing.T) {
	b := newFakeBroker()
	h := connected(t, tcpPair, resumeConfig(), b, "1.2")
	h.subscribe("0", "/queue/in")
	b.conn(t, 0).closeWithError(linkLost)
	b.conn(t, 1).consumerChannel(t, "T_0")
	if got := b.dialLogins()[1].Avoid; got != broker.BrokerURL(b.conn(t, 0)) {
		t.Errorf("resume dial avoids %q, want the lost connection's URL %q", got, broker.BrokerURL(b.conn(t, 0)))
	}
}

// With amqp.resume_sessions a broker nack (a quorum queue electing a new
// leader) publishes the message again after a pause; the RECEIPT follows
// the confirm of the retry, and the session stays open.
func TestResumeRetriesANackedPublish(t *testing.T) {
	b := newFakeBroker()
	h := connected(t, tcpPair, resumeConfig(), b, "1.2")
	h.send("SEND\ndestination:/queue/out\nreceipt:r1\n\none\x00")
	h.send("SEND\ndestination:/queue/out\nreceipt:r2\n\ntwo\x00")
	first := h.pub()
	first.waitPublishes(t, 2)
	start := time.Now()
	first.confirm(t, 1, false)
	h.expectNothing() // neither RECEIPT nor ERROR for a nack
	// RabbitMQ 3.10 can keep nacking a channel whose first publish to a
	// quorum queue met no leader: the retry goes on a new channel, with
	// "two", whose confirm the old channel would now never send.
	eventually(t, "the nacked publisher channel closed", first.isClosed)
	conn := b.conn(t, 0)
	second := conn.openPublisher(t)
	again := second.waitPublishes(t, 2)
	if waited := time.Since(start); waited < nackRetryDelay/2 {
		t.Errorf("retried after %v, want a pause of about %v", waited, nackRetryDelay)
	}
	if string(again[0].Msg.Body) != "one" || string(again[1].Msg.Body) != "two" || again[0].Key != "out" {
		t.Errorf("published again %q, %q to %q, want one, two to out", again[0].Msg.Body, again[1].Msg.Body, again[0].Key)
	}
	second.confirm(t, 1, true)
	h.expectReceipt("r1")
	second.confirm(t, 2, true)
	h.expectReceipt("r2")
	// DISCONNECT waits for a retry in progress too.
	h.send("SEND\ndestination:/queue/out\nreceipt:r3\n\nthree\x00")
	second.waitPublishes(t, 3)
	second.confirm(t, 3, false)
	h.send("DISCONNECT\nreceipt:bye\n\n\x00")
	eventually(t, "the second publisher channel closed", second.isClosed)
	third := conn.openPublisher(t)
	third.waitPublishes(t, 1)
	third.confirm(t, 1, true)
	h.expectReceipt("r3")
	h.expectReceipt("bye")
}

// A message the broker keeps nacking for longer than resume_timeout ends
// the session as semantics 11 says.
func TestResumeGivesUpOnAMessageNackedTooLong(t *testing.T) {
	b := newFakeBroker()
	cfg := resumeConfig()
	cfg.AMQP.ResumeTimeout = 400 * time.Millisecond
	h := connected(t, tcpPair, cfg, b, "1.2")
	h.send("SEND\ndestination:/queue/out\nreceipt:r1\n\none\x00")
	conn := b.conn(t, 0)
	for nacks := 1; ; nacks++ {
		pub := conn.openPublisher(t)
		pub.waitPublishes(t, 1)
		pub.confirm(t, 1, false)
		if nacks > 10 {
			t.Fatal("still retrying after 10 nacks in a 400 ms resume_timeout")
		}
		f, err := h.readFrame(nackRetryDelay * 2)
		if err == nil {
			if f.Command != "ERROR" || f.Value("message") != "Send failed" || f.Value("receipt-id") != "r1" {
				t.Fatalf("got %s, want ERROR Send failed for r1", f)
			}
			break
		}
		eventually(t, "the nacked publisher channel closed", pub.isClosed)
	}
	h.waitEnded()
}

// Heart-beats to the client go on while the session resumes: the writer
// sends them, not the loop that is busy dialling.
func TestResumeKeepsHeartbeatsGoing(t *testing.T) {
	b := newFakeBroker()
	cfg := resumeConfig()
	h := startSession(t, tcpPair, cfg, b)
	h.send(connectFrame("heart-beat:0,40"))
	h.expectFrame("CONNECTED")
	b.mu.Lock()
	b.dialErr = fmt.Errorf("%w: dial tcp: connection refused", broker.ErrUnreachable)
	b.mu.Unlock()
	b.conn(t, 0).closeWithError(linkLost)
	eventually(t, "a resume dial refused", func() bool { return len(b.dialLogins()) >= 2 })
	h.expectHeartbeats(5) // while no broker answers
	b.mu.Lock()
	b.dialErr = nil
	b.mu.Unlock()
	b.conn(t, 1) // the resume got through
	h.send("SEND\ndestination:/queue/out\nreceipt:r1\n\none\x00")
	pub := b.conn(t, 1).publisher(t)
	pub.waitPublishes(t, 1)
	pub.confirm(t, 1, true)
	f := h.expectFrame("RECEIPT") // after any heart-beats still queued
	if f.Value("receipt-id") != "r1" {
		t.Errorf("RECEIPT %s, want r1", f)
	}
}

// A counted NACK after a resume uses a redelivery channel on the new
// connection, not the one the lost connection took with it.
func TestResumeOpensANewRedeliveryChannel(t *testing.T) {
	b := newFakeBroker()
	h := connected(t, tcpPair, resumeConfig(), b, "1.2")
	h.subscribe("r", "/queue/q", "ack:client-individual", "max-redeliveries:3")
	old := b.conn(t, 0)
	old.consumerChannel(t, "T_r").deliver(t, "T_r", "first")
	m := h.expectMessage("first")
	h.send("NACK\nid:" + m.Value("ack") + "\nreceipt:n1\n\n\x00")
	oldRC := old.channelWhere(t, "the redelivery channel", func(ch *fakeChannel) bool { return len(ch.published) > 0 })
	oldRC.waitPublishes(t, 1)
	oldRC.confirm(t, 1, true)
	h.expectReceipt("n1")

	old.closeWithError(linkLost)
	fresh := b.conn(t, 1)
	fresh.consumerChannel(t, "T_r").deliver(t, "T_r", "second")
	m = h.expectMessage("second")
	h.send("NACK\nid:" + m.Value("ack") + "\nreceipt:n2\n\n\x00")
	rc := fresh.channelWhere(t, "a redelivery channel on the new connection", func(ch *fakeChannel) bool { return len(ch.published) > 0 })
	rc.waitPublishes(t, 1)
	rc.confirm(t, 1, true)
	h.expectReceipt("n2")
}
