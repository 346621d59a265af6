//go:build e2e

package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/stompgate/stompgate/gateway/config"
)

// sharedPoolConnections counts the broker connections of stompgate's
// shared-connection pools (their connection_name starts "stompgate shared").
func sharedPoolConnections(t *testing.T) int {
	t.Helper()
	out, err := exec.Command("rabbitmqctl", "-q", "list_connections", "--no-table-headers", "client_properties").CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl list_connections: %v\n%s", err, out)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, `"stompgate shared `) {
			n++
		}
	}
	return n
}

// In shared-connection mode, many sessions of one user and vhost share a
// few AMQP connections, every CONNECT is still checked by the broker, and
// fan-out reaches every session exactly once.
func TestSharedConnectionMode(t *testing.T) {
	requireGateway(t, "shared-connection mode is a stompgate feature")
	const sessions, perConn = 60, 16
	names := newNames(t)
	topic := names.key("fanout")
	addr := startGateway(t, func(c *config.Config) {
		c.AMQP.SharedConnections = true
		c.AMQP.SessionsPerConnection = perConn
	})
	before := sharedPoolConnections(t)

	// A wrong passcode is refused by the broker even though a pooled
	// connection of that user exists.
	first := connectRaw(t, addr, "1.2")
	bad := dialRaw(t, addr)
	send(t, bad, "CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:wrong\n\n\x00")
	expectError(t, bad, "Bad CONNECT", "", "Access refused for user 'guest'\n")
	_ = first.conn.Close()

	conns := make([]*rawConn, sessions)
	for i := range conns {
		conns[i] = connectRaw(t, addr, "1.2")
		send(t, conns[i], fmt.Sprintf("SUBSCRIBE\nid:s\ndestination:/topic/%s\nreceipt:r%d\n\n\x00", topic, i))
		expectHeader(t, expectFrame(t, conns[i], "RECEIPT"), "receipt-id", fmt.Sprintf("r%d", i))
	}
	pooled := sharedPoolConnections(t) - before
	want := (sessions + perConn - 1) / perConn
	if pooled != want {
		t.Errorf("%d sessions at %d per connection use %d broker connections, want %d", sessions, perConn, pooled, want)
	}

	send(t, conns[0], fmt.Sprintf("SEND\ndestination:/topic/%s\nreceipt:sent\n\nhello\x00", topic))
	got := expectFrames(t, conns[0], "MESSAGE", "RECEIPT")
	if string(got["MESSAGE"].Body) != "hello" {
		t.Errorf("session 0 got body %q", got["MESSAGE"].Body)
	}
	for i := 1; i < sessions; i++ {
		m := expectFrame(t, conns[i], "MESSAGE")
		if string(m.Body) != "hello" {
			t.Errorf("session %d got body %q", i, m.Body)
		}
	}
	for i, c := range conns {
		send(t, c, fmt.Sprintf("DISCONNECT\nreceipt:bye%d\n\n\x00", i))
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", fmt.Sprintf("bye%d", i))
		expectDisconnect(t, c)
	}
}
