package ws

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/stompgate/stompgate/gateway/codec"
	"github.com/stompgate/stompgate/gateway/internal/wstest"
)

// wsPair serves one WebSocket upgrade on an httptest server and returns the
// server side as a *Conn and the client side as a *websocket.Conn.
func wsPair(t *testing.T, subprotocols ...string) (*Conn, *websocket.Conn) {
	t.Helper()
	accepted := make(chan *Conn, 1)
	srv := httptest.NewUnstartedServer(&Handler{
		Transport:    "ws",
		StartSession: func(c net.Conn, _ string) { accepted <- c.(*Conn) },
		Log:          testWarnLogger{t},
	})
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, rawConnKey{}, c)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws",
		&websocket.DialOptions{Subprotocols: subprotocols})
	if err != nil {
		t.Fatalf("websocket.Dial: %v", err)
	}
	client.SetReadLimit(-1)
	select {
	case c := <-accepted:
		// The client goes first: Close would otherwise wait wsCloseTimeout
		// for a close frame from a client that nobody reads.
		t.Cleanup(func() { _ = client.CloseNow(); _ = c.Close() })
		return c, client
	case <-time.After(5 * time.Second):
		_ = client.CloseNow()
		t.Fatal("no WebSocket connection reached startSession")
	}
	return nil, nil
}

type testWarnLogger struct{ t *testing.T }

func (l testWarnLogger) Warnf(format string, args ...any) { l.t.Logf(format, args...) }

func TestWebSocketEchoesTheHighestSTOMPSubprotocol(t *testing.T) {
	tests := []struct {
		offered []string
		want    string
	}{
		{[]string{"v10.stomp", "v11.stomp", "v12.stomp"}, "v12.stomp"},
		{[]string{"v10.stomp", "v11.stomp"}, "v11.stomp"},
		{[]string{"v10.stomp"}, "v10.stomp"},
		{[]string{"mqtt", "V12.STOMP"}, "V12.STOMP"},
		{nil, ""}, // non-browser clients may offer none and are still served
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.offered, ","), func(t *testing.T) {
			_, client := wsPair(t, tt.offered...)
			if got := client.Subprotocol(); got != tt.want {
				t.Errorf("offered %v: subprotocol %q, want %q", tt.offered, got, tt.want)
			}
		})
	}
}

// The codec reads the concatenated payloads: a frame split across text
// and binary messages, and two frames in one message, decode alike.
func TestWSConnStreamsFramesAcrossMessages(t *testing.T) {
	server, client := wsPair(t, "v12.stomp")
	wstest.Write(t, client, websocket.MessageText, "SEND\ndestination:/queue/a\n\nhel")
	wstest.Write(t, client, websocket.MessageBinary, "lo\x00")
	wstest.Write(t, client, websocket.MessageText, "\n") // heart-beat EOL
	wstest.Write(t, client, websocket.MessageBinary, "SEND\ndestination:/queue/b\n\n\xff\xfe\x00SEND\ndestination:/queue/c\n\nthird\x00")

	r := codec.NewReader(server, codec.Limits{MaxLineBytes: 1024, MaxHeaders: 10, MaxHeaderBytes: 4096, MaxBody: 1 << 20})
	want := []struct{ dest, body string }{{"/queue/a", "hello"}, {"/queue/b", "\xff\xfe"}, {"/queue/c", "third"}}
	for _, w := range want {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("ReadFrame: %v", err)
		}
		if f.Command != codec.CmdSend || f.Headers.Value("destination") != w.dest || string(f.Body) != w.body {
			t.Errorf("frame %s %q body %q, want SEND %s body %q", f.Command, f.Headers.Value("destination"), f.Body, w.dest, w.body)
		}
	}
}

// A message larger than the read chunk arrives whole, in order.
func TestWSConnReadsLargeMessages(t *testing.T) {
	server, client := wsPair(t)
	big := strings.Repeat("0123456789", 10000) // 100 kB > wsChunkSize
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = client.Write(ctx, websocket.MessageBinary, []byte(big))
	}()
	got := make([]byte, len(big))
	if _, err := io.ReadFull(server, got); err != nil {
		t.Fatalf("ReadFull: %v", err)
	}
	if string(got) != big {
		t.Error("large message corrupted")
	}
}

