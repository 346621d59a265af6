package gateway

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stompgate/stompgate/gateway/broker"
)

// CONNECT phase: semantics 2 and 3.

var sessionIDPattern = regexp.MustCompile(`^session-[A-Za-z0-9_-]{22}$`)

func TestConnectNegotiatesVersion(t *testing.T) {
	tests := []struct {
		name    string
		connect string
		want    string
	}{
		{"absent means 1.0", "CONNECT\nlogin:alice\npasscode:secret\n\n\x00", "1.0"},
		{"1.0", "CONNECT\naccept-version:1.0\nlogin:alice\npasscode:secret\n\n\x00", "1.0"},
		{"1.1", "CONNECT\naccept-version:1.1\nlogin:alice\npasscode:secret\n\n\x00", "1.1"},
		{"highest common", "CONNECT\naccept-version:1.0,1.1,1.2\nlogin:alice\npasscode:secret\n\n\x00", "1.2"},
		{"spaces and unknown versions ignored", "CONNECT\naccept-version: 1.1 ,2.0\nlogin:alice\npasscode:secret\n\n\x00", "1.1"},
		{"STOMP command", "STOMP\naccept-version:1.2\nlogin:alice\npasscode:secret\n\n\x00", "1.2"},
	}
	forEachTransport(t, func(t *testing.T, pair connPair) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := newFakeBroker()
				h := startSession(t, pair, testConfig(), b)
				h.send(tt.connect)
				f := h.expectFrame("CONNECTED")
				var names []string
				for _, hd := range f.Headers {
					names = append(names, hd[0])
				}
				// Semantics 2.5: header order.
				if got := strings.Join(names, ","); got != "server,session,heart-beat,version" {
					t.Errorf("CONNECTED headers %s, want server,session,heart-beat,version", got)
				}
				if got := f.Value("version"); got != tt.want {
					t.Errorf("version = %q, want %q", got, tt.want)
				}
				if got := f.Value("server"); got != "stompgate/"+Version {
					t.Errorf("server = %q", got)
				}
				id := f.Value("session")
				if !sessionIDPattern.MatchString(id) {
					t.Errorf("session = %q, want session-<22 base64url chars>", id)
				}
				if got := f.Value("heart-beat"); got != "0,0" {
					t.Errorf("heart-beat = %q, want 0,0", got)
				}
				logins := b.dialLogins()
				if len(logins) != 1 {
					t.Fatalf("dialled %d times, want 1", len(logins))
				}
				l := logins[0]
				if l.Login != "alice" || l.Passcode != "secret" || l.VHost != "/" {
					t.Errorf("dial login = %+v", l)
				}
				if !strings.HasPrefix(l.ConnectionName, "stompgate "+id+" ") {
					t.Errorf("connection name %q does not name session %s", l.ConnectionName, id)
				}
				// The publisher channel opens with the first SEND
				// (session.publisher).
				if n := h.broker.conn(t, 0).channelCount(); n != 0 {
					t.Errorf("%d channels open at CONNECT, want none", n)
				}
			})
		}
	})
}

func TestConnectHideServerInfo(t *testing.T) {
	cfg := testConfig()
	cfg.STOMP.HideServerInfo = true
	h := startSession(t, pipePair, cfg, newFakeBroker())
	h.send(connectFrame())
	f := h.expectFrame("CONNECTED")
	if _, ok := f.Get("server"); ok {
		t.Errorf("CONNECTED has a server header with stomp.hide_server_info: %s", f)
	}
}

func TestConnectVersionMismatch(t *testing.T) {
	forEachTransport(t, func(t *testing.T, pair connPair) {
		b := newFakeBroker()
		h := startSession(t, pair, testConfig(), b)
		h.send("CONNECT\naccept-version:2.0,3.1\nlogin:alice\npasscode:secret\n\n\x00")
		h.expectError("Version mismatch", "Supported versions are 1.0,1.1,1.2\n")
		if n := len(b.dialLogins()); n != 0 {
			t.Errorf("dialled the broker %d times after a version mismatch", n)
		}
	})
}

