package gateway

import (
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"go.uber.org/goleak"

	"github.com/stompgate/stompgate/gateway/auth"
	"github.com/stompgate/stompgate/gateway/auth/authtest"
	"github.com/stompgate/stompgate/gateway/config"
)

// Token logins, expiry, renewal, rules and reload (issue 13) against the
// fake broker: the session's side of what e2e/token_test.go checks with
// RabbitMQ.

const (
	testIssuer   = "https://id.example.test/"
	testAudience = "stompgate"
)

// tokenKit is a signing key, its JWKS file and a config that trusts it.
type tokenKit struct {
	key *authtest.Key
	cfg config.Config
}

func newTokenKit(t *testing.T) *tokenKit {
	t.Helper()
	k := &tokenKit{key: authtest.NewRSAKey(t, "k1"), cfg: testConfig()}
	path := filepath.Join(t.TempDir(), "jwks.json")
	authtest.WriteJWKSFile(t, path, k.key)
	j := &k.cfg.Auth.JWT
	j.JWKSFile, j.Issuer, j.Audience = path, testIssuer, testAudience
	j.ServiceUser, j.ServicePasscode = "svc-stomp", "svc-secret"
	return k
}

// token signs a valid token for sub that expires after ttl; extra claims
// are added.
func (k *tokenKit) token(t *testing.T, sub string, ttl time.Duration, extra ...any) string {
	t.Helper()
	c := authtest.Claims(sub, testIssuer, testAudience, ttl)
	for i := 0; i+1 < len(extra); i += 2 {
		c[extra[i].(string)] = extra[i+1]
	}
	return authtest.Sign(t, k.key, c)
}

// countingObserver counts AccessDenied by rule label.
type countingObserver struct {
	nopObserver
	mu     sync.Mutex
	denied map[string]int
}

func (o *countingObserver) AccessDenied(rule string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.denied == nil {
		o.denied = make(map[string]int)
	}
	o.denied[rule]++
}

func (o *countingObserver) count(rule string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.denied[rule]
}

// startAuthSession is startSessionWith for a session with the Server's
// authority built from cfg (a token verifier and acl.rules).
func startAuthSession(t *testing.T, pair connPair, cfg config.Config, b *fakeBroker, wrap func(net.Conn) net.Conn) (*sessionHarness, *authority, *countingObserver) {
	t.Helper()
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	authz, err := newAuthority(&cfg, log)
	if err != nil {
		t.Fatalf("newAuthority: %v", err)
	}
	t.Cleanup(authz.close)
	server, client := pair(t)
	if wrap != nil {
		server = wrap(server)
	}
	obs := &countingObserver{}
	h := &sessionHarness{
		stompClient: newStompClient(t, client),
		sess:        newSession(&cfg, server, b.dial, log),
		broker:      b,
		logs:        hook,
		runDone:     make(chan struct{}),
	}
	h.sess.authz = authz
	h.sess.obs = obs
	go func() {
		defer close(h.runDone)
		h.sess.run()
	}()
	t.Cleanup(func() {
		_ = client.Close()
		select {
		case <-h.runDone:
		case <-time.After(waitBound):
			t.Errorf("session goroutine did not exit after the client closed")
		}
	})
	return h, authz, obs
}

// connectWith sends a CONNECT with the given header lines and returns the
// CONNECTED frame.
func (h *sessionHarness) connectWith(lines ...string) *testFrame {
	h.t.Helper()
	h.send("CONNECT\naccept-version:1.2\nhost:/\n" + strings.Join(append(lines, ""), "\n") + "\n\x00")
	f := h.expectFrame("CONNECTED")
	h.sessionID = f.Value("session")
	return f
}

