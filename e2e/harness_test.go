//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/sirupsen/logrus"

	"github.com/stompgate/stompgate/gateway"
	"github.com/stompgate/stompgate/gateway/config"
)

// runID makes every queue, exchange and routing key of one test run unique,
// so runs never see each other's leftovers and cleanup knows what is ours.
var runID = func() string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}()

// startGateway runs the gateway in-process on 127.0.0.1:0 against AMQP_URL
// and returns its address; t.Cleanup shuts it down. With
// STOMPGATE_E2E_TARGET set it returns that address instead and the mutators
// are not applied: tests that depend on them must call requireGateway.
func startGateway(t testing.TB, mutate ...func(*config.Config)) string {
	t.Helper()
	if external() {
		return externalTarget()
	}
	cfg := config.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.AMQP.URL = amqpURL()
	cfg.ShutdownTimeout = 5 * time.Second
	for _, m := range mutate {
		m(&cfg)
	}
	return serveGateway(t, cfg).Addr().String()
}

// serveGateway runs an in-process gateway with cfg, logging to the test
// (hooks see every entry too), until the test ends: then it shuts the
// gateway down and checks that Serve returned ErrServerClosed.
func serveGateway(t testing.TB, cfg config.Config, hooks ...logrus.Hook) *gateway.Server {
	t.Helper()
	log := logrus.New()
	log.SetLevel(logrus.DebugLevel)
	sink := &testLogSink{t: t}
	log.SetOutput(sink)
	for _, h := range hooks {
		log.AddHook(h)
	}
	srv, err := gateway.NewServer(cfg, log)
	if err != nil {
		t.Fatalf("gateway.NewServer: %v", err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatalf("gateway Listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("gateway Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, gateway.ErrServerClosed) {
			t.Errorf("gateway Serve returned %v, want ErrServerClosed", err)
		}
		sink.stop()
	})
	return srv
}

// requireGateway skips a check that only the in-process gateway can pass,
// because it needs a gateway config or asserts a deliberate difference from
// rabbitmq_stomp (semantics.md section 16). The skip names the reason.
func requireGateway(t testing.TB, why string) {
	t.Helper()
	if external() {
		t.Skipf("skipped against external target %s: %s", externalTarget(), why)
	}
}

// relaxed logs that a gateway-only assertion is not made against the
// external target and returns true in that case.
func relaxed(t testing.TB, why string) bool {
	t.Helper()
	if external() {
		t.Logf("relaxed against external target %s: %s", externalTarget(), why)
		return true
	}
	return false
}

// testLogSink forwards gateway log lines to t.Log until the test's cleanup
// has shut the gateway down (t.Log after the test ends would panic).
type testLogSink struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool
}

func (s *testLogSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.t.Log("gateway: " + strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (s *testLogSink) stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
}

// names hands out per-run unique queue names and routing keys for one test
// and deletes, at cleanup, every queue it handed out (whether the gateway,
// the broker or the test created it). Call newNames before startGateway:
// cleanups run last-in first-out, so the queues are deleted only after the
// gateway has shut down and no session can declare them again.
type names struct {
	t      testing.TB
	base   string
	mu     sync.Mutex
	queues []string
}

var nonName = regexp.MustCompile(`[^A-Za-z0-9]+`)

func newNames(t testing.TB) *names {
	t.Helper()
	n := &names{t: t, base: "e2e-" + runID + "-" + strings.Trim(nonName.ReplaceAllString(t.Name(), "-"), "-")}
	t.Cleanup(n.cleanup)
	return n
}

// queue returns a unique queue name and schedules its deletion.
func (n *names) queue(suffix string) string {
	q := n.base + "-" + suffix
	n.mu.Lock()
	n.queues = append(n.queues, q)
	n.mu.Unlock()
	return q
}

// key returns a unique routing key; nothing needs deleting for it.
func (n *names) key(suffix string) string { return n.base + "." + suffix }

func (n *names) cleanup() {
	n.mu.Lock()
	queues := n.queues
	n.mu.Unlock()
	if len(queues) == 0 {
		return
	}
	conn, err := amqp.Dial(amqpURL())
	if err != nil {
		n.t.Errorf("cleanup: dial broker: %v", err)
		return
	}
	defer conn.Close()
	for _, q := range queues {
		ch, err := conn.Channel()
		if err != nil {
			n.t.Errorf("cleanup: channel: %v", err)
			return
		}
		// RabbitMQ's queue.delete of a missing queue succeeds.
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			n.t.Errorf("cleanup: delete queue %q: %v", q, err)
		}
		_ = ch.Close()
	}
}

// amqpChannel opens an AMQP connection and channel for the test's own
// publishing and consuming; both close at cleanup.
func amqpChannel(t testing.TB) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(amqpURL())
	if err != nil {
		t.Fatalf("dial broker %s: %v", amqpURL(), err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("open AMQP channel: %v", err)
	}
	return ch
}

// getWithin polls basic.get on queue until a message arrives or the timeout
// passes. It acks what it gets.
func getWithin(t testing.TB, ch *amqp.Channel, queue string, timeout time.Duration) amqp.Delivery {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatalf("basic.get %q: %v", queue, err)
		}
		if ok {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message in queue %q within %v", queue, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialStomp connects go-stomp to addr as guest on vhost "/" with the given
// extra options; the connection is disconnected at cleanup.
func dialStomp(t testing.TB, addr string, opts ...func(*stomp.Conn) error) *stomp.Conn {
	t.Helper()
	all := append([]func(*stomp.Conn) error{
		stomp.ConnOpt.Login("guest", "guest"),
		stomp.ConnOpt.Host("/"),
		stomp.ConnOpt.HeartBeat(0, 0),
	}, opts...)
	conn, err := stomp.Dial("tcp", addr, all...)
	if err != nil {
		t.Fatalf("go-stomp Dial %s: %v", addr, err)
	}
	t.Cleanup(func() {
		if err := conn.Disconnect(); err != nil && !errors.Is(err, stomp.ErrAlreadyClosed) && !errors.Is(err, io.EOF) {
			t.Logf("go-stomp Disconnect: %v", err)
		}
	})
	return conn
}

// receiveWithin reads the next message of sub or fails after timeout.
func receiveWithin(t testing.TB, sub *stomp.Subscription, timeout time.Duration) *stomp.Message {
	t.Helper()
	select {
	case msg, ok := <-sub.C:
		if !ok {
			t.Fatalf("subscription %s closed", sub.Destination())
		}
		if msg.Err != nil {
			t.Fatalf("subscription %s: %v", sub.Destination(), msg.Err)
		}
		return msg
	case <-time.After(timeout):
		t.Fatalf("no message on %s within %v", sub.Destination(), timeout)
	}
	return nil
}