// Each frame of a WriteFrames batch, heart-beat EOL included, is its own
// message; UTF-8 frames go as text, others as binary.
func TestWSConnWritesOneMessagePerFrame(t *testing.T) {
	server, client := wsPair(t)
	frames := []string{"MESSAGE\ndestination:/queue/a\n\nhi\x00\n", "\n", "MESSAGE\n\n\xff\x00"}
	var buf []byte
	var ends []int
	for _, f := range frames {
		buf = append(buf, f...)
		ends = append(ends, len(buf))
	}
	if err := server.WriteFrames(buf, ends); err != nil {
		t.Fatalf("WriteFrames: %v", err)
	}
	wantTypes := []websocket.MessageType{websocket.MessageText, websocket.MessageText, websocket.MessageBinary}
	for i, want := range frames {
		typ, got, err := wstest.Read(t, client)
		if err != nil {
			t.Fatalf("client read %d: %v", i, err)
		}
		if got != want || typ != wantTypes[i] {
			t.Errorf("message %d: %v %q, want %v %q", i, typ, got, wantTypes[i], want)
		}
	}
}

// A read deadline behaves as a net.Conn's: the Read times out with a
// timeout error, the connection stays usable for reading and writing, and
// a deadline moved while a Read blocks applies to it.
func TestWSConnReadDeadline(t *testing.T) {
	server, client := wsPair(t)
	_ = server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := server.Read(make([]byte, 10))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read after deadline: %v, want a timeout", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 2*time.Second {
		t.Errorf("Read timed out after %v, want about 50ms", d)
	}
	// Still usable: the ERROR a session sends after a heart-beat timeout
	// must reach the client.
	if _, err := server.Write([]byte("ERROR\n\n\x00")); err != nil {
		t.Fatalf("Write after a read timeout: %v", err)
	}
	if _, got, err := wstest.Read(t, client); err != nil || got != "ERROR\n\n\x00" {
		t.Fatalf("client got %q, %v", got, err)
	}

	// A blocked Read sees the deadline set from another goroutine.
	_ = server.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := server.Read(make([]byte, 10))
		done <- err
	}()
	time.Sleep(30 * time.Millisecond)
	_ = server.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("blocked Read: %v, want deadline exceeded", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("blocked Read ignored a new deadline")
	}

	_ = server.SetReadDeadline(time.Time{})
	wstest.Write(t, client, websocket.MessageText, "abc")
	p := make([]byte, 10)
	n, err := server.Read(p)
	if err != nil || string(p[:n]) != "abc" {
		t.Fatalf("Read after clearing the deadline: %q, %v", p[:n], err)
	}
}

func TestWSConnWriteDeadlineInThePast(t *testing.T) {
	server, _ := wsPair(t)
	_ = server.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := server.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write past its deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	_ = server.SetWriteDeadline(time.Time{})
	if _, err := server.Write([]byte("x")); err != nil {
		t.Fatalf("Write after clearing the deadline: %v", err)
	}
}

// Close sends a close frame (1000) after what was written; a close frame
// from the client ends the stream with io.EOF.
func TestWSConnClose(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		server, client := wsPair(t)
		if _, err := server.Write([]byte("ERROR\n\n\x00")); err != nil {
			t.Fatal(err)
		}
		closed := make(chan error, 1)
		go func() { closed <- server.Close() }()
		if _, got, err := wstest.Read(t, client); err != nil || got != "ERROR\n\n\x00" {
			t.Fatalf("client got %q, %v before the close", got, err)
		}
		_, _, err := wstest.Read(t, client)
		if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
			t.Fatalf("client read after Close: %v, want close status 1000", err)
		}
		if err := <-closed; err != nil {
			t.Errorf("Close: %v", err)
		}
		if _, err := server.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read after Close: %v, want net.ErrClosed", err)
		}
	})
	t.Run("client", func(t *testing.T) {
		server, client := wsPair(t)
		go func() { _ = client.Close(websocket.StatusNormalClosure, "") }()
		if _, err := server.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("Read after the client's close: %v, want io.EOF", err)
		}
	})
}