func TestTokenConnectGatewayMode(t *testing.T) {
	k := newTokenKit(t)
	tok := k.token(t, "alice", time.Minute)
	for _, tc := range []struct {
		name    string
		headers []string
		wrap    func(net.Conn) net.Conn
	}{
		{"passcode without login", []string{"passcode:" + tok}, nil},
		{"Authorization header", []string{"Authorization:Bearer " + tok}, nil},
		{"WebSocket upgrade", nil, func(c net.Conn) net.Conn { return upgradeConn{c, tok} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBroker()
			h, _, _ := startAuthSession(t, tcpPair, k.cfg, b, tc.wrap)
			h.connectWith(tc.headers...)
			logins := b.dialLogins()
			if len(logins) != 1 || logins[0].Login != "svc-stomp" || logins[0].Passcode != "svc-secret" {
				t.Fatalf("AMQP logins %+v, want one as the service user", logins)
			}
			if h.sess.tok.identity == nil || h.sess.tok.identity.User != "alice" {
				t.Fatalf("identity %+v, want user alice", h.sess.tok.identity)
			}
		})
	}
}

// upgradeConn is a connection that came with a WebSocket upgrade token.
type upgradeConn struct {
	net.Conn
	token string
}

func (c upgradeConn) UpgradeToken() string { return c.token }

func TestTokenConnectPassthroughMode(t *testing.T) {
	k := newTokenKit(t)
	k.cfg.Auth.JWT.BrokerMode = config.BrokerModePassthrough
	k.cfg.Auth.JWT.ServiceUser, k.cfg.Auth.JWT.ServicePasscode = "", ""
	tok := k.token(t, "alice", time.Minute)
	b := newFakeBroker()
	h, _, _ := startAuthSession(t, tcpPair, k.cfg, b, nil)
	h.connectWith("passcode:" + tok)
	logins := b.dialLogins()
	if len(logins) != 1 || logins[0].Login != "alice" || logins[0].Passcode != tok {
		t.Fatalf("AMQP logins %+v, want alice with the token as password", logins)
	}
}

func TestTokenConnectRefused(t *testing.T) {
	k := newTokenKit(t)
	other := authtest.NewRSAKey(t, "k1") // same kid, another key
	claims := func(mut func(jwt.MapClaims)) jwt.MapClaims {
		c := authtest.Claims("alice", testIssuer, testAudience, time.Minute)
		if mut != nil {
			mut(c)
		}
		return c
	}
	for _, tc := range []struct {
		name, token, body string
	}{
		{"expired", authtest.Sign(t, k.key, claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() })), "Token expired\n"},
		{"not yet valid", authtest.Sign(t, k.key, claims(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), "Token not yet valid\n"},
		{"wrong issuer", authtest.Sign(t, k.key, claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.test/" })), "Token has the wrong issuer\n"},
		{"wrong audience", authtest.Sign(t, k.key, claims(func(c jwt.MapClaims) { c["aud"] = "other" })), "Token has the wrong audience\n"},
		{"bad signature", authtest.Sign(t, other, claims(nil)), "Invalid token signature\n"},
		{"unknown kid", authtest.Sign(t, authtest.NewRSAKey(t, "k2"), claims(nil)), "Token signed with an unknown key\n"},
		{"alg none", authtest.NoneToken(t, "k1", claims(nil)), "Token algorithm not allowed\n"},
		{"HS256 with the public key", authtest.HS256WithPublicKey(t, k.key, claims(nil)), "Token algorithm not allowed\n"},
		{"garbage", "not.a.token", "Malformed token\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBroker()
			h, _, _ := startAuthSession(t, tcpPair, k.cfg, b, nil)
			h.send("CONNECT\naccept-version:1.2\nhost:/\npasscode:" + tc.token + "\n\n\x00")
			h.expectError("Bad CONNECT", tc.body)
			if n := len(b.dialLogins()); n != 0 {
				t.Errorf("%d AMQP dials for a refused token, want 0", n)
			}
		})
	}
}

func TestTokenRequiredRefusesLogin(t *testing.T) {
	k := newTokenKit(t)
	k.cfg.Auth.JWT.Required = true
	h, _, _ := startAuthSession(t, tcpPair, k.cfg, newFakeBroker(), nil)
	h.send(connectFrame())
	h.expectError("Bad CONNECT", "A bearer token is required (auth.jwt.required)\n")
}

