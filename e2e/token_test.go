//go:build e2e

package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway"
	"github.com/stompgate/stompgate/gateway/auth/authtest"
	"github.com/stompgate/stompgate/gateway/config"
)

// Token logins and per-destination rules (issue 13) against RabbitMQ, with
// keys and tokens the tests make themselves (gateway/auth/authtest). In
// broker_mode gateway the AMQP side logs in as guest (the service user);
// passthrough runs against a RabbitMQ node of its own with the OAuth2
// backend (scripts/rabbitmq-oauth-node.sh).

const (
	e2eIssuer   = "https://id.e2e.test/"
	e2eAudience = "stompgate"
)

// tokenGateway runs a gateway in broker_mode gateway that trusts key
// through a JWKS file, and returns it with the JWKS path.
func tokenGateway(t *testing.T, key *authtest.Key, mutate func(*config.Config)) (*gateway.Server, string) {
	t.Helper()
	requireGateway(t, "token logins are the gateway's own (issue 13)")
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	authtest.WriteJWKSFile(t, jwks, key)
	srv := startDeployedGateway(t, func(c *config.Config) {
		j := &c.Auth.JWT
		j.JWKSFile, j.Issuer, j.Audience = jwks, e2eIssuer, e2eAudience
		j.ServiceUser, j.ServicePasscode = "guest", "guest"
		if mutate != nil {
			mutate(c)
		}
	})
	return srv, jwks
}

func e2eClaims(sub string, ttl time.Duration) jwt.MapClaims {
	return authtest.Claims(sub, e2eIssuer, e2eAudience, ttl)
}

// connectToken sends a CONNECT whose passcode (no login) is token.
func connectToken(t *testing.T, addr, token string) *rawConn {
	t.Helper()
	c := dialRaw(t, addr)
	send(t, c, "CONNECT\naccept-version:1.2\nhost:/\npasscode:"+token+"\n\n\x00")
	return c
}

func TestTokenLoginsWithJWKSFile(t *testing.T) {
	key := authtest.NewRSAKey(t, "e2e-1")
	srv, _ := tokenGateway(t, key, nil)
	addr := srv.Addr().String()
	n := newNames(t)

	t.Run("valid", func(t *testing.T) {
		queue := n.queue("valid")
		c := dialRaw(t, addr)
		send(t, c, "CONNECT\naccept-version:1.2\nhost:/\nAuthorization:Bearer "+authtest.Sign(t, key, e2eClaims("alice", time.Minute))+"\n\n\x00")
		expectFrame(t, c, "CONNECTED")
		send(t, c, "SUBSCRIBE\nid:0\ndestination:/queue/"+queue+"\nreceipt:s\n\n\x00")
		expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "s")
		send(t, c, "SEND\ndestination:/queue/"+queue+"\n\nhello with a token\x00")
		m := expectFrame(t, c, "MESSAGE")
		if string(m.Body) != "hello with a token" {
			t.Fatalf("MESSAGE body %q", m.Body)
		}
	})
	other := authtest.NewRSAKey(t, "e2e-1")
	for _, tc := range []struct {
		name, token, body string
	}{
		{"expired", authtest.Sign(t, key, e2eClaims("alice", -time.Minute)), "Token expired\n"},
		{"not yet valid", func() string {
			c := e2eClaims("alice", time.Hour)
			c["nbf"] = time.Now().Add(30 * time.Minute).Unix()
			return authtest.Sign(t, key, c)
		}(), "Token not yet valid\n"},
		{"wrong issuer", authtest.Sign(t, key, authtest.Claims("alice", "https://evil.test/", e2eAudience, time.Minute)), "Token has the wrong issuer\n"},
		{"wrong audience", authtest.Sign(t, key, authtest.Claims("alice", e2eIssuer, "someone-else", time.Minute)), "Token has the wrong audience\n"},
		{"signed by another key", authtest.Sign(t, other, e2eClaims("alice", time.Minute)), "Invalid token signature\n"},
		{"alg none", authtest.NoneToken(t, key.KID, e2eClaims("alice", time.Minute)), "Token algorithm not allowed\n"},
		{"HS256 keyed with the public key", authtest.HS256WithPublicKey(t, key, e2eClaims("alice", time.Minute)), "Token algorithm not allowed\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := connectToken(t, addr, tc.token)
			expectError(t, c, "Bad CONNECT", "", tc.body)
			expectDisconnect(t, c)
		})
	}
	t.Run("login and passcode still work", func(t *testing.T) {
		connectRaw(t, addr, "1.2")
	})
}

