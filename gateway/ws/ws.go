package ws

// STOMP over WebSocket (transport "ws", or "wss" with websocket.tls). The
// session code is the same as for TCP: Conn adapts a WebSocket connection
// to net.Conn. Inbound, the payloads of text and binary messages are
// concatenated into one byte stream, which the streaming codec decodes, so
// a message may carry one frame, several, or part of one. Outbound, Conn
// has WriteFrames (the gateway's messageWriter): each STOMP frame, and each
// heart-beat EOL, is one WebSocket message, as STOMP-over-WebSocket clients
// such as stomp.js expect.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// wsSubprotocols are the STOMP subprotocols, highest first: the server
// echoes the first of these that the client offers. Browsers refuse a
// connection whose handshake echoes none of the subprotocols they asked
// for; a client that asks for none gets none and is still served.
var wsSubprotocols = []string{"v12.stomp", "v11.stomp", "v10.stomp"}

// wsChunkSize bounds what the read pump hands to Read at once.
const wsChunkSize = 32 << 10

// wsCloseTimeout bounds the WebSocket close handshake in Conn.Close.
const wsCloseTimeout = time.Second

// rawConnKey is the http.Server ConnContext key under which the accepted
// net.Conn is stored, so a Conn can bound its close handshake.
type rawConnKey struct{}

// Handler upgrades requests to WebSocket and hands each connection to
// StartSession with Transport. Run its http.Server with ConnContext, so
// that a Conn can bound its close handshake on the raw connection.
type Handler struct {
	// Origins are the allowed Origin patterns (websocket.origins).
	Origins []string
	// Transport is "ws" or "wss", passed to StartSession.
	Transport string
	// StartSession takes over each upgraded connection.
	StartSession func(conn net.Conn, transport string)
	// Log receives refused upgrades.
	Log interface{ Warnf(string, ...any) }
}

// ConnContext is the http.Server ConnContext hook that Handler needs: it
// stores the accepted connection in the request context.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, rawConnKey{}, c)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:    wsSubprotocols,
		OriginPatterns:  h.Origins,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		// Accept has already written the HTTP error response.
		h.Log.Warnf("WebSocket upgrade from %s refused: %v", r.RemoteAddr, err)
		return
	}
	raw, _ := r.Context().Value(rawConnKey{}).(net.Conn)
	c := NewConn(ws, raw, r.RemoteAddr)
	c.upgradeToken = upgradeToken(r)
	h.StartSession(c, h.Transport)
}

// upgradeToken is the bearer token of the upgrade request: its
// "Authorization: Bearer" header, else its access_token query parameter
// (RFC 6750 2.3; browsers cannot set headers on a WebSocket).
func upgradeToken(r *http.Request) string {
	if scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		if token = strings.TrimSpace(token); token != "" {
			return token
		}
	}
	return r.URL.Query().Get("access_token")
}

// UpgradeToken is the bearer token that came with the WebSocket upgrade
// request, or "". The session uses it when CONNECT carries none.
func (c *Conn) UpgradeToken() string { return c.upgradeToken }

// Conn is a net.Conn over one WebSocket connection.
//
// A read pump goroutine is the only reader of the WebSocket; it hands
// chunks of message payloads to Read one at a time, so while the session
// does not read, nothing is read from the socket and TCP pushes back (flow
// control, semantics 13). Read deadlines are enforced on the hand-over,
// like a net.Conn's: a Read that times out leaves the connection usable, so
// the session can still send its ERROR (semantics 14.2). Write deadlines
// bound each message write; a write that times out closes the connection,
// which is what the session does after a slow write anyway.
type Conn struct {
	ws     *websocket.Conn
	raw    net.Conn // the underlying connection, to bound Close; may be nil
	remote net.Addr
	local  net.Addr

	// ctx bounds the pump's reads; cancelled by Close after the handshake.
	ctx    context.Context
	cancel context.CancelFunc

	chunks   chan []byte   // pump → Read
	consumed chan struct{} // Read → pump: the last chunk is used up
	pumpDone chan struct{} // closed when the pump returns, after pumpErr is set
	pumpErr  error

	readMu  sync.Mutex // one Read at a time; guards pending
	pending []byte

	readDeadline  deadline
	writeDeadline atomic.Int64 // unix nanoseconds; 0: none

	closed    chan struct{}
	closeOnce sync.Once

	// upgradeToken is set by Handler before the session starts.
	upgradeToken string
}