func TestLoginStillWorksWithTokensConfigured(t *testing.T) {
	k := newTokenKit(t)
	b := newFakeBroker()
	h, _, _ := startAuthSession(t, tcpPair, k.cfg, b, nil)
	h.connectWith("login:bob", "passcode:pw")
	if l := b.dialLogins(); len(l) != 1 || l[0].Login != "bob" || l[0].Passcode != "pw" {
		t.Fatalf("AMQP logins %+v, want bob's own", l)
	}
	// Renewal needs a token session.
	h.send("SEND\ndestination:/gateway/token\ntoken:" + k.token(t, "bob", time.Minute) + "\nreceipt:r\n\n\x00")
	f := h.expectError("Token refused", "This session did not log in with a token; there is nothing to renew\n")
	if got := f.Value("receipt-id"); got != "r" {
		t.Errorf("ERROR receipt-id %q, want r", got)
	}
}

// frameAt is a frame and when the client had read it.
type frameAt struct {
	f  *testFrame
	at time.Time
}

// readAll reads frames until the connection ends, with their arrival time.
func readAll(c *stompClient) <-chan []frameAt {
	out := make(chan []frameAt, 1)
	go func() {
		var got []frameAt
		for {
			f, err := c.readFrame(5 * time.Second)
			if err != nil {
				out <- got
				return
			}
			got = append(got, frameAt{f, time.Now()})
		}
	}()
	return out
}

