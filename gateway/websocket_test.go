package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/stompgate/stompgate/gateway/broker"
	"github.com/stompgate/stompgate/gateway/config"
	"github.com/stompgate/stompgate/gateway/internal/wstest"
)

// recordingObserver records SessionOpened/SessionClosed transports and
// ERROR messages.
type recordingObserver struct {
	nopObserver
	mu     sync.Mutex
	opened []string
	errors []string
}

func (o *recordingObserver) SessionOpened(transport string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.opened = append(o.opened, transport)
}

func (o *recordingObserver) ErrorSent(message string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.errors = append(o.errors, message)
}

func (o *recordingObserver) snapshot() (opened, errs []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.opened...), append([]string(nil), o.errors...)
}

// startWSServer runs a Server with a WebSocket listener whose broker is
// unreachable, so CONNECT ends with an ERROR.
func startWSServer(t *testing.T, mutate func(*config.Config)) (*Server, *recordingObserver) {
	t.Helper()
	cfg := config.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.WebSocket.Listen = "127.0.0.1:0"
	cfg.STOMP.ErrorLinger = 200 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	log, _ := logtest.NewNullLogger()
	srv, err := NewServer(cfg, log)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	srv.dial = func(context.Context, broker.Login) (broker.Conn, error) {
		return nil, fmt.Errorf("%w: test broker is down", broker.ErrUnreachable)
	}
	obs := &recordingObserver{}
	srv.SetObserver(obs)
	if err := srv.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v, want ErrServerClosed", err)
		}
	})
	return srv, obs
}

// A WebSocket session is a normal session: the ERROR of a failed CONNECT
// arrives as a message before the close frame, and the session's transport
// is "ws".
func TestServerWebSocketSessionErrorBeforeClose(t *testing.T) {
	srv, obs := startWSServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws://"+srv.WebSocketAddr().String()+"/ws",
		&websocket.DialOptions{Subprotocols: []string{"v12.stomp"}})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer client.CloseNow()
	wstest.Write(t, client, websocket.MessageText, "CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\nhost:/\n\n\x00")
	_, got, err := wstest.Read(t, client)
	if err != nil {
		t.Fatalf("reading the ERROR: %v", err)
	}
	if !strings.HasPrefix(got, "ERROR\n") || !strings.Contains(got, "message:Bad CONNECT\n") ||
		!strings.Contains(got, "Could not reach the AMQP broker") || !bytes.HasSuffix([]byte(got), []byte("\x00\n")) {
		t.Errorf("got %q, want one ERROR frame Bad CONNECT", got)
	}
	if _, _, err := wstest.Read(t, client); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("after the ERROR: %v, want a close frame with status 1000", err)
	}
	waitFor(t, "observer saw the ws session", func() bool {
		opened, errs := obs.snapshot()
		return len(opened) == 1 && opened[0] == "ws" && len(errs) == 1 && errs[0] == "Bad CONNECT"
	})
}

func TestServerWebSocketOrigins(t *testing.T) {
	srv, _ := startWSServer(t, func(c *config.Config) { c.WebSocket.AllowedOrigins = []string{"*.good.example"} })
	url := "ws://" + srv.WebSocketAddr().String() + "/ws"
	for origin, wantOK := range map[string]bool{
		"":                         true, // not a browser
		"https://app.good.example": true,
		"https://evil.example":     false,
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
		cancel()
		if wantOK != (err == nil) {
			t.Errorf("Origin %q: err %v, want allowed=%v", origin, err, wantOK)
		}
		if !wantOK && resp != nil && resp.StatusCode != http.StatusForbidden {
			t.Errorf("Origin %q: HTTP %d, want 403", origin, resp.StatusCode)
		}
		if c != nil {
			_ = c.Close(websocket.StatusNormalClosure, "")
		}
	}
	// Other paths are not the endpoint.
	resp, err := http.Get("http://" + srv.WebSocketAddr().String() + "/other")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /other: %d, want 404", resp.StatusCode)
	}
}

// waitFor polls cond every millisecond for at most 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