func TestConnectHeartBeatNegotiation(t *testing.T) {
	// Semantics 3, the table (floors 500 ms, the defaults).
	tests := []struct{ header, want string }{
		{"", "0,0"},
		{"0,0", "0,0"},
		{"1000,1000", "1000,1000"},
		{"500,2500", "2500,500"},
		{"5000,7000", "7000,5000"},
		{"100,100", "500,500"},
		{"0,100", "500,0"},
		{"100,0", "0,500"},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			cfg := testConfig()
			cfg.Heartbeat.SendMin = 500 * time.Millisecond
			cfg.Heartbeat.RecvMin = 500 * time.Millisecond
			h := startSession(t, pipePair, cfg, newFakeBroker())
			var extra []string
			if tt.header != "" {
				extra = append(extra, "heart-beat:"+tt.header)
			}
			h.send(connectFrame(extra...))
			f := h.expectFrame("CONNECTED")
			if got := f.Value("heart-beat"); got != tt.want {
				t.Errorf("CONNECT heart-beat:%s → CONNECTED heart-beat:%s, want %s", tt.header, got, tt.want)
			}
		})
	}
}

func TestConnectInvalidHeartBeat(t *testing.T) {
	for _, hb := range []string{"1000", "a,b", "-1,0", "1000,", "2147483648,0", " 10,10"} {
		t.Run(hb, func(t *testing.T) {
			b := newFakeBroker()
			h := startSession(t, pipePair, testConfig(), b)
			h.send(connectFrame("heart-beat:" + hb))
			h.expectError("Bad CONNECT", "Invalid heart-beat header '"+hb+"'\n")
			if n := len(b.dialLogins()); n != 0 {
				t.Errorf("dialled the broker %d times", n)
			}
		})
	}
}

func TestConnectCredentials(t *testing.T) {
	const missing = "Missing login or passcode header(s)\n"
	tests := []struct {
		name         string
		headers      string
		defaultLogin string
		wantLogin    string // "" → ERROR Bad CONNECT, missing
		wantPasscode string
	}{
		{"both", "login:bob\npasscode:pw\n", "", "bob", "pw"},
		{"neither, no defaults", "", "", "", ""},
		{"neither, defaults", "", "dflt", "dflt", "dflt-pw"},
		{"login only", "login:bob\n", "dflt", "", ""},
		{"passcode only", "passcode:pw\n", "dflt", "", ""},
		{"empty login", "login:\npasscode:pw\n", "dflt", "", ""},
		{"empty passcode", "login:bob\npasscode:\n", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.defaultLogin != "" {
				cfg.Auth.DefaultLogin, cfg.Auth.DefaultPasscode = tt.defaultLogin, tt.defaultLogin+"-pw"
			}
			b := newFakeBroker()
			h := startSession(t, pipePair, cfg, b)
			h.send("CONNECT\naccept-version:1.2\n" + tt.headers + "\n\x00")
			if tt.wantLogin == "" {
				h.expectError("Bad CONNECT", missing)
				if n := len(b.dialLogins()); n != 0 {
					t.Errorf("dialled the broker %d times", n)
				}
				return
			}
			h.expectFrame("CONNECTED")
			l := b.dialLogins()[0]
			if l.Login != tt.wantLogin || l.Passcode != tt.wantPasscode {
				t.Errorf("dialled with %q/%q, want %q/%q", l.Login, l.Passcode, tt.wantLogin, tt.wantPasscode)
			}
		})
	}
}

func TestConnectLoopbackUsers(t *testing.T) {
	remote := func(ip string) func(net.Conn) net.Conn {
		return func(c net.Conn) net.Conn {
			return remoteAddrConn{Conn: c, remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}
		}
	}
	t.Run("guest from elsewhere", func(t *testing.T) {
		b := newFakeBroker()
		h := startSessionWith(t, pipePair, testConfig(), b, remote("192.0.2.10"))
		h.send("CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\n\n\x00")
		h.expectError("Bad CONNECT", "non-loopback access denied\n")
		if n := len(b.dialLogins()); n != 0 {
			t.Errorf("dialled the broker %d times", n)
		}
	})
	t.Run("other user from elsewhere", func(t *testing.T) {
		h := startSessionWith(t, pipePair, testConfig(), newFakeBroker(), remote("192.0.2.10"))
		h.send(connectFrame())
		h.expectFrame("CONNECTED")
	})
	t.Run("guest from loopback", func(t *testing.T) {
		h := startSession(t, tcpPair, testConfig(), newFakeBroker())
		h.send("CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\n\n\x00")
		h.expectFrame("CONNECTED")
	})
	t.Run("guest from IPv6 loopback", func(t *testing.T) {
		h := startSessionWith(t, pipePair, testConfig(), newFakeBroker(), remote("::1"))
		h.send("CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\n\n\x00")
		h.expectFrame("CONNECTED")
	})
}

