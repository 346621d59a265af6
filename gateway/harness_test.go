package gateway

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"github.com/stompgate/stompgate/gateway/config"
	"go.uber.org/goleak"
)

// Session test harness (style.md practice 13): a session runs on one end of
// a net.Pipe or a loopback TCP connection, the test speaks raw STOMP on the
// other end and scripts the AMQP side with a fakeBroker.

// waitBound bounds every wait for something that should happen; the tests
// never sleep to synchronise, they poll or read with this deadline.
const waitBound = 3 * time.Second

// quietPeriod is how long expectNothing waits for something that must not
// happen.
const quietPeriod = 60 * time.Millisecond

// testConfig has short timeouts so that timeout paths run in milliseconds.
func testConfig() config.Config {
	cfg := config.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.ShutdownTimeout = 2 * time.Second
	cfg.AMQP.URL = "amqp://127.0.0.1:1/" // never dialled: tests use fakeBroker
	cfg.AMQP.DialTimeout = time.Second
	cfg.STOMP.TrailingLF = false // every LF the client sees is a heart-beat
	cfg.STOMP.DisconnectTimeout = time.Second
	cfg.STOMP.ErrorLinger = 50 * time.Millisecond
	cfg.Heartbeat.SendMin = 20 * time.Millisecond
	cfg.Heartbeat.RecvMin = 20 * time.Millisecond
	cfg.Limits.ConnectTimeout = 2 * time.Second
	cfg.Flow.WriteTimeout = 2 * time.Second
	return cfg
}

// eventually polls cond every millisecond for at most waitBound (bounded
// polling, not a sleep). dump, if given, is printed on failure.
func eventually(t *testing.T, what string, cond func() bool, dump ...func() []string) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for !cond() {
		if time.Now().After(deadline) {
			var extra string
			for _, d := range dump {
				extra += "\n  " + strings.Join(d(), "\n  ")
			}
			t.Fatalf("timed out waiting for %s%s", what, extra)
		}
		time.Sleep(time.Millisecond)
	}
}

// connPair returns the server and client ends of one connection.
type connPair func(t *testing.T) (server, client net.Conn)

type transport struct {
	name string
	pair connPair
}

var transports = []transport{{"pipe", pipePair}, {"tcp", tcpPair}}

// forEachTransport runs body once over net.Pipe and once over loopback TCP.
func forEachTransport(t *testing.T, body func(t *testing.T, pair connPair)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { body(t, tr.pair) })
	}
}

func pipePair(t *testing.T) (net.Conn, net.Conn) {
	server, client := net.Pipe()
	t.Cleanup(func() { _ = client.Close() })
	return server, client
}

func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return server, client
}

// remoteAddrConn fakes the client address a session sees.
type remoteAddrConn struct {
	net.Conn
	remote net.Addr
}

func (c remoteAddrConn) RemoteAddr() net.Addr { return c.remote }

// testFrame is a frame as the client received it. Header values are raw
// (not unescaped); the tests only look at values without escapes.
type testFrame struct {
	Command string
	Headers [][2]string
	Body    string
}

func (f *testFrame) Get(name string) (string, bool) {
	for _, h := range f.Headers {
		if h[0] == name {
			return h[1], true
		}
	}
	return "", false
}

func (f *testFrame) Value(name string) string {
	v, _ := f.Get(name)
	return v
}

func (f *testFrame) String() string {
	var b strings.Builder
	b.WriteString(f.Command)
	for _, h := range f.Headers {
		b.WriteString("\n" + h[0] + ":" + h[1])
	}
	b.WriteString("\n\n" + f.Body)
	return strconv.Quote(b.String())
}

// stompClient is the test's end of the connection.
type stompClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	// heartbeats counts the EOLs received between frames.
	heartbeats int
}

func newStompClient(t *testing.T, conn net.Conn) *stompClient {
	return &stompClient{t: t, conn: conn, br: bufio.NewReader(conn)}
}

// send writes raw bytes, failing the test if they cannot be written.
func (c *stompClient) send(raw string) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(waitBound))
	if _, err := io.WriteString(c.conn, raw); err != nil {
		c.t.Fatalf("writing %q: %v", raw, err)
	}
}

