package gateway

import (
	"strings"
	"testing"

	"github.com/stompgate/stompgate/gateway/config"
)

// Transactions: semantics 12, receipts 11.

func TestTransactionPublishesAtCommit(t *testing.T) {
	forEachTransport(t, func(t *testing.T, pair connPair) {
		h := connected(t, pair, testConfig(), newFakeBroker(), "1.2")
		h.send("BEGIN\ntransaction:tx1\nreceipt:b\n\n\x00")
		h.expectReceipt("b")
		h.send("SEND\ndestination:/queue/a\ntransaction:tx1\nreceipt:s1\n\none\x00")
		h.send("SEND\ndestination:/topic/t\ntransaction:tx1\n\ntwo\x00")
		// Declares happen at arrival (on the publisher channel, which the
		// first SEND opens), publishes only at COMMIT.
		pub := h.pub()
		pub.waitCall(t, "QueueDeclare a durable=true autoDelete=false exclusive=false noWait=false args=map[]")
		h.expectNothing()
		if n := len(pub.publishes()); n != 0 {
			t.Fatalf("%d publishes before COMMIT", n)
		}
		h.send("COMMIT\ntransaction:tx1\nreceipt:c\n\n\x00")
		got := pub.waitPublishes(t, 2)
		if string(got[0].Msg.Body) != "one" || string(got[1].Msg.Body) != "two" {
			t.Errorf("published %q, %q; want one, two in frame order", got[0].Msg.Body, got[1].Msg.Body)
		}
		h.expectNothing()
		pub.confirm(t, 1, true)
		// The SEND's own receipt follows its confirm; the COMMIT's waits for all.
		h.expectReceipt("s1")
		h.expectNothing()
		pub.confirm(t, 2, true)
		h.expectReceipt("c")
		// The transaction is forgotten.
		h.send("SEND\ndestination:/topic/t\ntransaction:tx1\n\nlate\x00")
		h.expectError("Bad transaction", "Invalid transaction identifier: \"tx1\"\n")
	})
}

func TestTransactionAbortDiscards(t *testing.T) {
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.send("BEGIN\ntransaction:tx1\n\n\x00")
	h.send("SEND\ndestination:/topic/t\ntransaction:tx1\nreceipt:s\n\none\x00")
	h.send("ABORT\ntransaction:tx1\nreceipt:a\n\n\x00")
	h.expectReceipt("a")
	h.send("COMMIT\ntransaction:tx1\nreceipt:c\n\n\x00")
	h.expectError("Bad transaction", "Invalid transaction identifier: \"tx1\"\n")
	if pub := h.broker.conn(t, 0).publisherIfOpen(); pub != nil && len(pub.publishes()) != 0 {
		t.Errorf("%d publishes after ABORT", len(pub.publishes()))
	}
}

func TestTransactionCommitWithoutSendsReceiptsAtOnce(t *testing.T) {
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.send("BEGIN\ntransaction:tx1\n\n\x00COMMIT\ntransaction:tx1\nreceipt:c\n\n\x00")
	h.expectReceipt("c")
}

func TestTransactionalAck(t *testing.T) {
	h, ch, ids := ackHarness(t, pipePair, "1.2", "client-individual", 2)
	h.send("BEGIN\ntransaction:tx1\n\n\x00")
	h.send("ACK\nid:" + ids[0] + "\ntransaction:tx1\nreceipt:a\n\n\x00")
	// Semantics 11: the RECEIPT of a buffered ACK is sent when buffered.
	h.expectReceipt("a")
	if got := ch.callsOf("Ack"); len(got) != 0 {
		t.Fatalf("acked before COMMIT: %q", got)
	}
	h.send("NACK\nid:" + ids[1] + "\ntransaction:tx1\nrequeue:false\n\n\x00")
	h.send("COMMIT\ntransaction:tx1\nreceipt:c\n\n\x00")
	h.expectReceipt("c")
	got := append(ch.callsOf("Ack"), ch.callsOf("Nack")...)
	want := []string{"Ack 1 multiple=false", "Nack 2 multiple=false requeue=false"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("settled %q, want %q", got, want)
	}
}

