package auth

import (
	"encoding/json"
	"strconv"
	"time"
)

// Identity is who a session is. A token session gets every field from the
// verified token; a login/passcode session has only User.
type Identity struct {
	// User is the login name: the user claim of the token (sub unless
	// Options.UserClaim says otherwise), or the CONNECT login. Used by rule
	// templates ({user}), logs and the user-id header.
	User string
	// Subject is the sub claim ("" if absent). Renewal requires it unchanged.
	Subject string
	// Issuer is the iss claim ("" if absent).
	Issuer string
	// Expiry is the exp claim; zero for a login/passcode session.
	Expiry time.Time
	// NotBefore is the nbf claim; zero if absent.
	NotBefore time.Time
	// Claims holds the token's top-level claims usable in {claim:NAME}
	// templates: strings as they are, numbers in their JSON text, booleans
	// as "true"/"false". Arrays, objects and null are left out, so a
	// template naming them never matches. Nil for login/passcode sessions.
	Claims map[string]string
}

// ExpiresAt is the instant the session must end (exp plus the leeway the
// token was verified with), or the zero time if the identity has no expiry.
// jwt/v5 accepts a token while now < exp+leeway, so a session arms its timer
// for exactly this instant.
func (id *Identity) ExpiresAt(leeway time.Duration) time.Time {
	if id == nil || id.Expiry.IsZero() {
		return time.Time{}
	}
	return id.Expiry.Add(leeway)
}

// Claim returns the template value of claim name, and whether it is usable.
func (id *Identity) Claim(name string) (string, bool) {
	if id == nil {
		return "", false
	}
	v, ok := id.Claims[name]
	return v, ok
}

// SameSubject reports whether a renewed token (next) belongs to the same
// principal as the session's current one (cur): same sub and same user
// name, both non-empty. A renewal that fails this check gets an ERROR.
func SameSubject(cur, next *Identity) bool {
	if cur == nil || next == nil {
		return false
	}
	return cur.Subject != "" && cur.Subject == next.Subject && cur.User == next.User
}

// claimStrings flattens the claims a template may use; see Identity.Claims.
func claimStrings(claims map[string]any) map[string]string {
	out := make(map[string]string, len(claims))
	for k, v := range claims {
		switch v := v.(type) {
		case string:
			out[k] = v
		case json.Number:
			out[k] = v.String()
		case float64:
			out[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			out[k] = strconv.FormatBool(v)
		}
	}
	return out
}

// usableName reports whether s can be a user name: non-empty, and free of
// control characters, which could break a STOMP 1.0 header (no escaping).
func usableName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