// sendAsync writes raw bytes without waiting, for writes that the server
// may refuse to read (limits, flow control); errors are ignored.
func (c *stompClient) sendAsync(raw string) {
	go func() {
		_ = c.conn.SetWriteDeadline(time.Now().Add(waitBound))
		_, _ = io.WriteString(c.conn, raw)
	}()
}

// readFrame reads the next frame within d, skipping and counting EOLs.
func (c *stompClient) readFrame(d time.Duration) (*testFrame, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	var line string
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		l = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
		if l == "" {
			c.heartbeats++
			continue
		}
		line = l
		break
	}
	f := &testFrame{Command: line}
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("in the headers of %s: %w", f.Command, err)
		}
		l = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
		if l == "" {
			break
		}
		name, value, _ := strings.Cut(l, ":")
		f.Headers = append(f.Headers, [2]string{name, value})
	}
	if cl, ok := f.Get("content-length"); ok {
		n, err := strconv.Atoi(cl)
		if err != nil {
			return nil, fmt.Errorf("bad content-length %q", cl)
		}
		body := make([]byte, n+1)
		if _, err := io.ReadFull(c.br, body); err != nil {
			return nil, fmt.Errorf("in the body of %s: %w", f.Command, err)
		}
		if body[n] != 0 {
			return nil, fmt.Errorf("no NUL after content-length bytes of %s", f.Command)
		}
		f.Body = string(body[:n])
		return f, nil
	}
	body, err := c.br.ReadString(0)
	if err != nil {
		return nil, fmt.Errorf("in the body of %s: %w", f.Command, err)
	}
	f.Body = strings.TrimSuffix(body, "\x00")
	return f, nil
}

// expectFrame reads the next frame and checks its command.
func (c *stompClient) expectFrame(command string) *testFrame {
	c.t.Helper()
	f, err := c.readFrame(waitBound)
	if err != nil {
		c.t.Fatalf("waiting for %s: %v", command, err)
	}
	if f.Command != command {
		c.t.Fatalf("got %s, want %s", f, command)
	}
	return f
}

// expectReceipt reads a RECEIPT and checks its receipt-id.
func (c *stompClient) expectReceipt(id string) {
	c.t.Helper()
	f := c.expectFrame("RECEIPT")
	if got := f.Value("receipt-id"); got != id {
		c.t.Fatalf("RECEIPT receipt-id = %q, want %q", got, id)
	}
}

// expectError reads an ERROR, checks its message header and body, and
// that the connection is then closed (semantics 14.2). The ERROR is
// returned for further checks.
func (c *stompClient) expectError(message, body string) *testFrame {
	c.t.Helper()
	f := c.expectFrame("ERROR")
	if got := f.Value("message"); got != message {
		c.t.Errorf("ERROR message = %q, want %q (frame %s)", got, message, f)
	}
	if f.Body != body {
		c.t.Errorf("ERROR body = %q, want %q", f.Body, body)
	}
	if got := f.Value("version"); got != "1.0,1.1,1.2" {
		c.t.Errorf("ERROR version header = %q, want 1.0,1.1,1.2", got)
	}
	if got := f.Value("content-type"); got != "text/plain" {
		c.t.Errorf("ERROR content-type = %q, want text/plain", got)
	}
	c.expectDisconnect()
	return f
}

// expectNothing checks that no byte arrives for quietPeriod.
func (c *stompClient) expectNothing() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(quietPeriod))
	b, err := c.br.Peek(1)
	if err == nil {
		f, ferr := c.readFrame(waitBound)
		c.t.Fatalf("expected nothing, got %q: %v %v", b, f, ferr)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		c.t.Fatalf("expected nothing, got %v", err)
	}
}

// expectDisconnect checks that the server closes the connection within
// waitBound without sending another frame (EOLs are allowed).
func (c *stompClient) expectDisconnect() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(waitBound))
	for {
		b, err := c.br.ReadByte()
		switch {
		case err == nil && (b == '\n' || b == '\r'):
			continue
		case err == nil:
			rest, _ := c.br.Peek(c.br.Buffered())
			c.t.Fatalf("expected the connection to close, got %q", append([]byte{b}, rest...))
		case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrClosedPipe):
			return
		default:
			c.t.Fatalf("expected the connection to close, got %v", err)
		}
	}
}

