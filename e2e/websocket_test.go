//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/stompgate/stompgate/gateway"
	"github.com/stompgate/stompgate/gateway/config"
)

// STOMP over WebSocket against the real broker: the same sessions as TCP,
// one frame per message, frames split across messages, heart-beats and the
// ERROR before the close frame.

// startDeployedGateway runs the in-process gateway with the deployment
// listeners that mutate enables (websocket, tls, admin) on 127.0.0.1:0 and
// returns the server for its addresses. The harness's startGateway returns
// only the STOMP address, so these tests have their own start-up; they need
// the in-process gateway.
func startDeployedGateway(t *testing.T, mutate func(*config.Config)) *gateway.Server {
	t.Helper()
	requireGateway(t, "needs the in-process gateway's WebSocket, TLS and admin listeners")
	cfg := config.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.AMQP.URL = amqpURL()
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.STOMP.ErrorLinger = 300 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	return serveGateway(t, cfg)
}

// wsClient is a STOMP client over one WebSocket connection.
type wsClient struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialWS(t *testing.T, url string, opts *websocket.DialOptions) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("WebSocket dial %s: %v", url, err)
	}
	ws.SetReadLimit(-1)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &wsClient{t: t, ws: ws}
}

// write sends each part as its own WebSocket message.
func (c *wsClient) write(parts ...string) {
	c.t.Helper()
	for _, p := range parts {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.ws.Write(ctx, websocket.MessageText, []byte(p))
		cancel()
		if err != nil {
			c.t.Fatalf("WebSocket write: %v", err)
		}
	}
}

// next returns the next message, or the read error (a close frame shows
// as a websocket.CloseError).
func (c *wsClient) next(timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, p, err := c.ws.Read(ctx)
	return string(p), err
}

// frame returns the next message that is not a heart-beat, which must be
// one whole frame of command cmd.
func (c *wsClient) frame(cmd string) string {
	c.t.Helper()
	for {
		msg, err := c.next(5 * time.Second)
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", cmd, err)
		}
		if msg == "\n" {
			continue
		}
		if !strings.HasPrefix(msg, cmd+"\n") || strings.Count(strings.TrimRight(msg, "\n"), "\x00") != 1 ||
			!strings.HasSuffix(strings.TrimRight(msg, "\n"), "\x00") {
			c.t.Fatalf("got message %q, want exactly one %s frame", msg, cmd)
		}
		return msg
	}
}