func TestTokenRequiredRefusesLoginPasscode(t *testing.T) {
	key := authtest.NewECDSAKey(t, "e2e-ec")
	srv, _ := tokenGateway(t, key, func(c *config.Config) { c.Auth.JWT.Required = true })
	c := dialRaw(t, srv.Addr().String())
	send(t, c, "CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\x00")
	expectError(t, c, "Bad CONNECT", "", "A bearer token is required (auth.jwt.required)\n")
	// An ES256 token is accepted.
	c = connectToken(t, srv.Addr().String(), authtest.Sign(t, key, e2eClaims("alice", time.Minute)))
	expectFrame(t, c, "CONNECTED")
}

func TestTokenJWKSURLUnknownKidThenRotated(t *testing.T) {
	requireGateway(t, "token logins are the gateway's own (issue 13)")
	k1, k2, k3 := authtest.NewRSAKey(t, "url-1"), authtest.NewEd25519Key(t, "url-2"), authtest.NewRSAKey(t, "url-3")
	jwksSrv := authtest.NewJWKSServer(t, k1)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, jwksSrv.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startDeployedGateway(t, func(c *config.Config) {
		j := &c.Auth.JWT
		j.JWKSURL, j.CAFile, j.Issuer, j.Audience = jwksSrv.URL(), ca, e2eIssuer, e2eAudience
		j.ServiceUser, j.ServicePasscode = "guest", "guest"
	})
	addr := srv.Addr().String()
	c := connectToken(t, addr, authtest.Sign(t, k1, e2eClaims("alice", time.Minute)))
	expectFrame(t, c, "CONNECTED")

	// The identity provider rotates to k2; a k2 token has a kid the gateway
	// has not seen, so it refetches the JWKS and accepts it.
	jwksSrv.SetKeys(t, k1, k2)
	before := jwksSrv.Fetches()
	c = connectToken(t, addr, authtest.Sign(t, k2, e2eClaims("alice", time.Minute)))
	expectFrame(t, c, "CONNECTED")
	if jwksSrv.Fetches() <= before {
		t.Errorf("JWKS fetches %d after an unknown kid, want more than %d", jwksSrv.Fetches(), before)
	}
	// A kid the provider never published stays unknown.
	c = connectToken(t, addr, authtest.Sign(t, k3, e2eClaims("alice", time.Minute)))
	expectError(t, c, "Bad CONNECT", "", "Token signed with an unknown key\n")
}

// frameArrival is a frame and when it was read.
type frameArrival struct {
	f  *rawFrame
	at time.Time
}

