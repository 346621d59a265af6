package broker

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"
)

func dialN(t *testing.T, dial Dialer, n int, login Login) []Conn {
	t.Helper()
	conns := make([]Conn, n)
	for i := range conns {
		c, err := dial(context.Background(), login)
		if err != nil {
			t.Fatalf("dial #%d: %v", i, err)
		}
		conns[i] = c
	}
	return conns
}

func realConns(conns []Conn) map[Conn]int {
	m := map[Conn]int{}
	for _, c := range conns {
		m[c.(*sharedConn).pc.real]++
	}
	return m
}

func TestSharedConnectionsPoolSessionsAndAuthenticateEachConnect(t *testing.T) {
	defer goleak.VerifyNone(t)
	b := newPoolBroker()
	dial := NewSharedDialer(b.dial, 2)
	login := Login{Login: "u", Passcode: "p", VHost: "/"}
	conns := dialN(t, dial, 5, login)

	// Every CONNECT was authenticated by the broker with its credentials.
	if got := len(b.dialLogins()); got != 5 {
		t.Fatalf("broker saw %d logins, want 5 (one per CONNECT)", got)
	}
	shared := realConns(conns)
	if len(shared) != 3 {
		t.Fatalf("5 sessions at 2 per connection use %d connections, want 3", len(shared))
	}
	for real, n := range shared {
		if n > 2 {
			t.Errorf("a pooled connection carries %d sessions, want ≤ 2", n)
		}
		if real.(*poolConn).isClosed() {
			t.Error("a pooled connection in use is closed")
		}
	}
	// The two redundant authentication connections are closed.
	eventually(t, "redundant authentication connections closed", func() bool {
		closed := 0
		for i := 0; i < b.connCount(); i++ {
			if b.conn(t, i).isClosed() {
				closed++
			}
		}
		return closed == 2
	})

	// Closing sessions closes their channels; the last one out closes the
	// pooled connection.
	ch, err := conns[0].Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if !ch.(*poolChannel).isClosed() {
		t.Error("a session's channel survived its Close")
	}
	for real := range shared {
		if !real.(*poolConn).isClosed() {
			t.Error("a pooled connection stayed open after its last session left")
		}
	}
}

func TestSharedConnectionsSeparateCredentialsAndVHosts(t *testing.T) {
	defer goleak.VerifyNone(t)
	b := newPoolBroker()
	dial := NewSharedDialer(b.dial, 10)
	var conns []Conn
	for _, l := range []Login{
		{Login: "u", Passcode: "p", VHost: "/"},
		{Login: "u", Passcode: "other", VHost: "/"},
		{Login: "u", Passcode: "p", VHost: "/v2"},
		{Login: "w", Passcode: "p", VHost: "/"},
		{Login: "u", Passcode: "p", VHost: "/"},
	} {
		conns = append(conns, dialN(t, dial, 1, l)...)
	}
	if got := len(realConns(conns)); got != 4 {
		t.Fatalf("got %d pooled connections, want 4 (only identical credentials and vhost share)", got)
	}
	if conns[0].(*sharedConn).pc != conns[4].(*sharedConn).pc {
		t.Error("identical credentials and vhost did not share a connection")
	}
	for _, c := range conns {
		_ = c.Close()
	}
}

func TestSharedConnectionCloseReachesEverySession(t *testing.T) {
	defer goleak.VerifyNone(t)
	b := newPoolBroker()
	dial := NewSharedDialer(b.dial, 4)
	login := Login{Login: "u", Passcode: "p", VHost: "/"}
	conns := dialN(t, dial, 3, login)
	var closes []chan *amqp.Error
	var blocks []chan amqp.Blocking
	for _, c := range conns {
		closes = append(closes, c.NotifyClose(make(chan *amqp.Error, 1)))
		blocks = append(blocks, c.NotifyBlocked(make(chan amqp.Blocking, 4)))
	}
	real := conns[0].(*sharedConn).pc.real.(*poolConn)

	real.block(t, true)
	for i, bl := range blocks {
		select {
		case got := <-bl:
			if !got.Active {
				t.Errorf("session %d: got unblocked, want blocked", i)
			}
		case <-time.After(waitBound):
			t.Fatalf("session %d did not hear connection.blocked", i)
		}
	}

	forced := &amqp.Error{Code: amqp.ConnectionForced, Reason: "CONNECTION_FORCED - closed by operator", Server: true}
	real.closeWithError(forced)
	for i, cl := range closes {
		select {
		case got := <-cl:
			if got != forced {
				t.Errorf("session %d got close %v, want %v", i, got, forced)
			}
		case <-time.After(waitBound):
			t.Fatalf("session %d did not hear the connection close", i)
		}
	}
	// A new session does not join the dead connection.
	fresh := dialN(t, dial, 1, login)[0]
	if fresh.(*sharedConn).pc.real == real {
		t.Error("a new session joined a closed pooled connection")
	}
	for _, c := range append(conns, fresh) {
		_ = c.Close()
	}
}

func TestSharedConnectionsDialErrorsPassThrough(t *testing.T) {
	b := newPoolBroker()
	b.dialErr = ErrAccessRefused
	dial := NewSharedDialer(b.dial, 4)
	for i := 0; i < MaxConcurrentAuthDials+2; i++ {
		// Failed dials must give their slot back, or this would hang.
		if _, err := dial(context.Background(), Login{Login: "u", Passcode: "bad", VHost: "/"}); err != ErrAccessRefused {
			t.Fatalf("dial #%d: err %v, want the broker's refusal", i, err)
		}
	}
}