func TestConnectVirtualHost(t *testing.T) {
	tests := []struct {
		name, host, unmapped string
		want                 string // "" → rejected
	}{
		{"absent → default", "", "passthrough", "vh-default"},
		{"mapped, case-insensitive", "Broker.Example.COM", "reject", "prod"},
		{"unmapped passthrough", "other", "passthrough", "other"},
		{"unmapped default", "other", "default", "vh-default"},
		{"unmapped reject", "other", "reject", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.VHosts.Default = "vh-default"
			cfg.VHosts.Map = map[string]string{"broker.example.com": "prod"}
			cfg.VHosts.Unmapped = tt.unmapped
			b := newFakeBroker()
			h := startSession(t, pipePair, cfg, b)
			connect := "CONNECT\naccept-version:1.2\nlogin:alice\npasscode:secret\n"
			if tt.host != "" {
				connect += "host:" + tt.host + "\n"
			}
			h.send(connect + "\n\x00")
			if tt.want == "" {
				h.expectError("Bad CONNECT", "Virtual host for host '"+tt.host+"' is not configured\n")
				if n := len(b.dialLogins()); n != 0 {
					t.Errorf("dialled the broker %d times", n)
				}
				return
			}
			h.expectFrame("CONNECTED")
			if got := b.dialLogins()[0].VHost; got != tt.want {
				t.Errorf("vhost %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConnectBrokerRefusals(t *testing.T) {
	// The dial errors are made by the production classifier, as
	// broker.NewDialer returns them (semantics 2.3, second table).
	refused := errors.New("dial tcp 127.0.0.1:5672: connect: connection refused")
	tests := []struct {
		name    string
		err     error
		message string
		body    string
	}{
		{"access refused", broker.ClassifyDialError(amqp.ErrCredentials), "Bad CONNECT", "Access refused for user 'alice'\n"},
		{"access refused by code", broker.ClassifyDialError(&amqp.Error{Code: amqp.AccessRefused, Reason: "ACCESS_REFUSED"}), "Bad CONNECT", "Access refused for user 'alice'\n"},
		{"vhost denied", broker.ClassifyDialError(amqp.ErrVhost), "Bad CONNECT", "Virtual host 'vh1' access denied"},
		{"vhost not allowed by code", broker.ClassifyDialError(&amqp.Error{Code: amqp.NotAllowed, Reason: "NOT_ALLOWED - vhost vh1 not found"}), "Bad CONNECT", "Virtual host 'vh1' access denied"},
		// Semantics 2.3: the body names the reason the broker could not be
		// reached, not only that it could not.
		{"unreachable", broker.ClassifyDialError(refused), "Bad CONNECT", "Could not reach the AMQP broker: " + refused.Error() + "\n"},
	}
	forEachTransport(t, func(t *testing.T, pair connPair) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := newFakeBroker()
				b.dialErr = tt.err
				h := startSession(t, pair, testConfig(), b)
				h.send("CONNECT\naccept-version:1.2\nhost:vh1\nlogin:alice\npasscode:secret\n\n\x00")
				f := h.expectError(tt.message, tt.body)
				if strings.Contains(f.String(), "secret") {
					t.Errorf("ERROR echoes the passcode: %s", f)
				}
			})
		}
	})
}

func TestFrameBeforeConnect(t *testing.T) {
	forEachTransport(t, func(t *testing.T, pair connPair) {
		b := newFakeBroker()
		h := startSession(t, pair, testConfig(), b)
		h.send("SEND\ndestination:/queue/a\n\nhello\x00")
		// Byte for byte as the plugin: no LF (semantics 14.1).
		h.expectError("Illegal command", "You must log in using CONNECT first")
		if n := len(b.dialLogins()); n != 0 {
			t.Errorf("dialled the broker %d times", n)
		}
	})
}

