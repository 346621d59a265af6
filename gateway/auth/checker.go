package auth

import "strings"

// sessionCacheSize bounds a SessionChecker's cache; when full, the cache is
// emptied and refilled, which keeps the cost of a hostile client that sends
// to ever-new destinations at one rule scan per frame.
const sessionCacheSize = 64

// SessionChecker is a session's view of the rules: Rules.Check for one
// identity, with a small cache so repeated SENDs to one destination cost a
// map lookup. Not safe for concurrent use: only the session loop calls it.
// Build a new one when the rules are reloaded or the token is renewed.
type SessionChecker struct {
	rules *Rules
	id    *Identity
	cache map[checkKey]checkResult
}

type checkKey struct {
	verb Verb
	dest string
}

type checkResult struct {
	allowed bool
	rule    int
}

// NewSessionChecker returns a checker of rules for id (nil rules allow
// everything). id must not change while the checker is in use.
func NewSessionChecker(rules *Rules, id *Identity) *SessionChecker {
	return &SessionChecker{rules: rules, id: id}
}

// Check is Rules.Check for the session's identity. Only called from the
// session loop.
func (c *SessionChecker) Check(verb Verb, destination string) (allowed bool, ruleIndex int) {
	if c.rules.Len() == 0 {
		return true, -1
	}
	if r, ok := c.cache[checkKey{verb, destination}]; ok {
		return r.allowed, r.rule
	}
	allowed, ruleIndex = c.rules.Check(verb, destination, c.id)
	if c.cache == nil || len(c.cache) >= sessionCacheSize {
		c.cache = make(map[checkKey]checkResult, sessionCacheSize)
	}
	// Clone: destination may point into a frame buffer the cache must not
	// keep alive.
	c.cache[checkKey{verb, strings.Clone(destination)}] = checkResult{allowed, ruleIndex}
	return allowed, ruleIndex
}

// Rules returns the rules the checker applies.
func (c *SessionChecker) Rules() *Rules { return c.rules }

// Identity returns the identity the checker applies them to.
func (c *SessionChecker) Identity() *Identity { return c.id }
