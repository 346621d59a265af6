// Package auth verifies bearer tokens (JWTs) and checks per-destination
// rules; it is the gateway's authority in auth.jwt.broker_mode "gateway".
//
// # Owns
//
//   - Verifier: signature and claim checks of a JWT against a JWKS read from
//     a file (jwks_file, re-read by Reload on SIGHUP) and/or fetched over
//     HTTPS (jwks_url). Signatures, JWK parsing and claim validation come from
//     github.com/golang-jwt/jwt/v5 with github.com/MicahParks/keyfunc/v3 and
//     github.com/MicahParks/jwkset; this package only chooses the options
//     and turns library errors into the sentinels of errors.go.
//   - Identity: who a session is (User, Subject, expiry, string claims). A
//     login/passcode session has an Identity with only User set.
//   - Rules and SessionChecker: the acl.rules list, compiled once per
//     configuration load; a SessionChecker is the per-session cache in front.
//
// # Goroutines
//
// With a JWKS URL, jwkset runs one refresh goroutine per Verifier. It
// refetches the key set every Options.RefreshInterval and exits after Close
// (Close cancels its context; the goroutine returns at its next select, so
// it may outlive Close by a moment). A token whose kid is unknown makes
// Verify refetch in the calling goroutine, at most once per
// Options.RefreshUnknownKIDRateLimit across all callers; a caller that finds
// the limit used up fails at once with ErrUnknownKey, never waits. A file
// JWKS starts no goroutine.
//
// Verifier and Rules are safe for concurrent use. A SessionChecker is not:
// only the session loop calls it.
//
// # Imports
//
// Only the standard library, logrus and the JOSE libraries above. It must
// not import the session core (gateway) nor any other gateway/ package, so
// configuration, the session and tests can all use it.
//
// # Pattern syntax
//
// A rule's destination pattern is matched against the whole STOMP
// destination:
//
//   - Literal characters match themselves; '.' and every other character
//     except '*', '{' and '}' are literal.
//   - '*' matches one or more characters, none of them '/'. "**" is
//     rejected (reserved).
//   - {user} matches exactly the session's user name; {claim:NAME} matches
//     exactly the token's claim NAME (see Identity.Claims). A substituted
//     value is compared as literal text: a '*' in a user name matches only
//     '*'. A value that is empty, absent or contains '/' makes the rule
//     not match at all, so a template can never widen a pattern or reach
//     into another destination kind.
//
// Matching costs O(pattern × destination) at worst, whatever the input:
// the destination is split at '/' like the pattern, and within a component
// the matcher backtracks only to the latest star.
//
// The first rule whose pattern matches the destination decides: the verb
// is allowed if and only if that rule lists it (a rule with an empty allow
// list is a deny rule). A destination no rule
// matches is denied. An empty rule list allows everything (the broker
// decides), which is the behaviour before acl.rules existed.
package auth