func NewConn(ws *websocket.Conn, raw net.Conn, remoteAddr string) *Conn {
	// The codec enforces the frame limits on the stream and the pump never
	// holds more than one chunk, so messages need no size limit of their own.
	ws.SetReadLimit(-1)
	c := &Conn{
		ws:           ws,
		raw:          raw,
		chunks:       make(chan []byte),
		consumed:     make(chan struct{}, 1),
		pumpDone:     make(chan struct{}),
		readDeadline: makeDeadline(),
		closed:       make(chan struct{}),
	}
	if raw != nil {
		c.remote, c.local = raw.RemoteAddr(), raw.LocalAddr()
	} else {
		c.remote, c.local = wsAddr(remoteAddr), wsAddr("")
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.pump()
	return c
}

// pump reads messages and hands their payload to Read chunk by chunk.
// Runs in its own goroutine until the connection fails or closes.
func (c *Conn) pump() {
	defer close(c.pumpDone)
	buf := make([]byte, wsChunkSize)
	for {
		_, r, err := c.ws.Reader(c.ctx)
		if err != nil {
			c.pumpErr = wsReadError(err)
			return
		}
		for {
			n, err := r.Read(buf)
			if n > 0 {
				select {
				case c.chunks <- buf[:n]:
				case <-c.closed:
					c.pumpErr = net.ErrClosed
					return
				}
				select {
				case <-c.consumed:
				case <-c.closed:
					c.pumpErr = net.ErrClosed
					return
				}
			}
			if errors.Is(err, io.EOF) {
				break // end of this message
			}
			if err != nil {
				c.pumpErr = wsReadError(err)
				return
			}
		}
	}
}

// wsReadError maps a WebSocket read error to what a net.Conn would return:
// a close frame from the client is the end of the stream.
func wsReadError(err error) error {
	if websocket.CloseStatus(err) != -1 {
		return io.EOF
	}
	if errors.Is(err, net.ErrClosed) {
		return net.ErrClosed
	}
	return err
}

func (c *Conn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if len(c.pending) == 0 {
		select {
		case <-c.closed:
			return 0, net.ErrClosed
		case <-c.readDeadline.wait():
			return 0, os.ErrDeadlineExceeded
		default:
		}
		select {
		case chunk := <-c.chunks:
			c.pending = chunk
		case <-c.pumpDone:
			return 0, c.pumpErr
		case <-c.closed:
			return 0, net.ErrClosed
		case <-c.readDeadline.wait():
			return 0, os.ErrDeadlineExceeded
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	if len(c.pending) == 0 {
		c.consumed <- struct{}{} // cap 1, and the pump waits for it
	}
	return n, nil
}

// Write sends p as one WebSocket message.
func (c *Conn) Write(p []byte) (int, error) {
	if err := c.writeMessage(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteFrames sends each frame of buf (ends are the offsets after each) as
// its own WebSocket message (messageWriter, outbound.go).
func (c *Conn) WriteFrames(buf []byte, ends []int) error {
	start := 0
	for _, end := range ends {
		if err := c.writeMessage(buf[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// writeMessage writes one message: a text message when p is valid UTF-8
// (browsers fail a connection on a text message that is not), a binary one
// otherwise. stomp.js and other clients accept both.
func (c *Conn) writeMessage(p []byte) error {
	select {
	case <-c.closed:
		return net.ErrClosed
	default:
	}
	ctx := c.ctx
	if d := c.writeDeadline.Load(); d != 0 {
		deadline := time.Unix(0, d)
		if !time.Now().Before(deadline) {
			return os.ErrDeadlineExceeded
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	typ := websocket.MessageBinary
	if utf8.Valid(p) {
		typ = websocket.MessageText
	}
	err := c.ws.Write(ctx, typ, p)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("websocket write: %w", os.ErrDeadlineExceeded)
	}
	return err
}

// Close sends a WebSocket close frame (1000, normal closure), waits at most
// wsCloseTimeout for the client's, and closes the connection.
func (c *Conn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		close(c.closed)
	})
	if !first {
		return net.ErrClosed
	}
	if c.raw != nil {
		_ = c.raw.SetDeadline(time.Now().Add(wsCloseTimeout))
	}
	err := c.ws.Close(websocket.StatusNormalClosure, "")
	c.cancel()
	<-c.pumpDone
	if errors.Is(err, net.ErrClosed) || websocket.CloseStatus(err) != -1 {
		err = nil
	}
	return err
}

func (c *Conn) LocalAddr() net.Addr  { return c.local }
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

func (c *Conn) SetDeadline(t time.Time) error {
	_ = c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline applies to blocked and future Reads, as net.Conn's.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.readDeadline.set(t)
	return nil
}

// SetWriteDeadline applies to future writes; the writer goroutine sets it
// before each batch.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		c.writeDeadline.Store(0)
	} else {
		c.writeDeadline.Store(t.UnixNano())
	}
	return nil
}

// wsAddr is a remote address known only as the request's "host:port".
type wsAddr string

func (a wsAddr) Network() string { return "websocket" }
func (a wsAddr) String() string  { return string(a) }

// deadline is a settable deadline whose wait channel is closed when it
// passes, as net.Pipe's: a Read blocked on the channel sees a deadline that
// is moved while it waits.
type deadline struct {
	mu     sync.Mutex // guards timer and cancel
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes
}

func makeDeadline() deadline { return deadline{cancel: make(chan struct{})} }

// set sets the deadline; the zero time clears it.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait until it has closed cancel
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// wait returns a channel that is closed when the deadline passes.
func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