// sessionHarness is a running session with its client and fake broker.
type sessionHarness struct {
	*stompClient
	sess    *session
	broker  *fakeBroker
	logs    *logtest.Hook
	runDone chan struct{}
	// sessionID is the session header of CONNECTED.
	sessionID string
}

// startSession runs a session on one end of pair and returns the other.
// Cleanup closes the client, waits for the session goroutine tree to exit
// and checks that no goroutine leaked.
func startSession(t *testing.T, pair connPair, cfg config.Config, b *fakeBroker) *sessionHarness {
	t.Helper()
	return startSessionWith(t, pair, cfg, b, nil)
}

func startSessionWith(t *testing.T, pair connPair, cfg config.Config, b *fakeBroker, wrap func(net.Conn) net.Conn) *sessionHarness {
	t.Helper()
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	server, client := pair(t)
	if wrap != nil {
		server = wrap(server)
	}
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	h := &sessionHarness{
		stompClient: newStompClient(t, client),
		sess:        newSession(&cfg, server, b.dial, log),
		broker:      b,
		logs:        hook,
		runDone:     make(chan struct{}),
	}
	go func() {
		defer close(h.runDone)
		h.sess.run()
	}()
	t.Cleanup(func() {
		_ = client.Close()
		select {
		case <-h.runDone:
		case <-time.After(waitBound):
			t.Errorf("session goroutine did not exit after the client closed")
		}
	})
	return h
}

// waitEnded waits until the session goroutine returned.
func (h *sessionHarness) waitEnded() {
	h.t.Helper()
	select {
	case <-h.runDone:
	case <-time.After(waitBound):
		h.t.Fatal("session did not end")
	}
}

// connectFrame is a CONNECT with credentials and the given extra headers.
func connectFrame(extra ...string) string {
	s := "CONNECT\naccept-version:1.0,1.1,1.2\nhost:/\nlogin:alice\npasscode:secret\n"
	for _, h := range extra {
		s += h + "\n"
	}
	return s + "\n\x00"
}

// connected starts a session and completes CONNECT with accept-version
// version ("1.2" etc.).
func connected(t *testing.T, pair connPair, cfg config.Config, b *fakeBroker, version string) *sessionHarness {
	t.Helper()
	h := startSession(t, pair, cfg, b)
	h.send("CONNECT\naccept-version:" + version + "\nhost:/\nlogin:alice\npasscode:secret\n\n\x00")
	f := h.expectFrame("CONNECTED")
	if got := f.Value("version"); got != version {
		t.Fatalf("CONNECTED version = %q, want %q", got, version)
	}
	h.sessionID = f.Value("session")
	return h
}

// pub is the session's publisher channel, opened by its first SEND (the
// one channel the session watches for channel.flow); it waits until the
// channel is open.
func (h *sessionHarness) pub() *fakeChannel {
	return h.broker.conn(h.t, 0).publisher(h.t)
}

// sub is the channel of the subscription with consumer tag, waiting until
// it consumes.
func (h *sessionHarness) sub(tag string) *fakeChannel {
	return h.broker.conn(h.t, 0).consumerChannel(h.t, tag)
}

// subscribe sends a SUBSCRIBE with a receipt and waits for the RECEIPT.
// extra are further header lines.
func (h *sessionHarness) subscribe(id, destination string, extra ...string) {
	h.t.Helper()
	frame := "SUBSCRIBE\ndestination:" + destination + "\n"
	if id != "" {
		frame += "id:" + id + "\n"
	}
	for _, e := range extra {
		frame += e + "\n"
	}
	h.send(frame + "receipt:sub-" + id + "\n\n\x00")
	h.expectReceipt("sub-" + id)
}

// expectMessage reads a MESSAGE and checks its body.
func (h *sessionHarness) expectMessage(body string) *testFrame {
	h.t.Helper()
	f := h.expectFrame("MESSAGE")
	if f.Body != body {
		h.t.Fatalf("MESSAGE body %q, want %q (%s)", f.Body, body, f)
	}
	return f
}