func TestTokenExpiryMidSession(t *testing.T) {
	key := authtest.NewRSAKey(t, "e2e-exp")
	srv, _ := tokenGateway(t, key, nil)
	queue := newNames(t).queue("expiry")
	claims := e2eClaims("alice", 2500*time.Millisecond)
	exp := time.Unix(claims["exp"].(int64), 0)
	c := connectToken(t, srv.Addr().String(), authtest.Sign(t, key, claims))
	expectFrame(t, c, "CONNECTED")
	send(t, c, "SUBSCRIBE\nid:0\ndestination:/queue/"+queue+"\nreceipt:s\n\n\x00")
	expectFrame(t, c, "RECEIPT")

	// RabbitMQ gets a steady stream for the queue until after exp.
	ch := amqpChannel(t)
	stop := make(chan struct{})
	published := make(chan int, 1)
	go func() {
		n := 0
		defer func() { published <- n }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if ch.PublishWithContext(context.Background(), "", queue, false, false, amqp.Publishing{Body: []byte("tick")}) != nil {
				return
			}
			n++
		}
	}()
	var frames []frameArrival
	for {
		f, err := readFrame(c, 5*time.Second)
		if err != nil {
			break
		}
		frames = append(frames, frameArrival{f, time.Now()})
		if f.Command == "ERROR" {
			break
		}
	}
	close(stop)
	t.Logf("published %d messages", <-published)
	expectDisconnect(t, c)
	if len(frames) == 0 || frames[len(frames)-1].f.Command != "ERROR" {
		t.Fatalf("the session did not end with an ERROR (%d frames)", len(frames))
	}
	last := frames[len(frames)-1]
	expectHeader(t, last.f, "message", "Token expired")
	if d := last.at.Sub(exp); d < 0 || d > time.Second {
		t.Errorf("ERROR Token expired read %v after exp, want within [0, 1s]", d)
	}
	messages := 0
	for _, fa := range frames[:len(frames)-1] {
		if fa.f.Command != "MESSAGE" {
			t.Errorf("unexpected %s", fa.f)
			continue
		}
		messages++
		// The gateway's writer takes nothing from exp on; a write taken
		// just before exp may still be read on loopback a moment later.
		if d := fa.at.Sub(exp); d > 50*time.Millisecond {
			t.Errorf("MESSAGE read %v after exp", d)
		}
	}
	if messages < 10 {
		t.Fatalf("only %d MESSAGEs before the expiry: the stream did not reach the session", messages)
	}
}

func TestTokenRenewalKeepsSessionOpen(t *testing.T) {
	key := authtest.NewRSAKey(t, "e2e-renew")
	srv, _ := tokenGateway(t, key, nil)
	queue := newNames(t).queue("renew")
	claims := e2eClaims("alice", 2*time.Second)
	exp := time.Unix(claims["exp"].(int64), 0)
	c := connectToken(t, srv.Addr().String(), authtest.Sign(t, key, claims))
	expectFrame(t, c, "CONNECTED")
	send(t, c, "SEND\ndestination:/gateway/token\ntoken:"+authtest.Sign(t, key, e2eClaims("alice", time.Minute))+"\nreceipt:renew\n\n\x00")
	expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "renew")
	time.Sleep(time.Until(exp.Add(500 * time.Millisecond)))
	send(t, c, "SUBSCRIBE\nid:0\ndestination:/queue/"+queue+"\n\n\x00SEND\ndestination:/queue/"+queue+"\n\nafter renewal\x00")
	if m := expectFrame(t, c, "MESSAGE"); string(m.Body) != "after renewal" {
		t.Fatalf("MESSAGE body %q", m.Body)
	}
	// Another subject cannot take the session over.
	send(t, c, "SEND\ndestination:/gateway/token\ntoken:"+authtest.Sign(t, key, e2eClaims("mallory", time.Minute))+"\n\n\x00")
	expectError(t, c, "Token refused", "", "The new token names another subject\n")
}