func TestSecondConnect(t *testing.T) {
	forEachTransport(t, func(t *testing.T, pair connPair) {
		b := newFakeBroker()
		h := connected(t, pair, testConfig(), b, "1.2")
		h.send("CONNECT\naccept-version:1.2\nlogin:alice\npasscode:secret\nreceipt:r1\n\n\x00")
		f := h.expectError("Bad CONNECT", "Already connected\n")
		if got := f.Value("receipt-id"); got != "r1" {
			t.Errorf("ERROR receipt-id = %q, want r1", got)
		}
		if n := len(b.dialLogins()); n != 1 {
			t.Errorf("dialled the broker %d times, want 1", n)
		}
		eventually(t, "AMQP connection closed", b.conn(t, 0).isClosed)
	})
}

func TestConnectTimeout(t *testing.T) {
	for _, partial := range []string{"", "CONNECT\naccept-version:1.2\nlogin:al"} {
		t.Run(strings.ReplaceAll(partial, "\n", `\n`), func(t *testing.T) {
			forEachTransport(t, func(t *testing.T, pair connPair) {
				cfg := testConfig()
				cfg.Limits.ConnectTimeout = 50 * time.Millisecond
				b := newFakeBroker()
				h := startSession(t, pair, cfg, b)
				start := time.Now()
				if partial != "" {
					h.send(partial)
				}
				h.expectError("Connect timeout", "No complete CONNECT frame arrived in time.\n")
				if d := time.Since(start); d < cfg.Limits.ConnectTimeout {
					t.Errorf("ERROR after %v, before limits.connect_timeout %v", d, cfg.Limits.ConnectTimeout)
				}
				if n := len(b.dialLogins()); n != 0 {
					t.Errorf("dialled the broker %d times", n)
				}
			})
		})
	}
}

func TestPreconnectByteLimit(t *testing.T) {
	forEachTransport(t, func(t *testing.T, pair connPair) {
		cfg := testConfig()
		cfg.Limits.MaxPreconnectBytes = 64
		b := newFakeBroker()
		h := startSession(t, pair, cfg, b)
		h.sendAsync(connectFrame("x-padding:" + strings.Repeat("p", 200)))
		h.expectError("Frame too large", "More than 64 bytes arrived before CONNECT completed (limits.max_preconnect_bytes)\n")
		if n := len(b.dialLogins()); n != 0 {
			t.Errorf("dialled the broker %d times", n)
		}
	})
}

func TestPreconnectLimitAllowsExactCONNECT(t *testing.T) {
	frame := connectFrame()
	cfg := testConfig()
	cfg.Limits.MaxPreconnectBytes = int64(len(frame))
	h := startSession(t, pipePair, cfg, newFakeBroker())
	h.send(frame)
	h.expectFrame("CONNECTED")
}

// SEND and receipts: semantics 7, 11, 13.

func TestSendReceiptAfterConfirm(t *testing.T) {
	forEachTransport(t, func(t *testing.T, pair connPair) {
		h := connected(t, pair, testConfig(), newFakeBroker(), "1.2")
		h.send("SEND\ndestination:/queue/a\nreceipt:r1\n\nhello\x00")
		pub := h.pub()
		p := pub.waitPublishes(t, 1)[0]
		if p.Exchange != "" || p.Key != "a" || string(p.Msg.Body) != "hello" {
			t.Errorf("published %+v, want exchange \"\", key a, body hello", p)
		}
		if got := pub.callsOf("QueueDeclare"); len(got) != 1 || !strings.HasPrefix(got[0], "QueueDeclare a durable=true autoDelete=false exclusive=false noWait=false") {
			t.Errorf("declares before the publish: %q", got)
		}
		// Semantics 11: no RECEIPT before the broker's confirm.
		h.expectNothing()
		pub.confirm(t, 1, true)
		h.expectReceipt("r1")

		// The declare is cached per session and name (5.2).
		h.send("SEND\ndestination:/queue/a\nreceipt:r2\n\nagain\x00")
		pub.waitPublishes(t, 2)
		pub.confirm(t, 2, true)
		h.expectReceipt("r2")
		if got := pub.callsOf("QueueDeclare"); len(got) != 1 {
			t.Errorf("declared /queue/a %d times, want once per session", len(got))
		}
	})
}

