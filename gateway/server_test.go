package gateway

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	logtest "github.com/sirupsen/logrus/hooks/test"
	"github.com/stompgate/stompgate/gateway/config"
	"go.uber.org/goleak"
)

// Server: accept loop, Shutdown, limits (semantics 2.1, 15; style.md 6, 7).

type serverHarness struct {
	t      *testing.T
	srv    *Server
	broker *fakeBroker
	served chan error
}

// startServer runs a Server on 127.0.0.1:0 whose sessions dial b.
func startServer(t *testing.T, cfg config.Config, b *fakeBroker) *serverHarness {
	t.Helper()
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	log, _ := logtest.NewNullLogger()
	srv, err := NewServer(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv.dial = b.dial
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	h := &serverHarness{t: t, srv: srv, broker: b, served: make(chan error, 1)}
	go func() { h.served <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-h.served:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(waitBound):
			t.Error("Serve did not return after Close")
		}
		// Close does not wait for sessions; Shutdown does.
		ctx, cancel := context.WithTimeout(context.Background(), waitBound)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return h
}

func (h *serverHarness) dial() *stompClient {
	h.t.Helper()
	conn, err := net.Dial("tcp", h.srv.Addr().String())
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = conn.Close() })
	return newStompClient(h.t, conn)
}

func (h *serverHarness) connect() *stompClient {
	h.t.Helper()
	c := h.dial()
	c.send(connectFrame())
	c.expectFrame("CONNECTED")
	return c
}

func TestServerShutdownDrainsSessions(t *testing.T) {
	b := newFakeBroker()
	h := startServer(t, testConfig(), b)
	idle := h.connect()
	busy := h.connect()
	busy.send("SEND\ndestination:/topic/t\nreceipt:r1\n\nhello\x00")
	// Which AMQP connection belongs to busy: the one with a publish.
	var pub *fakeChannel
	eventually(t, "the publish", func() bool {
		for i := range b.connCount() {
			if ch := b.conn(t, i).publisherIfOpen(); ch != nil && len(ch.publishes()) == 1 {
				pub = ch
				return true
			}
		}
		return false
	})

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitBound)
		defer cancel()
		shutdown <- h.srv.Shutdown(ctx)
	}()
	idle.expectError("Server shutting down", "The gateway is shutting down; reconnect later.\n")
	// Semantics 15: a session waits for its confirms before the ERROR.
	busy.expectNothing()
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v with a session still waiting for confirms", err)
	default:
	}
	pub.confirm(t, 1, true)
	busy.expectReceipt("r1")
	busy.expectError("Server shutting down", "The gateway is shutting down; reconnect later.\n")
	select {
	case err := <-shutdown:
		if err != nil {
			t.Errorf("Shutdown = %v", err)
		}
	case <-time.After(waitBound):
		t.Fatal("Shutdown did not return")
	}
	select {
	case err := <-h.served:
		h.served <- err // for the cleanup
		if !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	case <-time.After(waitBound):
		t.Fatal("Serve did not return after Shutdown")
	}
	if _, err := net.DialTimeout("tcp", h.srv.Addr().String(), time.Second); err == nil {
		t.Error("the listener still accepts after Shutdown")
	}
}

func TestServerShutdownTimeoutForceCloses(t *testing.T) {
	b := newFakeBroker()
	h := startServer(t, testConfig(), b)
	c := h.connect()
	c.send("SEND\ndestination:/topic/t\nreceipt:r1\n\nhello\x00")
	b.conn(t, 0).channel(t, 0).waitPublishes(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := h.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	c.expectDisconnect()
	if !b.conn(t, 0).isClosed() {
		t.Error("AMQP connection left open after a forced close")
	}
}

func TestServerTooManyConnections(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxConnections = 1
	b := newFakeBroker()
	h := startServer(t, cfg, b)
	h.connect()
	c := h.dial()
	c.expectError("Too many connections", "The gateway has reached its limit of concurrent sessions.\n")
	if n := b.connCount(); n != 1 {
		t.Errorf("%d AMQP connections, want 1", n)
	}
}

func TestServerTooManyConnectionsFromOneClient(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxConnectionsPerClient = 2
	b := newFakeBroker()
	h := startServer(t, cfg, b)
	first := h.connect()
	h.connect()
	c := h.dial()
	c.expectError("Too many connections", "This client address has reached its limit of concurrent sessions (limits.max_connections_per_client).\n")
	if n := b.connCount(); n != 2 {
		t.Errorf("%d AMQP connections, want 2", n)
	}
	// A freed slot is usable again.
	first.send("DISCONNECT\n\n\x00")
	first.expectDisconnect()
	eventually(t, "a slot is free again", func() bool {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		return h.srv.perClient["127.0.0.1"] == 1
	})
	h.connect()
}

func TestServerKeepsAcceptingAfterSessionPanic(t *testing.T) {
	b := newFakeBroker()
	h := startServer(t, testConfig(), b)
	first := h.connect()
	victim := b.conn(t, 0)
	b.setHook(func(ch *fakeChannel, method string) error {
		if ch.conn == victim && method == "Publish" {
			panic("fake broker bug")
		}
		return nil
	})
	first.send("SEND\ndestination:/topic/t\n\nboom\x00")
	first.expectDisconnect()

	second := h.connect()
	second.send("SEND\ndestination:/topic/t\nreceipt:r\n\nfine\x00")
	pub := b.conn(t, 1).channel(t, 0)
	pub.waitPublishes(t, 1)
	pub.confirm(t, 1, true)
	second.expectReceipt("r")
}