func TestTokenRulesAllowAndDeny(t *testing.T) {
	key := authtest.NewRSAKey(t, "e2e-acl")
	n := newNames(t)
	own, other, tenant := n.queue("user.alice"), n.queue("user.bob"), n.queue("tenant.red")
	base := strings.TrimSuffix(own, "user.alice")
	srv, _ := tokenGateway(t, key, func(c *config.Config) {
		c.Admin.Listen = "127.0.0.1:0"
		c.ACL.Rules = []config.ACLRule{
			{Allow: []string{"subscribe"}, Destination: "/topic/" + base + "prices.*"},
			{Allow: []string{"send", "subscribe"}, Destination: "/queue/" + base + "user.{user}"},
			{Allow: []string{"send"}, Destination: "/queue/" + base + "tenant.{claim:tenant}"},
		}
	})
	addr := srv.Addr().String()
	token := func() string {
		c := e2eClaims("alice", time.Minute)
		c["tenant"] = "red"
		return authtest.Sign(t, key, c)
	}
	session := func(t *testing.T) *rawConn {
		c := connectToken(t, addr, token())
		expectFrame(t, c, "CONNECTED")
		return c
	}
	t.Run("allowed", func(t *testing.T) {
		c := session(t)
		send(t, c, "SUBSCRIBE\nid:0\ndestination:/queue/"+own+"\nreceipt:a\n\n\x00")
		expectFrame(t, c, "RECEIPT")
		send(t, c, "SUBSCRIBE\nid:1\ndestination:/topic/"+base+"prices.eur\nreceipt:b\n\n\x00")
		expectFrame(t, c, "RECEIPT")
		send(t, c, "SEND\ndestination:/queue/"+own+"\n\nmine\x00")
		if m := expectFrame(t, c, "MESSAGE"); string(m.Body) != "mine" {
			t.Fatalf("MESSAGE %s", m)
		}
		send(t, c, "SEND\ndestination:/queue/"+tenant+"\nreceipt:t\n\ntenant\x00")
		expectFrame(t, c, "RECEIPT")
		if d := getWithin(t, amqpChannel(t), tenant, 5*time.Second); string(d.Body) != "tenant" {
			t.Fatalf("tenant queue got %q", d.Body)
		}
	})
	for _, tc := range []struct{ name, frame, body, rule string }{
		{"send to a subscribe-only topic", "SEND\ndestination:/topic/" + base + "prices.eur\n\nx\x00", "User 'alice' may not send to '/topic/" + base + "prices.eur'\n", "rule_0"},
		{"subscribe to another user's queue", "SUBSCRIBE\nid:0\ndestination:/queue/" + other + "\n\n\x00", "User 'alice' may not subscribe to '/queue/" + other + "'\n", "default_deny"},
		{"subscribe where only send is allowed", "SUBSCRIBE\nid:0\ndestination:/queue/" + tenant + "\n\n\x00", "User 'alice' may not subscribe to '/queue/" + tenant + "'\n", "rule_2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := scrape(t, srv)[`stompgate_access_denied_total{rule="`+tc.rule+`"}`]
			c := session(t)
			send(t, c, tc.frame)
			expectError(t, c, "Access refused", "", tc.body)
			if after := scrape(t, srv)[`stompgate_access_denied_total{rule="`+tc.rule+`"}`]; after != before+1 {
				t.Errorf("access_denied_total{rule=%q} went %v -> %v, want +1", tc.rule, before, after)
			}
		})
	}
	t.Run("login session narrowed too", func(t *testing.T) {
		c := connectRaw(t, addr, "1.2")
		send(t, c, "SUBSCRIBE\nid:0\ndestination:/queue/"+other+"\n\n\x00")
		expectError(t, c, "Access refused", "", "User 'guest' may not subscribe to '/queue/"+other+"'\n")
	})
}