func TestSendNackEndsSession(t *testing.T) {
	forEachTransport(t, func(t *testing.T, pair connPair) {
		h := connected(t, pair, testConfig(), newFakeBroker(), "1.2")
		h.send("SEND\ndestination:/topic/t\nreceipt:r1\n\nhello\x00")
		pub := h.pub()
		pub.waitPublishes(t, 1)
		pub.confirm(t, 1, false)
		f := h.expectError("Send failed", "the broker did not accept the message\n")
		if got := f.Value("receipt-id"); got != "r1" {
			t.Errorf("ERROR receipt-id = %q, want r1", got)
		}
		eventually(t, "AMQP connection closed", h.broker.conn(t, 0).isClosed)
	})
}

func TestReceiptsFollowWorkCompletion(t *testing.T) {
	// Semantics 11: receipts go out as work completes, so a SUBSCRIBE's may
	// overtake an unconfirmed SEND's; SENDs without receipt take their
	// sequence numbers.
	forEachTransport(t, func(t *testing.T, pair connPair) {
		h := connected(t, pair, testConfig(), newFakeBroker(), "1.2")
		h.send("SEND\ndestination:/topic/t\nreceipt:s1\n\none\x00")
		pub := h.pub()
		h.send("SEND\ndestination:/topic/t\n\ntwo\x00")
		h.send("SUBSCRIBE\nid:0\ndestination:/queue/b\nreceipt:sub\n\n\x00")
		h.expectReceipt("sub")
		h.send("SEND\ndestination:/topic/t\nreceipt:s3\n\nthree\x00")
		pub.waitPublishes(t, 3)
		h.expectNothing()
		pub.confirm(t, 1, true)
		h.expectReceipt("s1")
		pub.confirm(t, 2, true)
		h.expectNothing()
		pub.confirm(t, 3, true)
		h.expectReceipt("s3")
	})
}

func TestMaxUnconfirmedStopsReading(t *testing.T) {
	forEachTransport(t, func(t *testing.T, pair connPair) {
		cfg := testConfig()
		cfg.Flow.MaxUnconfirmed = 2
		h := connected(t, pair, cfg, newFakeBroker(), "1.2")
		h.send("SEND\ndestination:/topic/t\n\none\x00")
		pub := h.pub()
		h.send("SEND\ndestination:/topic/t\n\ntwo\x00")
		pub.waitPublishes(t, 2)
		h.send("SUBSCRIBE\nid:0\ndestination:/queue/b\nreceipt:sub\n\n\x00")
		// Semantics 13: at the cap the next frame is not processed.
		h.expectNothing()
		if n := h.broker.conn(t, 0).channelCount(); n != 1 {
			t.Fatalf("SUBSCRIBE processed at the unconfirmed cap: %d channels open", n)
		}
		pub.confirm(t, 1, true)
		h.expectReceipt("sub")
	})
}

func TestBrokerFlowControlStopsReading(t *testing.T) {
	t.Run("connection.blocked", func(t *testing.T) {
		h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
		conn := h.broker.conn(t, 0)
		conn.block(t, true)
		h.send("SUBSCRIBE\nid:0\ndestination:/queue/b\nreceipt:sub\n\n\x00")
		h.expectNothing()
		if n := conn.channelCount(); n != 0 {
			t.Fatalf("SUBSCRIBE processed while blocked: %d channels open", n)
		}
		conn.block(t, false)
		h.expectReceipt("sub")
	})
	t.Run("channel.flow", func(t *testing.T) {
		h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
		h.send("SEND\ndestination:/topic/t\n\nopens the publisher channel\x00")
		pub := h.pub()
		pub.flow(t, false)
		h.send("SUBSCRIBE\nid:0\ndestination:/queue/b\nreceipt:sub\n\n\x00")
		h.expectNothing()
		pub.flow(t, true)
		h.expectReceipt("sub")
	})
}

// Broker errors: semantics 14.3.

func TestPublisherChannelCloseReportsBrokerError(t *testing.T) {
	// A broker channel.close (404 after a publish to a missing exchange)
	// becomes ERROR not_found with the broker's text.
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.send("SEND\ndestination:/exchange/missing\nreceipt:r1\n\nhello\x00")
	pub := h.pub()
	pub.waitPublishes(t, 1)
	pub.closeWithError(&amqp.Error{Code: amqp.NotFound, Reason: "NOT_FOUND - no exchange 'missing' in vhost '/'", Server: true})
	h.expectError("not_found", "NOT_FOUND - no exchange 'missing' in vhost '/'")
}

