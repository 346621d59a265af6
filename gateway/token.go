package gateway

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/stompgate/stompgate/gateway/auth"
	"github.com/stompgate/stompgate/gateway/broker"
	"github.com/stompgate/stompgate/gateway/codec"
	"github.com/stompgate/stompgate/gateway/config"
)

// Token logins (issue 13, README "Browsers and tokens"). A session may log
// in with a JWT instead of login/passcode; package auth verifies it. The
// session then has an identity with an expiry: the loop ends it with ERROR
// "Token expired" at exp plus auth.jwt.leeway (expiry.go keeps the writer
// from writing anything after that instant), unless the client renews the
// token with a SEND to tokenDestination.

// tokenDestination is the reserved destination of token renewals: a SEND
// there carries the new token in its token header and is answered with a
// RECEIPT; nothing is published.
const tokenDestination = "/gateway/token"

// tokenRenewTimeout bounds the verification of a renewed token (an unknown
// kid refetches the JWKS URL) while the session loop waits for it.
const tokenRenewTimeout = 10 * time.Second

// authority is the Server's token verifier and rules, shared by its
// sessions. The rules are swapped by Server.Reload; the verifier is safe
// for concurrent use.
type authority struct {
	jwt      config.JWTConfig
	verifier *auth.Verifier // nil without auth.jwt
	rules    atomic.Pointer[auth.Rules]
}