func TestWebSocketSendSubscribeReceive(t *testing.T) {
	srv := startDeployedGateway(t, func(c *config.Config) { c.WebSocket.Listen = "127.0.0.1:0" })
	n := newNames(t)
	queue := n.queue("ws")
	c := dialWS(t, "ws://"+srv.WebSocketAddr().String()+"/ws", &websocket.DialOptions{Subprotocols: []string{"v10.stomp", "v11.stomp", "v12.stomp"}})
	if got := c.ws.Subprotocol(); got != "v12.stomp" {
		t.Errorf("subprotocol %q, want v12.stomp", got)
	}
	c.write("CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\nhost:/\nheart-beat:0,0\n\n\x00")
	if f := c.frame("CONNECTED"); !strings.Contains(f, "version:1.2\n") {
		t.Errorf("CONNECTED %q lacks version:1.2", f)
	}
	c.write("SUBSCRIBE\nid:s1\ndestination:/queue/" + queue + "\nack:client-individual\nreceipt:r-sub\n\n\x00")
	if f := c.frame("RECEIPT"); !strings.Contains(f, "receipt-id:r-sub\n") {
		t.Errorf("RECEIPT %q is not for r-sub", f)
	}
	// One SEND split over three messages, then two SENDs in one message.
	c.write("SEND\ndestination:/queue/"+queue+"\nreceipt:r1\n", "\nsplit ", "body\x00")
	c.write("SEND\ndestination:/queue/" + queue + "\n\nsecond\x00SEND\ndestination:/queue/" + queue + "\nreceipt:r3\n\nthird\x00")
	var bodies, receipts []string
	for len(bodies) < 3 || len(receipts) < 2 {
		msg, err := c.next(5 * time.Second)
		if err != nil {
			t.Fatalf("after %d messages and receipts %v: %v", len(bodies), receipts, err)
		}
		switch {
		case msg == "\n":
		case strings.HasPrefix(msg, "RECEIPT\n"):
			receipts = append(receipts, msg)
		case strings.HasPrefix(msg, "MESSAGE\n"):
			_, body, _ := strings.Cut(msg, "\n\n")
			bodies = append(bodies, strings.TrimRight(body, "\x00\n"))
			ack := headerOf(msg, "ack")
			if ack == "" {
				t.Fatalf("MESSAGE %q has no ack header", msg)
			}
			c.write("ACK\nid:" + ack + "\n\n\x00")
		default:
			t.Fatalf("unexpected message %q", msg)
		}
	}
	if strings.Join(bodies, "|") != "split body|second|third" {
		t.Errorf("bodies %q, want split body|second|third in order", bodies)
	}
	c.write("DISCONNECT\nreceipt:bye\n\n\x00")
	if f := c.frame("RECEIPT"); !strings.Contains(f, "receipt-id:bye\n") {
		t.Errorf("RECEIPT %q is not for bye", f)
	}
	if _, err := c.next(5 * time.Second); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("after DISCONNECT: %v, want a close frame 1000", err)
	}
	// Everything was acked: nothing returns to the queue.
	ch := amqpChannel(t)
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("queue %s: %v", queue, err)
	}
	if q.Messages != 0 {
		t.Errorf("queue %s holds %d messages after the ACKs, want 0", queue, q.Messages)
	}
}

func headerOf(frame, name string) string {
	head, _, _ := strings.Cut(frame, "\n\n")
	for _, line := range strings.Split(head, "\n")[1:] {
		if k, v, ok := strings.Cut(line, ":"); ok && k == name {
			return v
		}
	}
	return ""
}

// The gateway sends heart-beats as lone LF messages.
func TestWebSocketHeartBeats(t *testing.T) {
	srv := startDeployedGateway(t, func(c *config.Config) {
		c.WebSocket.Listen = "127.0.0.1:0"
		c.Heartbeat.SendMin = 100 * time.Millisecond
	})
	c := dialWS(t, "ws://"+srv.WebSocketAddr().String()+"/ws", &websocket.DialOptions{Subprotocols: []string{"v12.stomp"}})
	c.write("CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\nheart-beat:0,100\n\n\x00")
	c.frame("CONNECTED")
	for i := 0; i < 2; i++ {
		msg, err := c.next(2 * time.Second)
		if err != nil || msg != "\n" {
			t.Fatalf("heart-beat %d: %q, %v; want a lone LF message", i, msg, err)
		}
	}
}

// A protocol error gets its ERROR as a message, then the close frame.
func TestWebSocketErrorBeforeClose(t *testing.T) {
	srv := startDeployedGateway(t, func(c *config.Config) { c.WebSocket.Listen = "127.0.0.1:0" })
	c := dialWS(t, "ws://"+srv.WebSocketAddr().String()+"/ws", &websocket.DialOptions{Subprotocols: []string{"v12.stomp"}})
	c.write("CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\n\n\x00")
	c.frame("CONNECTED")
	c.write("SEND\ndestination:/bogus/x\nreceipt:r1\n\nbody\x00")
	f := c.frame("ERROR")
	if headerOf(f, "message") == "" || headerOf(f, "receipt-id") != "r1" {
		t.Errorf("ERROR %q lacks message or receipt-id:r1", f)
	}
	if _, err := c.next(5 * time.Second); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("after the ERROR: %v, want a close frame 1000", err)
	}
}