// blockCalls makes calls of method on channel #index block until the
// returned release is closed; entered receives one value per blocked call.
func blockCalls(b *fakeBroker, index int, method string) (entered chan struct{}, release chan struct{}) {
	entered, release = make(chan struct{}, 16), make(chan struct{})
	b.setHook(func(ch *fakeChannel, m string) error {
		if ch.index == index && m == method {
			entered <- struct{}{}
			<-release
		}
		return nil
	})
	return entered, release
}

func TestBrokerCloseWhileLoopBusy(t *testing.T) {
	// amqp091-go sends the close error to NotifyClose listeners and then
	// closes the channel's other Notify channels (NotifyPublish,
	// NotifyFlow; NotifyBlocked for a connection). When the session loop
	// is busy in a broker call at that moment, all of them are ready at
	// once when it selects again: a closed confirm channel must not be
	// read as a basic.nack ("Send failed"), a closed flow channel not as
	// flow(false). Repeated because select picks among ready cases at
	// random.
	cases := []struct {
		name    string
		close   func(h *sessionHarness)
		message string
		body    string
	}{
		{"publisher channel", func(h *sessionHarness) {
			h.pub().closeWithError(&amqp.Error{Code: amqp.NotFound, Reason: "NOT_FOUND - no exchange 'missing' in vhost '/'", Server: true})
		}, "not_found", "NOT_FOUND - no exchange 'missing' in vhost '/'"},
		{"connection", func(h *sessionHarness) {
			h.broker.conn(h.t, 0).closeWithError(&amqp.Error{Code: amqp.ConnectionForced, Reason: "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'", Server: true})
		}, "connection_forced", "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"},
		{"link lost", func(h *sessionHarness) {
			h.broker.conn(h.t, 0).closeWithError(&amqp.Error{Code: amqp.FrameError, Reason: "read tcp 127.0.0.1:5672: connection reset by peer", Server: false})
		}, "AMQP connection died", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 8 {
				t.Run(fmt.Sprint(i), func(t *testing.T) {
					b := newFakeBroker()
					h := connected(t, pipePair, testConfig(), b, "1.2")
					entered, release := blockCalls(b, 0, "Publish")
					h.send("SEND\ndestination:/queue/a\nreceipt:r1\n\nhello\x00")
					select {
					case <-entered:
					case <-time.After(waitBound):
						t.Fatal("SEND did not reach basic.publish")
					}
					tc.close(h)
					close(release)
					if tc.body == "" {
						f := h.expectFrame("ERROR")
						if got := f.Value("message"); got != tc.message {
							t.Errorf("ERROR message %q, want %q (%s)", got, tc.message, f)
						}
						h.expectDisconnect()
						return
					}
					h.expectError(tc.message, tc.body)
				})
			}
		})
	}
}

func TestConnectionCloseReportsBrokerError(t *testing.T) {
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.subscribe("0", "/queue/a")
	h.broker.conn(t, 0).closeWithError(&amqp.Error{Code: amqp.ConnectionForced, Reason: "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'", Server: true})
	h.expectError("connection_forced", "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'")
}

func TestConnectionLostWithoutClose(t *testing.T) {
	// amqp091-go reports a dead link as an *amqp.Error with Server false.
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.broker.conn(t, 0).closeWithError(&amqp.Error{Code: amqp.FrameError, Reason: "read tcp 127.0.0.1:5672: connection reset by peer", Server: false})
	f := h.expectFrame("ERROR")
	if got := f.Value("message"); got != "AMQP connection died" {
		t.Fatalf("ERROR message %q, want AMQP connection died (%s)", got, f)
	}
	if !strings.HasPrefix(f.Body, "Reason: ") || !strings.Contains(f.Body, "connection reset by peer") || !strings.HasSuffix(f.Body, "\n") {
		t.Errorf("ERROR body %q, want Reason: <the error>", f.Body)
	}
	h.expectDisconnect()
}