// newAuthority builds the verifier (when auth.jwt has a JWKS) and compiles
// acl.rules.
func newAuthority(cfg *config.Config, log logrus.FieldLogger) (*authority, error) {
	a := &authority{jwt: cfg.Auth.JWT}
	rules, err := auth.NewRules(cfg.ACL.AuthRules())
	if err != nil {
		return nil, err
	}
	a.rules.Store(rules)
	if !cfg.Auth.JWT.Enabled() {
		return a, nil
	}
	j := cfg.Auth.JWT
	opts := auth.Options{
		JWKSFile:        j.JWKSFile,
		JWKSURL:         j.JWKSURL,
		RefreshInterval: j.JWKSRefreshInterval,
		Issuer:          j.Issuer,
		Audience:        j.Audience,
		Leeway:          j.Leeway,
		UserClaim:       j.UserClaim,
		Algorithms:      j.Algorithms,
	}
	if j.CAFile != "" {
		pem, err := os.ReadFile(j.CAFile)
		if err != nil {
			return nil, fmt.Errorf("auth.jwt.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("auth.jwt.ca_file: no certificate in %q", j.CAFile)
		}
		opts.RootCAs = pool
	}
	if a.verifier, err = auth.NewVerifier(opts, log.WithField("component", "jwt")); err != nil {
		return nil, err
	}
	return a, nil
}

// close stops the verifier's JWKS refresh.
func (a *authority) close() {
	if a != nil && a.verifier != nil {
		_ = a.verifier.Close()
	}
}

// tokenState is a session's identity and what hangs on it. Owned by the
// session goroutine: set during CONNECT, then only by the session loop.
type tokenState struct {
	// identity is who the session is: from the token, or {User: login}.
	identity *auth.Identity
	// token is the session's current JWT; "" for a login/passcode session.
	token string
	// timer fires at the token's expiry; expired is its channel (nil: no
	// expiry), selected on by the session loop.
	timer   *time.Timer
	expired <-chan time.Time
	// checker is acl.rules for identity, rebuilt when the rules or the
	// identity change.
	checker *auth.SessionChecker
}

// tokenRefusal is the ERROR body line for a refused token.
func tokenRefusal(err error) string {
	switch {
	case errors.Is(err, auth.ErrTokenExpired):
		return "Token expired"
	case errors.Is(err, auth.ErrTokenNotYetValid):
		return "Token not yet valid"
	case errors.Is(err, auth.ErrBadIssuer):
		return "Token has the wrong issuer"
	case errors.Is(err, auth.ErrBadAudience):
		return "Token has the wrong audience"
	case errors.Is(err, auth.ErrUnknownKey):
		return "Token signed with an unknown key"
	case errors.Is(err, auth.ErrBadAlgorithm):
		return "Token algorithm not allowed"
	case errors.Is(err, auth.ErrBadSignature):
		return "Invalid token signature"
	case errors.Is(err, auth.ErrNoExpiry):
		return "Token has no expiry"
	case errors.Is(err, auth.ErrBadUser):
		return "Token names no usable user"
	case errors.Is(err, auth.ErrMalformed):
		return "Malformed token"
	}
	return "Token could not be verified"
}

// upgradeTokener is a connection that brought a bearer token with it: a
// WebSocket upgrade's Authorization header or access_token parameter
// (ws.Conn).
type upgradeTokener interface{ UpgradeToken() string }

// connectToken finds the bearer token of a CONNECT: an "Authorization:
// Bearer" header, a passcode without login, or the WebSocket upgrade's.
func (s *session) connectToken(h codec.Headers) string {
	if authz, ok := h.Get("authorization"); ok {
		if tok, ok := auth.BearerToken(authz); ok {
			return tok
		}
	}
	if authz, ok := h.Get("Authorization"); ok {
		if tok, ok := auth.BearerToken(authz); ok {
			return tok
		}
	}
	if _, hasLogin := h.Get("login"); !hasLogin {
		if pass, ok := h.Get("passcode"); ok && pass != "" {
			return pass
		}
	}
	if u, ok := s.conn.(upgradeTokener); ok {
		return u.UpgradeToken()
	}
	return ""
}

// authenticate decides the AMQP login of a CONNECT (semantics 2.3 and
// issue 13) and sets the session's identity. Without auth.jwt it is
// credentials; with it, a token is verified and the AMQP side logs in as
// the service user (broker_mode gateway) or with the token as password
// (passthrough). A refused token gets ERROR "Bad CONNECT" naming why.
// Only called from the session goroutine, during CONNECT.
func (s *session) authenticate(h codec.Headers) (broker.Login, error) {
	var token string
	if s.authz != nil && s.authz.verifier != nil {
		token = s.connectToken(h)
	}
	if token == "" {
		if s.authz != nil && s.authz.jwt.Required {
			return broker.Login{}, protocolError("Bad CONNECT", "A bearer token is required (auth.jwt.required)\n")
		}
		login, err := s.credentials(h)
		if err != nil {
			return login, err
		}
		s.tok.identity = &auth.Identity{User: login.Login}
		return login, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Limits.ConnectTimeout)
	defer cancel()
	id, err := s.authz.verifier.Verify(ctx, token)
	if err != nil {
		s.log.WithError(err).Info("bearer token refused at CONNECT")
		return broker.Login{}, protocolError("Bad CONNECT", tokenRefusal(err)+"\n")
	}
	s.tok.identity, s.tok.token = id, token
	s.log = s.log.WithField("user", id.User)
	if s.authz.jwt.BrokerMode == config.BrokerModePassthrough {
		return broker.Login{Login: id.User, Passcode: token}, nil
	}
	return broker.Login{Login: s.authz.jwt.ServiceUser, Passcode: s.authz.jwt.ServicePasscode}, nil
}

// loginName is the user an "Access refused" for the broker's refusal names.
func (s *session) loginName(login broker.Login) string {
	if s.tok.identity != nil && s.tok.token != "" {
		return s.tok.identity.User
	}
	return login.Login
}

// armExpiry starts the expiry timer and the writer's cutoff for the
// session's token, replacing earlier ones. Only called from the session
// goroutine.
func (s *session) armExpiry() {
	if s.tok.timer != nil {
		s.tok.timer.Stop()
		s.tok.timer, s.tok.expired = nil, nil
	}
	if s.tok.identity == nil || s.tok.token == "" {
		return
	}
	at := s.tok.identity.ExpiresAt(s.authz.verifier.Leeway())
	if at.IsZero() {
		return
	}
	s.out.setCutoff(at)
	s.tok.timer = time.NewTimer(time.Until(at))
	s.tok.expired = s.tok.timer.C
}

// tokenExpired ends the session at its token's expiry: frames not yet
// written are dropped, then the session ends with ERROR "Token expired".
// Only called from the session loop.
func (s *session) tokenExpired() error {
	s.out.expire()
	s.log.Info("token expired; ending the session")
	return errTokenExpired
}

// expiredInstead is err, unless the session's token expired before the loop
// returned for another reason (a client frame or a broker event that came
// in the same instant): then the queued frames are dropped and the session
// ends with "Token expired", since nothing else may be written after the
// expiry. Only called from the session goroutine, after the loop.
func (s *session) expiredInstead(err error) error {
	if errors.Is(err, errTokenExpired) || !s.out.pastCutoff() {
		return err
	}
	s.out.expire()
	return errTokenExpired
}

// renewToken handles a SEND to tokenDestination: the token header's JWT
// replaces the session's after the same checks as at CONNECT, and must
// name the same subject (auth.SameSubject). In passthrough mode the broker
// gets it with connection.update-secret. The expiry moves to the new
// token's; a RECEIPT follows if asked for. Only called from the session
// loop.
func (s *session) renewToken(f *codec.Frame) error {
	refuse := func(why string) error {
		pe := protocolError("Token refused", why+"\n")
		pe.ReceiptID = f.Headers.Value("receipt")
		return pe
	}
	if s.tok.token == "" || s.authz == nil || s.authz.verifier == nil {
		return refuse("This session did not log in with a token; there is nothing to renew")
	}
	token, ok := f.Headers.Get("token")
	if !ok || token == "" {
		if tok, bearer := auth.BearerToken(f.Headers.Value("authorization")); bearer {
			token = tok
		}
	}
	if token == "" {
		return refuse("A SEND to " + tokenDestination + " needs the new token in a token header")
	}
	ctx, cancel := context.WithTimeout(context.Background(), tokenRenewTimeout)
	defer cancel()
	id, err := s.authz.verifier.Verify(ctx, token)
	if err != nil {
		s.log.WithError(err).Info("renewed token refused")
		return refuse(tokenRefusal(err))
	}
	if !auth.SameSubject(s.tok.identity, id) {
		return refuse("The new token names another subject")
	}
	if s.authz.jwt.BrokerMode == config.BrokerModePassthrough {
		if err := broker.UpdateSecret(s.broker, token, "STOMP client renewed its token"); err != nil {
			return refuse("The broker refused the new token: " + err.Error())
		}
		s.login.Passcode = token // a resume logs in with the new token
	}
	s.tok.identity, s.tok.token = id, token
	s.tok.checker = nil // templates may use claims that changed
	s.armExpiry()
	s.log.WithField("expires", id.Expiry.UTC().Format(time.RFC3339)).Debug("token renewed")
	s.sendReceipt(f)
	return nil
}