func TestTokenReloadEndsLiveSubscription(t *testing.T) {
	key := authtest.NewRSAKey(t, "e2e-reload")
	n := newNames(t)
	a, b := n.queue("a"), n.queue("b")
	rule := func(dest string) config.ACLConfig {
		return config.ACLConfig{Rules: []config.ACLRule{{Allow: []string{"send", "subscribe"}, Destination: dest}}}
	}
	srv, _ := tokenGateway(t, key, func(c *config.Config) { c.ACL = rule("/queue/" + n.base + "-*") })
	c := connectToken(t, srv.Addr().String(), authtest.Sign(t, key, e2eClaims("alice", time.Minute)))
	expectFrame(t, c, "CONNECTED")
	send(t, c, "SUBSCRIBE\nid:a\ndestination:/queue/"+a+"\nreceipt:a\n\n\x00")
	expectFrame(t, c, "RECEIPT")
	send(t, c, "SUBSCRIBE\nid:b\ndestination:/queue/"+b+"\nreceipt:b\n\n\x00")
	expectFrame(t, c, "RECEIPT")
	if err := srv.Reload(rule("/queue/" + a)); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	expectError(t, c, "Access refused", "", "User 'alice' may no longer subscribe to '/queue/"+b+"' (subscription 'b'): the rules were reloaded\n")
	expectDisconnect(t, c)
	// A new session gets the new rules at once.
	c = connectToken(t, srv.Addr().String(), authtest.Sign(t, key, e2eClaims("alice", time.Minute)))
	expectFrame(t, c, "CONNECTED")
	send(t, c, "SEND\ndestination:/queue/"+b+"\n\nx\x00")
	expectError(t, c, "Access refused", "", "User 'alice' may not send to '/queue/"+b+"'\n")
}