func TestSubscriptionChannelClosedByBroker(t *testing.T) {
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.subscribe("0", "/queue/a")
	ch := h.sub("T_0")
	ch.closeWithError(&amqp.Error{Code: amqp.NotFound, Reason: "NOT_FOUND - queue 'a' in vhost '/' deleted", Server: true})
	h.expectError("not_found", "NOT_FOUND - queue 'a' in vhost '/' deleted")
}

func TestDeclareFailureIsTheFramesError(t *testing.T) {
	b := newFakeBroker()
	b.setHook(func(ch *fakeChannel, method string) error {
		if ch.index == 0 && method == "QueueDeclare" {
			return &amqp.Error{Code: amqp.PreconditionFailed, Reason: "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'a' in vhost '/': received 'true' but current is 'false'", Server: true}
		}
		return nil
	})
	h := connected(t, pipePair, testConfig(), b, "1.2")
	h.send("SUBSCRIBE\nid:0\ndestination:/queue/a\nreceipt:sub\n\n\x00")
	f := h.expectError("precondition_failed", "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'a' in vhost '/': received 'true' but current is 'false'")
	if got := f.Value("receipt-id"); got != "sub" {
		t.Errorf("ERROR receipt-id %q, want sub", got)
	}
	if got := b.conn(t, 0).channel(t, 0).callsOf("Consume"); len(got) != 0 {
		t.Errorf("consumed after a failed declare: %q", got)
	}
}

// Session end: semantics 15.

func TestDisconnectWaitsForConfirms(t *testing.T) {
	forEachTransport(t, func(t *testing.T, pair connPair) {
		h := connected(t, pair, testConfig(), newFakeBroker(), "1.2")
		h.send("SEND\ndestination:/topic/t\nreceipt:r1\n\nhello\x00")
		pub := h.pub()
		pub.waitPublishes(t, 1)
		h.send("DISCONNECT\nreceipt:bye\n\n\x00SEND\ndestination:/topic/t\n\nafter\x00")
		h.expectNothing()
		pub.confirm(t, 1, true)
		h.expectReceipt("r1")
		h.expectReceipt("bye")
		h.expectDisconnect()
		h.waitEnded()
		if n := len(pub.publishes()); n != 1 {
			t.Errorf("%d publishes, want 1: frames after DISCONNECT are ignored", n)
		}
		if !h.broker.conn(t, 0).isClosed() {
			t.Error("AMQP connection left open")
		}
	})
}

func TestDisconnectTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.STOMP.DisconnectTimeout = 100 * time.Millisecond
	h := connected(t, pipePair, cfg, newFakeBroker(), "1.2")
	h.send("SEND\ndestination:/topic/t\nreceipt:r1\n\nhello\x00")
	pub := h.pub()
	pub.waitPublishes(t, 1)
	h.send("DISCONNECT\nreceipt:bye\n\n\x00")
	h.expectReceipt("bye")
	h.expectDisconnect()
}

func TestClientEOFEndsSession(t *testing.T) {
	forEachTransport(t, func(t *testing.T, pair connPair) {
		h := connected(t, pair, testConfig(), newFakeBroker(), "1.2")
		h.subscribe("0", "/queue/a")
		_ = h.conn.Close()
		h.waitEnded()
		if !h.broker.conn(t, 0).isClosed() {
			t.Error("AMQP connection left open after client EOF")
		}
	})
}

func TestShutdownSendsErrorAfterConfirms(t *testing.T) {
	forEachTransport(t, func(t *testing.T, pair connPair) {
		h := connected(t, pair, testConfig(), newFakeBroker(), "1.2")
		h.send("SEND\ndestination:/topic/t\nreceipt:r1\n\nhello\x00")
		pub := h.pub()
		pub.waitPublishes(t, 1)
		h.sess.shutdown()
		h.expectNothing()
		pub.confirm(t, 1, true)
		h.expectReceipt("r1")
		h.expectError("Server shutting down", "The gateway is shutting down; reconnect later.\n")
	})
}

func TestUnknownCommandAfterConnect(t *testing.T) {
	h := connected(t, pipePair, testConfig(), newFakeBroker(), "1.2")
	h.send("FOO\nreceipt:r\n\n\x00")
	f := h.expectFrame("ERROR")
	if f.Value("message") == "" {
		t.Errorf("ERROR without message: %s", f)
	}
	h.expectDisconnect()
}