func TestTokenExpiryEndsSessionWithNoMessageAfter(t *testing.T) {
	k := newTokenKit(t)
	claims := authtest.Claims("alice", testIssuer, testAudience, 1500*time.Millisecond)
	exp := time.Unix(claims["exp"].(int64), 0)
	tok := authtest.Sign(t, k.key, claims)
	b := newFakeBroker()
	h, _, _ := startAuthSession(t, tcpPair, k.cfg, b, nil)
	h.connectWith("passcode:" + tok)
	h.subscribe("0", "/queue/q")
	ch := h.sub("T_0")
	frames := readAll(h.stompClient)
	// Deliver steadily until after the expiry.
	for i := 0; time.Now().Before(exp.Add(300 * time.Millisecond)); i++ {
		if ch.pendingDeliveries("T_0") < 8 && !ch.isClosed() {
			ch.deliver(t, "T_0", "m")
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := <-frames
	if len(got) == 0 || got[len(got)-1].f.Command != "ERROR" {
		t.Fatalf("last frame is not an ERROR: %d frames", len(got))
	}
	last := got[len(got)-1]
	if msg := last.f.Value("message"); msg != "Token expired" {
		t.Fatalf("ERROR message %q, want Token expired", msg)
	}
	if late := last.at.Sub(exp); late < 0 || late > time.Second {
		t.Errorf("ERROR arrived %v after exp, want within [0, 1s]", late)
	}
	messages := 0
	for _, fa := range got[:len(got)-1] {
		if fa.f.Command != "MESSAGE" {
			continue
		}
		messages++
		// The writer takes nothing at or after exp; 20 ms covers the
		// read of a write already under way on loopback.
		if fa.at.After(exp.Add(20 * time.Millisecond)) {
			t.Errorf("MESSAGE read %v after exp", fa.at.Sub(exp))
		}
	}
	if messages == 0 {
		t.Fatal("no MESSAGE arrived before the expiry: the test proves nothing")
	}
	h.waitEnded()
}

func TestTokenRenewalMovesExpiry(t *testing.T) {
	k := newTokenKit(t)
	claims := authtest.Claims("alice", testIssuer, testAudience, 1500*time.Millisecond)
	exp := time.Unix(claims["exp"].(int64), 0)
	b := newFakeBroker()
	h, _, _ := startAuthSession(t, tcpPair, k.cfg, b, nil)
	h.connectWith("passcode:" + authtest.Sign(t, k.key, claims))
	h.send("SEND\ndestination:/gateway/token\ntoken:" + k.token(t, "alice", time.Minute) + "\nreceipt:renew\n\n\x00")
	h.expectReceipt("renew")
	time.Sleep(time.Until(exp.Add(300 * time.Millisecond)))
	// Still open, and nothing was published for the renewal.
	h.subscribe("0", "/queue/q")
	if pub := b.conn(t, 0).publisherIfOpen(); pub != nil {
		t.Errorf("renewal published: %v", pub.publishes())
	}
	if at := h.sess.tok.identity; at == nil || time.Until(at.Expiry) < 30*time.Second {
		t.Errorf("identity after renewal %+v, want the new expiry", at)
	}
}

func TestTokenRenewalRefused(t *testing.T) {
	k := newTokenKit(t)
	for _, tc := range []struct{ name, token, body string }{
		{"another subject", "", "The new token names another subject\n"},
		{"expired", authtest.Sign(t, k.key, authtest.Claims("alice", testIssuer, testAudience, -time.Minute)), "Token expired\n"},
		{"no token", "-", "A SEND to /gateway/token needs the new token in a token header\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _, _ := startAuthSession(t, tcpPair, k.cfg, newFakeBroker(), nil)
			h.connectWith("passcode:" + k.token(t, "alice", time.Minute))
			token := tc.token
			if token == "" {
				token = k.token(t, "mallory", time.Minute)
			}
			frame := "SEND\ndestination:/gateway/token\n"
			if token != "-" {
				frame += "token:" + token + "\n"
			}
			h.send(frame + "\n\x00")
			h.expectError("Token refused", tc.body)
		})
	}
}

// secretLog records connection.update-secret calls on fake connections.
var secretLog struct {
	sync.Mutex
	secrets map[*fakeConn][]string
}

// UpdateSecret makes fakeConn take connection.update-secret
// (broker.UpdateSecret).
func (c *fakeConn) UpdateSecret(newSecret, reason string) error {
	secretLog.Lock()
	defer secretLog.Unlock()
	if secretLog.secrets == nil {
		secretLog.secrets = make(map[*fakeConn][]string)
	}
	secretLog.secrets[c] = append(secretLog.secrets[c], newSecret)
	return nil
}

func TestTokenRenewalPassthroughUpdatesSecret(t *testing.T) {
	k := newTokenKit(t)
	k.cfg.Auth.JWT.BrokerMode = config.BrokerModePassthrough
	b := newFakeBroker()
	h, _, _ := startAuthSession(t, tcpPair, k.cfg, b, nil)
	h.connectWith("passcode:" + k.token(t, "alice", time.Minute))
	next := k.token(t, "alice", 2*time.Minute, "jti", "second")
	h.send("SEND\ndestination:/gateway/token\ntoken:" + next + "\nreceipt:renew\n\n\x00")
	h.expectReceipt("renew")
	secretLog.Lock()
	got := secretLog.secrets[b.conn(t, 0)]
	secretLog.Unlock()
	if len(got) != 1 || got[0] != next {
		t.Fatalf("update-secret calls %d, want one with the new token", len(got))
	}
	if h.sess.login.Passcode != next {
		t.Error("a resume would log in with the old token")
	}
}

func TestRulesAllowAndDeny(t *testing.T) {
	k := newTokenKit(t)
	k.cfg.ACL.Rules = []config.ACLRule{
		{Allow: []string{"subscribe"}, Destination: "/topic/prices.*"},
		{Allow: []string{"send", "subscribe"}, Destination: "/queue/user.{user}"},
		{Allow: []string{"send"}, Destination: "/queue/tenant.{claim:tenant}"},
	}
	allowed := []string{
		"SUBSCRIBE\nid:1\ndestination:/topic/prices.eur\nreceipt:a\n\n\x00",
		"SUBSCRIBE\nid:2\ndestination:/queue/user.alice\nreceipt:a\n\n\x00",
	}
	for _, tc := range []struct {
		name, frame, body, rule string
	}{
		{"send to a subscribe-only topic", "SEND\ndestination:/topic/prices.eur\n\nx\x00", "User 'alice' may not send to '/topic/prices.eur'\n", "rule_0"},
		{"another user's queue", "SUBSCRIBE\nid:9\ndestination:/queue/user.bob\n\n\x00", "User 'alice' may not subscribe to '/queue/user.bob'\n", "default_deny"},
		{"another tenant", "SEND\ndestination:/queue/tenant.blue\n\nx\x00", "User 'alice' may not send to '/queue/tenant.blue'\n", "default_deny"},
		{"subscribe where only send is allowed", "SUBSCRIBE\nid:9\ndestination:/queue/tenant.red\n\n\x00", "User 'alice' may not subscribe to '/queue/tenant.red'\n", "rule_2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBroker()
			h, _, obs := startAuthSession(t, tcpPair, k.cfg, b, nil)
			h.connectWith("passcode:" + k.token(t, "alice", time.Minute, "tenant", "red"))
			for _, f := range allowed {
				h.send(f)
				h.expectReceipt("a")
			}
			// An allowed SEND with the tenant template is published.
			h.send("SEND\ndestination:/queue/tenant.red\n\nok\x00")
			h.pub().waitPublishes(t, 1)
			h.send(tc.frame)
			h.expectError("Access refused", tc.body)
			if n := obs.count(tc.rule); n != 1 {
				t.Errorf("AccessDenied(%q) counted %d, want 1", tc.rule, n)
			}
		})
	}
}

