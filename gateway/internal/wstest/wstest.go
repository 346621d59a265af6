package wstest

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Write sends s as one message of type typ, failing t after 5 s.
func Write(t testing.TB, c *websocket.Conn, typ websocket.MessageType, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, typ, []byte(s)); err != nil {
		t.Fatalf("client write: %v", err)
	}
}

// Read reads one message, waiting at most 5 s.
func Read(t testing.TB, c *websocket.Conn) (websocket.MessageType, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, p, err := c.Read(ctx)
	return typ, string(p), err
}
