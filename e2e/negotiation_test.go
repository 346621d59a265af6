//go:build e2e

package e2e

import (
	"regexp"
	"strings"
	"testing"

	"github.com/go-stomp/stomp/v3"
)

var sessionIDShape = regexp.MustCompile(`^session-[A-Za-z0-9_-]{22}$`)

// TestVersionNegotiation checks semantics 2.2 and the CONNECTED frame of 2.5.
func TestVersionNegotiation(t *testing.T) {
	t.Parallel()
	addr := startGateway(t)
	cases := []struct {
		accept      string // "" sends no accept-version header
		want        string
		gatewayOnly string // non-empty: why only the gateway is expected to pass
	}{
		{accept: "", want: "1.0"},
		{accept: "1.0", want: "1.0"},
		{accept: "1.1", want: "1.1"},
		{accept: "1.2", want: "1.2"},
		{accept: "1.0,1.1", want: "1.1"},
		{accept: "1.0,1.1,1.2", want: "1.2"},
		{accept: "1.1,1.0", want: "1.1"},
		{accept: "1.2,9.9", want: "1.2"},
		{accept: "1.0, 1.1 , 1.2", want: "1.2", gatewayOnly: "spaces in accept-version are ignored (semantics 16 #18)"},
	}
	for _, tc := range cases {
		t.Run("accept="+tc.accept, func(t *testing.T) {
			t.Parallel()
			if tc.gatewayOnly != "" {
				requireGateway(t, tc.gatewayOnly)
			}
			c := dialRaw(t, addr)
			frame := "CONNECT\nlogin:guest\npasscode:guest\nhost:/\n"
			if tc.accept != "" {
				frame += "accept-version:" + tc.accept + "\n"
			}
			send(t, c, frame+"\n\x00")
			f := expectFrame(t, c, "CONNECTED")
			expectHeader(t, f, "version", tc.want)
			checkConnectedShape(t, f)
			send(t, c, "DISCONNECT\nreceipt:bye\n\n\x00")
			expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "bye")
			expectDisconnect(t, c)
		})
	}

	t.Run("mismatch", func(t *testing.T) {
		t.Parallel()
		c := dialRaw(t, addr)
		send(t, c, "CONNECT\nlogin:guest\npasscode:guest\nhost:/\naccept-version:2.0,3.1\n\n\x00")
		expectError(t, c, "Version mismatch", "", "Supported versions are 1.0,1.1,1.2\n")
		expectCloseAfterError(t, c)
	})

	t.Run("go-stomp", func(t *testing.T) {
		t.Parallel()
		for _, v := range []stomp.Version{stomp.V11, stomp.V12} {
			conn := dialStomp(t, addr, stomp.ConnOpt.AcceptVersion(v))
			if conn.Version() != v {
				t.Errorf("go-stomp asked for %s only, negotiated %s", v, conn.Version())
			}
			if !sessionIDShape.MatchString(conn.Session()) && !relaxed(t, "session id shape is the gateway's (semantics 2.5)") {
				t.Errorf("session = %q, want %v", conn.Session(), sessionIDShape)
			}
		}
	})
}

// checkConnectedShape checks the CONNECTED header order and values of
// semantics 2.5: server, session, heart-beat, version, nothing else.
func checkConnectedShape(t *testing.T, f *rawFrame) {
	t.Helper()
	if relaxed(t, "CONNECTED server, session shape and header order are the gateway's (semantics 2.5, 16 #15)") {
		return
	}
	want := []string{"server", "session", "heart-beat", "version"}
	if got := f.Names(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("CONNECTED headers %v, want %v", got, want)
	}
	if server, _ := f.Get("server"); !strings.HasPrefix(server, "stompgate/") {
		t.Errorf("CONNECTED server = %q, want stompgate/<version>", server)
	}
	if session, _ := f.Get("session"); !sessionIDShape.MatchString(session) {
		t.Errorf("CONNECTED session = %q, want %v", session, sessionIDShape)
	}
}

// TestHeartBeatNegotiation checks the table of semantics 3: the gateway's
// column in-process, the plugin's column against an external target.
func TestHeartBeatNegotiation(t *testing.T) {
	t.Parallel()
	addr := startGateway(t)
	cases := []struct {
		connect string // "" sends no heart-beat header
		gateway string
		plugin  string
	}{
		{connect: "", gateway: "0,0", plugin: "0,0"},
		{connect: "0,0", gateway: "0,0", plugin: "0,0"},
		{connect: "1000,1000", gateway: "1000,1000", plugin: "1000,1000"},
		{connect: "500,2500", gateway: "2500,500", plugin: "2000,1000"},
		{connect: "5000,7000", gateway: "7000,5000", plugin: "7000,5000"},
		{connect: "100,100", gateway: "500,500", plugin: "1000,1000"},
	}
	for _, tc := range cases {
		t.Run("heart-beat="+tc.connect, func(t *testing.T) {
			t.Parallel()
			want := tc.gateway
			if external() {
				t.Logf("external target: expecting the plugin's column of semantics 3 (%s)", tc.plugin)
				want = tc.plugin
			}
			c := dialRaw(t, addr)
			frame := "CONNECT\nlogin:guest\npasscode:guest\nhost:/\naccept-version:1.2\n"
			if tc.connect != "" {
				frame += "heart-beat:" + tc.connect + "\n"
			}
			send(t, c, frame+"\n\x00")
			expectHeader(t, expectFrame(t, c, "CONNECTED"), "heart-beat", want)
			send(t, c, "DISCONNECT\nreceipt:bye\n\n\x00")
			expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "bye")
		})
	}

	t.Run("invalid", func(t *testing.T) {
		t.Parallel()
		requireGateway(t, "the plugin does not validate heart-beat values this way (semantics 3)")
		c := dialRaw(t, addr)
		send(t, c, "CONNECT\nlogin:guest\npasscode:guest\nhost:/\naccept-version:1.2\nheart-beat:abc,100\n\n\x00")
		f := expectError(t, c, "Bad CONNECT", "", "")
		if got, want := string(f.Body), "Invalid heart-beat header 'abc,100'"; !strings.HasPrefix(got, want) {
			t.Errorf("ERROR body = %q, want %q", got, want)
		}
		expectDisconnect(t, c)
	})
}

// expectCloseAfterError checks semantics 14.2 (every ERROR is followed by a
// close). rabbitmq_stomp leaves most sockets open (semantics 16 #1), so the
// check is relaxed against an external target.
func expectCloseAfterError(t testing.TB, c *rawConn) {
	t.Helper()
	if relaxed(t, "the plugin leaves the socket open after most ERRORs (semantics 16 #1)") {
		return
	}
	expectDisconnect(t, c)
}
