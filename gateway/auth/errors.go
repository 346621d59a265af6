package auth

import "errors"

// Token verification failures. Verify wraps exactly one of these (plus the
// library's own error for detail), so callers pick the ERROR text with
// errors.Is and never by matching strings.
var (
	// ErrMalformed: the token is not a well-formed compact JWS, or a claim
	// has the wrong JSON type (for example a string exp).
	ErrMalformed = errors.New("auth: malformed token")
	// ErrBadAlgorithm: the header's alg is not in Options.Algorithms (none
	// and HMAC never are), or does not match the alg of the JWK it names, or
	// that JWK is an encryption key ("use":"enc").
	ErrBadAlgorithm = errors.New("auth: algorithm not allowed")
	// ErrUnknownKey: no key in the JWKS has the token's kid, even after the
	// rate-limited refetch of jwks_url.
	ErrUnknownKey = errors.New("auth: unknown signing key")
	// ErrBadSignature: the signature does not verify with the key.
	ErrBadSignature = errors.New("auth: bad signature")
	// ErrTokenExpired: exp plus the leeway has passed.
	ErrTokenExpired = errors.New("auth: token expired")
	// ErrNoExpiry: the token has no exp claim; stompgate requires one, as
	// RabbitMQ's OAuth2 backend does.
	ErrNoExpiry = errors.New("auth: token has no expiry")
	// ErrTokenNotYetValid: nbf minus the leeway is still in the future.
	ErrTokenNotYetValid = errors.New("auth: token not yet valid")
	// ErrBadIssuer: iss differs from Options.Issuer.
	ErrBadIssuer = errors.New("auth: wrong issuer")
	// ErrBadAudience: Options.Audience is not the aud claim (a string) nor
	// one of its elements (an array).
	ErrBadAudience = errors.New("auth: wrong audience")
	// ErrBadUser: the user claim (sub, or Options.UserClaim) is missing,
	// empty, not a string, or holds control characters.
	ErrBadUser = errors.New("auth: no usable user claim")
	// ErrClosed: Verify was called after Close.
	ErrClosed = errors.New("auth: verifier closed")
)