func TestRulesApplyToLoginSessions(t *testing.T) {
	cfg := testConfig()
	cfg.ACL.Rules = []config.ACLRule{{Allow: []string{"send", "subscribe"}, Destination: "/queue/user.{user}"}}
	h, _, _ := startAuthSession(t, tcpPair, cfg, newFakeBroker(), nil)
	h.connectWith("login:alice", "passcode:pw")
	h.subscribe("0", "/queue/user.alice")
	h.send("SUBSCRIBE\nid:1\ndestination:/queue/user.bob\n\n\x00")
	h.expectError("Access refused", "User 'alice' may not subscribe to '/queue/user.bob'\n")
}

func TestReloadEndsSubscriptionNoLongerAllowed(t *testing.T) {
	cfg := testConfig()
	cfg.ACL.Rules = []config.ACLRule{{Allow: []string{"subscribe"}, Destination: "/queue/*"}}
	h, authz, obs := startAuthSession(t, tcpPair, cfg, newFakeBroker(), nil)
	h.connectWith("login:alice", "passcode:pw")
	h.subscribe("0", "/queue/a")
	h.subscribe("1", "/queue/b")

	// A reload that still allows both changes nothing.
	rules, err := auth.NewRules([]auth.Rule{{Allow: []auth.Verb{auth.VerbSubscribe}, Destination: "/queue/*"}})
	if err != nil {
		t.Fatal(err)
	}
	authz.rules.Store(rules)
	h.sess.rulesChanged()
	h.expectNothing()

	rules, err = auth.NewRules([]auth.Rule{{Allow: []auth.Verb{auth.VerbSubscribe}, Destination: "/queue/a"}})
	if err != nil {
		t.Fatal(err)
	}
	authz.rules.Store(rules)
	h.sess.rulesChanged()
	h.expectError("Access refused", "User 'alice' may no longer subscribe to '/queue/b' (subscription '1'): the rules were reloaded\n")
	if n := obs.count("default_deny"); n != 1 {
		t.Errorf("AccessDenied(default_deny) = %d, want 1", n)
	}
}

func TestUserIDMustBeTheTokenUser(t *testing.T) {
	k := newTokenKit(t)
	b := newFakeBroker()
	h, _, _ := startAuthSession(t, tcpPair, k.cfg, b, nil)
	h.connectWith("passcode:" + k.token(t, "alice", time.Minute))
	h.send("SEND\ndestination:/queue/q\nuser-id:alice\n\nok\x00")
	pubs := h.pub().waitPublishes(t, 1)
	if pubs[0].Msg.UserId != "" {
		t.Errorf("user_id %q published as the service user, want it left out (the broker would refuse it)", pubs[0].Msg.UserId)
	}
	h.send("SEND\ndestination:/queue/q\nuser-id:bob\n\nforged\x00")
	h.expectError("precondition_failed", "user_id property set to 'bob' but authenticated user was 'alice'\n")
}

func TestServerReloadRejectsBadRules(t *testing.T) {
	cfg := testConfig()
	srv, err := NewServer(cfg, logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(config.ACLConfig{Rules: []config.ACLRule{{Allow: []string{"send"}, Destination: "/queue/**"}}}); err == nil {
		t.Fatal("Reload accepted a bad pattern")
	}
	if err := srv.Reload(config.ACLConfig{Rules: []config.ACLRule{{Allow: []string{"send"}, Destination: "/queue/a"}}}); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if n := srv.authz.rules.Load().Len(); n != 1 {
		t.Fatalf("rules after reload: %d, want 1", n)
	}
}