func TestTransactionErrors(t *testing.T) {
	tests := []struct {
		name    string
		adjust  func(*config.Config)
		frames  string
		message string
		body    string
	}{
		{"BEGIN without transaction", nil, "BEGIN\n\n\x00", "Missing transaction", "\"BEGIN\" must include a 'transaction' header\n"},
		{"COMMIT without transaction", nil, "COMMIT\n\n\x00", "Missing transaction", "\"COMMIT\" must include a 'transaction' header\n"},
		{"ABORT without transaction", nil, "ABORT\n\n\x00", "Missing transaction", "\"ABORT\" must include a 'transaction' header\n"},
		{"BEGIN twice", nil, "BEGIN\ntransaction:t\n\n\x00BEGIN\ntransaction:t\n\n\x00", "Bad transaction", "Transaction \"t\" is already open\n"},
		{"unknown on COMMIT", nil, "COMMIT\ntransaction:nope\n\n\x00", "Bad transaction", "Invalid transaction identifier: \"nope\"\n"},
		{"unknown on ABORT", nil, "ABORT\ntransaction:nope\n\n\x00", "Bad transaction", "Invalid transaction identifier: \"nope\"\n"},
		{"unknown on SEND", nil, "SEND\ndestination:/topic/t\ntransaction:nope\n\nx\x00", "Bad transaction", "Invalid transaction identifier: \"nope\"\n"},
		{"max_open", func(c *config.Config) { c.Transactions.MaxOpen = 1 },
			"BEGIN\ntransaction:a\n\n\x00BEGIN\ntransaction:b\n\n\x00",
			"Transaction limit exceeded", "At most 1 transactions may be open per session (transactions.max_open)\n"},
		{"max_actions", func(c *config.Config) { c.Transactions.MaxActions = 2 },
			"BEGIN\ntransaction:a\n\n\x00" + strings.Repeat("SEND\ndestination:/topic/t\ntransaction:a\n\nx\x00", 3),
			"Transaction limit exceeded", "At most 2 SEND/ACK/NACK frames may be buffered per transaction (transactions.max_actions)\n"},
		{"max_bytes across transactions", func(c *config.Config) { c.Transactions.MaxBytes = 10 },
			"BEGIN\ntransaction:a\n\n\x00BEGIN\ntransaction:b\n\n\x00SEND\ndestination:/topic/t\ntransaction:a\n\n123456\x00SEND\ndestination:/topic/t\ntransaction:b\n\n12345\x00",
			"Transaction limit exceeded", "At most 10 bytes may be buffered in transactions per session (transactions.max_bytes)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.adjust != nil {
				tt.adjust(&cfg)
			}
			h := connected(t, pipePair, cfg, newFakeBroker(), "1.2")
			h.send(tt.frames)
			h.expectError(tt.message, tt.body)
			if pub := h.broker.conn(t, 0).publisherIfOpen(); pub != nil && len(pub.publishes()) != 0 {
				t.Errorf("%d publishes", len(pub.publishes()))
			}
		})
	}
}

func TestTransactionBytesReleasedByAbort(t *testing.T) {
	cfg := testConfig()
	cfg.Transactions.MaxBytes = 10
	h := connected(t, pipePair, cfg, newFakeBroker(), "1.2")
	h.send("BEGIN\ntransaction:a\n\n\x00SEND\ndestination:/topic/t\ntransaction:a\n\n12345678\x00ABORT\ntransaction:a\n\n\x00")
	h.send("BEGIN\ntransaction:b\n\n\x00SEND\ndestination:/topic/t\ntransaction:b\n\n12345678\x00COMMIT\ntransaction:b\nreceipt:c\n\n\x00")
	pub := h.pub()
	pub.waitPublishes(t, 1)
	pub.confirm(t, 1, true)
	h.expectReceipt("c")
}