// TestTokenPassthroughOAuthNode runs a RabbitMQ node with the OAuth2
// backend trusting the test's key: the token is the AMQP password, and a
// renewal reaches the broker as connection.update-secret.
func TestTokenPassthroughOAuthNode(t *testing.T) {
	requireGateway(t, "token logins are the gateway's own (issue 13)")
	key := authtest.NewRSAKey(t, "oauth-1")
	dir := t.TempDir()
	pem := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(pem, key.PublicPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs("../scripts/rabbitmq-oauth-node.sh")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := append(os.Environ(), "STOMPGATE_OAUTH_DIR="+filepath.Join(dir, "node"))
	up := exec.CommandContext(ctx, script, "up", "--pem", pem, "--kid", key.KID)
	up.Env = env
	var stderr strings.Builder
	up.Stderr = &stderr
	out, err := up.Output()
	t.Cleanup(func() {
		down := exec.Command(script, "down")
		down.Env = env
		if out, err := down.CombinedOutput(); err != nil {
			t.Errorf("%s down: %v\n%s", script, err, out)
		}
	})
	if err != nil {
		t.Fatalf("%s up: %v\n%s", script, err, lastLines(stderr.String(), 30))
	}
	nodeURL := strings.TrimSpace(string(out))
	if !strings.HasPrefix(nodeURL, "amqp://127.0.0.1:") {
		t.Fatalf("%s up printed %q, want an amqp://127.0.0.1 URL", script, nodeURL)
	}

	jwks := filepath.Join(dir, "jwks.json")
	authtest.WriteJWKSFile(t, jwks, key)
	srv := startDeployedGateway(t, func(c *config.Config) {
		c.AMQP.URL = nodeURL
		j := &c.Auth.JWT
		j.JWKSFile, j.Issuer, j.Audience = jwks, e2eIssuer, e2eAudience
		j.BrokerMode = config.BrokerModePassthrough
	})
	claims := func(ttl time.Duration, scope string) jwt.MapClaims {
		c := e2eClaims("alice", ttl)
		c["scope"] = scope
		return c
	}
	full := "stompgate.read:*/* stompgate.write:*/* stompgate.configure:*/*"
	queue := "e2e-" + runID + "-passthrough"
	c := connectToken(t, srv.Addr().String(), authtest.Sign(t, key, claims(time.Minute, full)))
	expectFrame(t, c, "CONNECTED")
	send(t, c, "SUBSCRIBE\nid:0\ndestination:/queue/"+queue+"\nreceipt:s\n\n\x00")
	expectFrame(t, c, "RECEIPT")
	send(t, c, "SEND\ndestination:/queue/"+queue+"\nreceipt:p\n\nvia oauth2\x00")
	got := expectFrames(t, c, "RECEIPT", "MESSAGE")
	if string(got["MESSAGE"].Body) != "via oauth2" {
		t.Fatalf("MESSAGE %s", got["MESSAGE"])
	}
	// Renewal: the broker takes the new token with update-secret.
	send(t, c, "SEND\ndestination:/gateway/token\ntoken:"+authtest.Sign(t, key, claims(2*time.Minute, full))+"\nreceipt:renew\n\n\x00")
	expectHeader(t, expectFrame(t, c, "RECEIPT"), "receipt-id", "renew")
	// The session goes on working with the renewed secret: a new channel
	// (a new subscription) is authorised by it.
	send(t, c, "SUBSCRIBE\nid:1\ndestination:/queue/"+queue+"-2\nreceipt:s2\n\n\x00")
	expectFrame(t, c, "RECEIPT")
	send(t, c, "DISCONNECT\nreceipt:bye\n\n\x00")
	expectFrame(t, c, "RECEIPT")

	// A token whose scope gives no configure permission cannot declare.
	c = connectToken(t, srv.Addr().String(), authtest.Sign(t, key, claims(time.Minute, "stompgate.read:*/*")))
	expectFrame(t, c, "CONNECTED")
	send(t, c, "SUBSCRIBE\nid:0\ndestination:/queue/"+queue+"-3\n\n\x00")
	expectFrame(t, c, "ERROR")
}

// In broker_mode gateway every token session logs in to RabbitMQ as the
// service user, so token sessions share pooled AMQP connections.
func TestTokenGatewayModeSharedConnections(t *testing.T) {
	key := authtest.NewRSAKey(t, "e2e-shared")
	srv, _ := tokenGateway(t, key, func(c *config.Config) { c.AMQP.SharedConnections = true })
	queue := newNames(t).queue("shared")
	var conns []*rawConn
	for _, user := range []string{"alice", "bob", "carol"} {
		c := connectToken(t, srv.Addr().String(), authtest.Sign(t, key, e2eClaims(user, time.Minute)))
		expectFrame(t, c, "CONNECTED")
		conns = append(conns, c)
	}
	send(t, conns[0], "SUBSCRIBE\nid:0\ndestination:/queue/"+queue+"\nreceipt:s\n\n\x00")
	expectFrame(t, conns[0], "RECEIPT")
	send(t, conns[2], "SEND\ndestination:/queue/"+queue+"\nreceipt:p\n\nshared\x00")
	expectFrame(t, conns[2], "RECEIPT")
	if m := expectFrame(t, conns[0], "MESSAGE"); string(m.Body) != "shared" {
		t.Fatalf("MESSAGE %s", m)
	}
}

// A non-browser WebSocket client sends the token as an Authorization
// header on the upgrade; CONNECT then needs no credentials.
func TestTokenOnWebSocketUpgradeHeader(t *testing.T) {
	key := authtest.NewRSAKey(t, "e2e-ws")
	srv, _ := tokenGateway(t, key, func(c *config.Config) { c.WebSocket.Listen = "127.0.0.1:0" })
	url := "ws://" + srv.WebSocketAddr().String() + "/ws"
	h := http.Header{}
	h.Set("Authorization", "Bearer "+authtest.Sign(t, key, e2eClaims("alice", time.Minute)))
	c := dialWS(t, url, &websocket.DialOptions{Subprotocols: []string{"v12.stomp"}, HTTPHeader: h})
	c.write("CONNECT\naccept-version:1.2\nhost:/\n\n\x00")
	c.frame("CONNECTED")

	// An expired token in the access_token parameter is refused with an ERROR.
	bad := dialWS(t, url+"?access_token="+authtest.Sign(t, key, e2eClaims("alice", -time.Minute)), &websocket.DialOptions{Subprotocols: []string{"v12.stomp"}})
	bad.write("CONNECT\naccept-version:1.2\nhost:/\n\n\x00")
	if f := bad.frame("ERROR"); !strings.Contains(f, "message:Bad CONNECT\n") || !strings.Contains(f, "Token expired") {
		t.Fatalf("ERROR %q, want Bad CONNECT / Token expired", f)
	}
}
