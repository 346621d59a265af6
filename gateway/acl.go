package gateway

import (
	"fmt"
	"strconv"

	"github.com/stompgate/stompgate/gateway/auth"
	"github.com/stompgate/stompgate/gateway/codec"
	"github.com/stompgate/stompgate/gateway/config"
)

// Per-destination rules (acl.rules, issue 13): checked at every SEND and
// SUBSCRIBE through the session's auth.SessionChecker, and again for live
// subscriptions when Server.Reload installs new rules. A denial ends the
// session with ERROR "Access refused" naming the verb and the destination,
// and is counted by rule (Observer.AccessDenied).

// checker returns the session's rule checker, rebuilt when the Server's
// rules or the session's identity changed. Only called from the session
// loop.
func (s *session) checker() *auth.SessionChecker {
	if s.authz == nil || s.tok.identity == nil {
		return nil
	}
	rules := s.authz.rules.Load()
	if rules.Len() == 0 {
		return nil // no acl.rules: everything is allowed, the broker decides
	}
	if s.tok.checker == nil || s.tok.checker.Rules() != rules {
		s.tok.checker = auth.NewSessionChecker(rules, s.tok.identity)
	}
	return s.tok.checker
}

// ruleLabel is the metrics label of the rule that decided a denial.
func ruleLabel(index int) string {
	if index < 0 {
		return "default_deny"
	}
	return "rule_" + strconv.Itoa(index)
}

// allow checks verb on destination (the header as sent) against the rules
// and returns the "Access refused" error for a denial. Only called from
// the session loop.
func (s *session) allow(verb auth.Verb, destination string) error {
	c := s.checker()
	if c == nil {
		return nil
	}
	ok, rule := c.Check(verb, destination)
	if ok {
		return nil
	}
	s.obs.AccessDenied(ruleLabel(rule))
	s.log.WithFields(map[string]any{"verb": verb, "destination": destination, "rule": ruleLabel(rule)}).Info("access refused by acl.rules")
	return protocolError("Access refused", fmt.Sprintf("User '%s' may not %s to '%s'\n", s.tok.identity.User, verb, destination))
}

// recheckSubscriptions checks every live subscription against the current
// rules after a reload, and ends the session with ERROR "Access refused"
// if one is no longer allowed. Only called from the session loop.
func (s *session) recheckSubscriptions() error {
	c := s.checker()
	if c == nil {
		return nil
	}
	for _, sub := range s.subs {
		if sub.temp {
			continue // a reply queue the session made for itself
		}
		ok, rule := c.Check(auth.VerbSubscribe, sub.dest.Raw)
		if ok {
			continue
		}
		s.obs.AccessDenied(ruleLabel(rule))
		s.log.WithFields(map[string]any{"destination": sub.dest.Raw, "subscription": sub.id, "rule": ruleLabel(rule)}).Info("reloaded acl.rules refuse a live subscription; ending the session")
		return protocolError("Access refused", fmt.Sprintf("User '%s' may no longer subscribe to '%s' (subscription '%s'): the rules were reloaded\n", s.tok.identity.User, sub.dest.Raw, sub.id))
	}
	return nil
}

// rulesChanged tells the session that the rules were reloaded. Safe from
// any goroutine; never blocks (one pending notice is enough).
func (s *session) rulesChanged() {
	select {
	case s.recheck <- struct{}{}:
	default:
	}
}

// checkUserID applies "no forged user-id" to a token session's SEND: the
// header must name the token's user (rabbitmq_stomp leaves the check to the
// broker, which refuses another user with 406 PRECONDITION_FAILED; a
// token session's AMQP login is the service user, so the gateway checks).
// In broker_mode gateway the property is then left out of the publish, as
// the broker would refuse it for the service user. Only called from the
// session loop.
func (s *session) checkUserID(h codec.Headers) (drop bool, err error) {
	if s.tok.token == "" {
		return false, nil // login/passcode: the broker checks, as before
	}
	v, ok := h.Get("user-id")
	if !ok {
		return false, nil
	}
	if v != s.tok.identity.User {
		return false, protocolError("precondition_failed", fmt.Sprintf("user_id property set to '%s' but authenticated user was '%s'\n", v, s.tok.identity.User))
	}
	return s.authz.jwt.BrokerMode != config.BrokerModePassthrough, nil
}
