//go:build e2e

package e2e

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/stompgate/stompgate/gateway/config"
)

const (
	smallHeaderLine = 1024
	smallMaxBody    = 64 << 10
)

// TestBadInputEndsOnlyThatSession sends each kind of bad input on its own
// connection: it must get an ERROR and then a close (semantics 14.2), while
// a healthy go-stomp client on the same gateway keeps sending and receiving.
func TestBadInputEndsOnlyThatSession(t *testing.T) {
	t.Parallel()
	n := newNames(t) // before startGateway: cleanups run LIFO
	addr := startGateway(t, func(cfg *config.Config) {
		cfg.Limits.MaxHeaderLine = smallHeaderLine
		cfg.Limits.MaxBody = smallMaxBody
	})
	healthyQueue := n.queue("healthy")
	healthy := dialStomp(t, addr, stomp.ConnOpt.AcceptVersion(stomp.V12))
	// A /queue subscription needs no receipt here: messages wait in the queue.
	sub, err := healthy.Subscribe("/queue/"+healthyQueue, stomp.AckAuto)
	if err != nil {
		t.Fatalf("healthy SUBSCRIBE: %v", err)
	}
	roundTrip := func(t *testing.T, label string) {
		t.Helper()
		body := "healthy " + label
		if err := healthy.Send("/queue/"+healthyQueue, "text/plain", []byte(body), stomp.SendOpt.Receipt); err != nil {
			t.Fatalf("healthy SEND %s: %v", label, err)
		}
		if got := receiveWithin(t, sub, 5*time.Second); string(got.Body) != body {
			t.Fatalf("healthy client got %q, want %q", got.Body, body)
		}
	}
	roundTrip(t, "before")

	connect := "CONNECT\nlogin:guest\npasscode:guest\nhost:/\naccept-version:1.2\n\n\x00"
	cases := []struct {
		name        string
		connect     bool   // complete a CONNECT first
		input       string // then send this
		message     string // ERROR message header
		receiptID   string // ERROR receipt-id header (gateway only)
		body        string // exact ERROR body, "" = not checked
		gatewayOnly string // why the case cannot pass against the plugin
	}{
		{
			name:    "malformed frame (no NUL after the content-length body)",
			connect: true, input: "SEND\ndestination:/queue/" + n.queue("bad1") + "\ncontent-length:3\n\nabcdef\x00",
			message:     "Malformed frame",
			gatewayOnly: "the plugin drops malformed input without an ERROR (semantics 16 #2)",
		},
		{
			name:    "header line without colon",
			connect: true, input: "SEND\ndestination:/queue/" + n.queue("bad2") + "\nno colon here\n\nbody\x00",
			message:     "Malformed frame",
			gatewayOnly: "the plugin drops malformed input without an ERROR (semantics 16 #2)",
		},
		{
			name:    "oversize header line",
			connect: true, input: "SEND\ndestination:/queue/" + n.queue("bad3") + "\nbig:" + strings.Repeat("x", 2*smallHeaderLine) + "\n\nbody\x00",
			message:     "Frame too large",
			gatewayOnly: "needs limits.max_header_line; the plugin has no header limits (semantics 16 #5)",
		},
		{
			name:    "oversize body",
			connect: true, input: "SEND\ndestination:/queue/" + n.queue("bad4") + "\ncontent-length:1048576\n\n" + strings.Repeat("y", 1024),
			message:     "Frame too large",
			gatewayOnly: "needs limits.max_body; the plugin has no body limit (semantics 16 #5)",
		},
		{
			name:    "invalid destination with a receipt",
			connect: true, input: "SEND\ndestination:/queue/a/b\nreceipt:bad-1\n\nbody\x00",
			message: "Invalid destination", receiptID: "bad-1", body: "'/a/b' is not a valid queue destination\n",
		},
		{
			name:    "frame before CONNECT",
			input:   "SEND\ndestination:/queue/" + n.queue("bad5") + "\n\nbody\x00",
			message: "Illegal command",
			// The plugin's body has no trailing LF here; the gateway mirrors it byte for byte (semantics 14.1).
			body: "You must log in using CONNECT first",
		},
		{
			name:    "unknown command",
			connect: true, input: "FROB\nx:y\n\n\x00",
			message: "Bad command", body: "Could not interpret command \"FROB\"\n",
		},
		{
			name:    "wrong credentials",
			input:   "CONNECT\nlogin:guest\npasscode:not-the-password\nhost:/\naccept-version:1.2\n\n\x00",
			message: "Bad CONNECT", body: "Access refused for user 'guest'\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.gatewayOnly != "" {
				requireGateway(t, tc.gatewayOnly)
			}
			c := dialRaw(t, addr)
			if tc.connect {
				send(t, c, connect)
				expectFrame(t, c, "CONNECTED")
			}
			sendTolerant(t, c, tc.input)
			expectError(t, c, tc.message, tc.receiptID, tc.body)
			expectCloseAfterError(t, c)
			roundTrip(t, "after "+tc.name)
		})
	}
}

// sendTolerant writes input but accepts that the server closed its side
// early: the gateway may answer an oversize frame before it has all of it.
func sendTolerant(t testing.TB, c *rawConn, input string) {
	t.Helper()
	if err := c.conn.SetWriteDeadline(time.Now().Add(frameTimeout)); err != nil {
		t.Fatalf("set write deadline: %v", err)
	}
	if _, err := io.WriteString(c.conn, input); err != nil && !isReset(err) && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Logf("write stopped early (server closed its side): %v", err)
	}
}
