package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/sirupsen/logrus"
	"golang.org/x/time/rate"
)

// Defaults applied by NewVerifier to zero Options fields.
const (
	DefaultUserClaim                  = "sub"
	DefaultRefreshInterval            = 15 * time.Minute
	DefaultRefreshUnknownKIDRateLimit = 10 * time.Second
	DefaultHTTPTimeout                = 10 * time.Second
)

// DefaultAlgorithms is the allow-list used when Options.Algorithms is empty.
var DefaultAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// permittedAlgorithms are the asymmetric JWS algorithms Options.Algorithms
// may name. none and HS* are never permitted: an HMAC "verified" with a
// public key is the classic key-confusion attack.
var permittedAlgorithms = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
}

// Options configures a Verifier. The configuration package maps
// auth.jwt.* onto it; zero fields take the defaults above.
type Options struct {
	// JWKSFile is a JWK Set file, read by NewVerifier and again by Reload.
	JWKSFile string
	// JWKSURL is an https URL of a JWK Set, fetched by NewVerifier, every
	// RefreshInterval, and for an unknown kid. At least one of JWKSFile and
	// JWKSURL is required; with both, the file's keys are tried first.
	JWKSURL string
	// HTTPClient fetches JWKSURL. Nil: a client trusting RootCAs (or the
	// system roots when RootCAs is nil) with HTTPTimeout.
	HTTPClient *http.Client
	// RootCAs verifies the JWKSURL server when HTTPClient is nil.
	RootCAs *x509.CertPool
	// HTTPTimeout bounds one JWKS fetch.
	HTTPTimeout time.Duration
	// RefreshInterval is the period of the background refetch of JWKSURL.
	RefreshInterval time.Duration
	// RefreshUnknownKIDRateLimit is the least time between two refetches
	// caused by tokens with an unknown kid, across all sessions.
	RefreshUnknownKIDRateLimit time.Duration
	// Issuer, when set, must equal the iss claim.
	Issuer string
	// Audience, when set, must be the aud claim or one of its elements.
	Audience string
	// Leeway is the clock skew tolerated on exp and nbf.
	Leeway time.Duration
	// UserClaim names the claim holding the login name (default "sub").
	UserClaim string
	// Algorithms is the allow-list of JWS algorithms (default RS256, ES256,
	// EdDSA). Only asymmetric algorithms are accepted.
	Algorithms []string
}

// Verifier checks bearer tokens. Safe for concurrent use.
type Verifier struct {
	opts   Options
	log    logrus.FieldLogger
	parser *jwt.Parser
	kf     keyfunc.Keyfunc
	// file holds the keys of JWKSFile (nil without one); Reload swaps them.
	file *jwkset.MemoryJWKSet
	// transport is the http.Transport we built (nil with Options.HTTPClient);
	// Close drops its idle connections.
	transport *http.Transport
	ctx       context.Context
	cancel    context.CancelFunc
	once      sync.Once
}

// NewVerifier validates opts, loads the JWKS file and makes the first fetch
// of the JWKS URL. A failed first fetch is logged, not fatal: the identity
// provider may come up after the gateway, and the next unknown kid or the
// periodic refresh fetches again. A bad file is fatal.
func NewVerifier(opts Options, log logrus.FieldLogger) (*Verifier, error) {
	if opts.JWKSFile == "" && opts.JWKSURL == "" {
		return nil, errors.New("auth: jwks_file or jwks_url is required")
	}
	if opts.UserClaim == "" {
		opts.UserClaim = DefaultUserClaim
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = DefaultRefreshInterval
	}
	if opts.RefreshUnknownKIDRateLimit <= 0 {
		opts.RefreshUnknownKIDRateLimit = DefaultRefreshUnknownKIDRateLimit
	}
	if opts.HTTPTimeout <= 0 {
		opts.HTTPTimeout = DefaultHTTPTimeout
	}
	if opts.Leeway < 0 {
		return nil, fmt.Errorf("auth: leeway %v is negative", opts.Leeway)
	}
	if len(opts.Algorithms) == 0 {
		opts.Algorithms = DefaultAlgorithms
	}
	opts.Algorithms = slices.Clone(opts.Algorithms)
	for _, a := range opts.Algorithms {
		if !slices.Contains(permittedAlgorithms, a) {
			return nil, fmt.Errorf("auth: algorithm %q is not allowed (use one of %v)", a, permittedAlgorithms)
		}
	}

	v := &Verifier{opts: opts, log: log}
	v.ctx, v.cancel = context.WithCancel(context.Background())
	var given jwkset.Storage
	if opts.JWKSFile != "" {
		keys, err := readJWKSFile(opts.JWKSFile)
		if err != nil {
			v.cancel()
			return nil, err
		}
		v.file = jwkset.NewMemoryStorage()
		if err := v.file.KeyReplaceAll(v.ctx, keys); err != nil {
			v.cancel()
			return nil, fmt.Errorf("auth: jwks_file %s: %w", opts.JWKSFile, err)
		}
		given = v.file
		log.WithFields(logrus.Fields{"file": opts.JWKSFile, "keys": len(keys)}).Info("auth: JWKS file loaded")
	}
	store := given
	if opts.JWKSURL != "" {
		s, err := v.urlStorage(given)
		if err != nil {
			v.cancel()
			return nil, err
		}
		store = s
	}
	// A JWK marked "use":"enc" never verifies a signature.
	kf, err := keyfunc.New(keyfunc.Options{Ctx: v.ctx, Storage: store, UseWhitelist: []jwkset.USE{jwkset.UseSig, ""}})
	if err != nil {
		v.cancel()
		return nil, fmt.Errorf("auth: %w", err)
	}
	v.kf = kf
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(opts.Algorithms),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(opts.Leeway),
		jwt.WithJSONNumber(),
	}
	if opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(opts.Issuer))
	}
	if opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(opts.Audience))
	}
	v.parser = jwt.NewParser(popts...)
	return v, nil
}

// urlStorage builds the JWKSURL storage: jwkset's HTTP storage (first
// fetch now, refresh goroutine every RefreshInterval) behind a gate that
// refetches for an unknown kid only when our own limiter allows it.
//
// keyfunc's own unknown-kid limiter blocks the caller in rate.Limiter.Wait
// until the next slot (up to RateLimitWaitMax, which also bounds the
// refetch itself), so a burst of forged kids would stall every CONNECT. We
// give jwkset an unlimited limiter and gate it with a non-blocking Allow.
func (v *Verifier) urlStorage(given jwkset.Storage) (jwkset.Storage, error) {
	client := v.opts.HTTPClient
	if client == nil {
		v.transport = &http.Transport{
			Proxy:           http.ProxyFromEnvironment,
			TLSClientConfig: &tls.Config{RootCAs: v.opts.RootCAs, MinVersion: tls.VersionTLS12},
		}
		client = &http.Client{Timeout: v.opts.HTTPTimeout, Transport: v.transport}
	}
	url := v.opts.JWKSURL
	log := v.log.WithField("jwks_url", url)
	remote, err := jwkset.NewStorageFromHTTP(url, jwkset.HTTPClientStorageOptions{
		Client:                    client,
		Ctx:                       v.ctx,
		HTTPTimeout:               v.opts.HTTPTimeout,
		NoErrorReturnFirstHTTPReq: true,
		RefreshErrorHandler: func(_ context.Context, err error) {
			log.WithError(err).Error("auth: JWKS fetch failed")
		},
		RefreshInterval: v.opts.RefreshInterval,
	})
	if err != nil {
		return nil, fmt.Errorf("auth: jwks_url %q: %w", url, err)
	}
	all, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		Given:             given,
		HTTPURLs:          map[string]jwkset.Storage{url: remote},
		RefreshUnknownKID: rate.NewLimiter(rate.Inf, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("auth: jwks_url %q: %w", url, err)
	}
	return &gatedStorage{
		Storage: all,
		given:   given,
		remote:  remote,
		limit:   rate.NewLimiter(rate.Every(v.opts.RefreshUnknownKIDRateLimit), 1),
		log:     log,
	}, nil
}

// gatedStorage is the key storage for a JWKS URL. KeyRead looks in the
// cached keys first and lets the wrapped jwkset client refetch only when
// limit allows; every other method is the wrapped client's.
type gatedStorage struct {
	jwkset.Storage
	given  jwkset.Storage // may be nil
	remote jwkset.Storage
	limit  *rate.Limiter
	log    logrus.FieldLogger
}

// KeyRead may run in any goroutine calling Verify.
func (g *gatedStorage) KeyRead(ctx context.Context, kid string) (jwkset.JWK, error) {
	if g.given != nil {
		if k, err := g.given.KeyRead(ctx, kid); err == nil {
			return k, nil
		}
	}
	k, err := g.remote.KeyRead(ctx, kid)
	if !errors.Is(err, jwkset.ErrKeyNotFound) {
		return k, err
	}
	if !g.limit.Allow() {
		g.log.WithField("kid", kid).Debug("auth: unknown kid; JWKS refetch rate-limited")
		return jwkset.JWK{}, fmt.Errorf("%w: kid %q (refetch rate-limited)", jwkset.ErrKeyNotFound, kid)
	}
	g.log.WithField("kid", kid).Info("auth: unknown kid; refetching JWKS")
	return g.Storage.KeyRead(ctx, kid)
}

// readJWKSFile parses a JWK Set file into public keys. Symmetric (oct) and
// unsupported keys are refused: a JWKS for token verification holds public
// keys only.
func readJWKSFile(path string) ([]jwkset.JWK, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: jwks_file: %w", err)
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("auth: jwks_file %s: %w", path, err)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("auth: jwks_file %s: no keys", path)
	}
	keys := make([]jwkset.JWK, 0, len(set.Keys))
	for i, m := range set.Keys {
		k, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			return nil, fmt.Errorf("auth: jwks_file %s: key %d (kid %q): %w", path, i, m.KID, err)
		}
		switch k.Key().(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			return nil, fmt.Errorf("auth: jwks_file %s: key %d (kid %q): kty %q is not a public signing key", path, i, m.KID, m.KTY)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Reload re-reads JWKSFile (on SIGHUP). On error the old keys stay in use.
// Without a file it does nothing: a URL is refetched on its own schedule.
func (v *Verifier) Reload() error {
	if v.file == nil {
		return nil
	}
	keys, err := readJWKSFile(v.opts.JWKSFile)
	if err != nil {
		v.log.WithError(err).Error("auth: JWKS file reload failed; keeping the previous keys")
		return err
	}
	if err := v.file.KeyReplaceAll(v.ctx, keys); err != nil {
		return fmt.Errorf("auth: jwks_file %s: %w", v.opts.JWKSFile, err)
	}
	v.log.WithFields(logrus.Fields{"file": v.opts.JWKSFile, "keys": len(keys)}).Info("auth: JWKS file reloaded")
	return nil
}

// Close stops the URL refresh goroutine and drops idle JWKS connections.
// Idempotent; Verify fails with ErrClosed afterwards.
func (v *Verifier) Close() error {
	v.once.Do(func() {
		v.cancel()
		if v.transport != nil {
			v.transport.CloseIdleConnections()
		}
	})
	return nil
}

// Leeway is the clock skew the Verifier allows; pass it to
// Identity.ExpiresAt.
func (v *Verifier) Leeway() time.Duration { return v.opts.Leeway }

// Verify checks token (the compact JWS, without "Bearer ") and returns who it
// names. The error wraps one sentinel of errors.go. ctx bounds an
// unknown-kid refetch.
func (v *Verifier) Verify(ctx context.Context, token string) (*Identity, error) {
	if v.ctx.Err() != nil {
		return nil, ErrClosed
	}
	claims := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(token, claims, v.kf.KeyfuncCtx(ctx))
	if err != nil {
		return nil, v.classify(tok, claims, err)
	}
	id := &Identity{Claims: claimStrings(claims)}
	id.Subject, _ = claims["sub"].(string)
	id.Issuer, _ = claims["iss"].(string)
	user, ok := claims[v.opts.UserClaim].(string)
	if !ok || !usableName(user) {
		return nil, fmt.Errorf("%w: claim %q", ErrBadUser, v.opts.UserClaim)
	}
	id.User = user
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		id.Expiry = exp.Time
	}
	if nbf, err := claims.GetNotBefore(); err == nil && nbf != nil {
		id.NotBefore = nbf.Time
	}
	return id, nil
}

// classify maps a jwt/v5 (or keyfunc/jwkset) error to our sentinels, most
// fundamental failure first.
func (v *Verifier) classify(tok *jwt.Token, claims jwt.MapClaims, err error) error {
	wrap := func(sentinel error) error { return fmt.Errorf("%w: %w", sentinel, err) }
	if errors.Is(err, jwt.ErrTokenMalformed) {
		return wrap(ErrMalformed)
	}
	if tok != nil {
		if alg, _ := tok.Header["alg"].(string); !slices.Contains(v.opts.Algorithms, alg) {
			return wrap(ErrBadAlgorithm)
		}
	}
	switch {
	case errors.Is(err, jwkset.ErrKeyNotFound):
		return wrap(ErrUnknownKey)
	case errors.Is(err, keyfunc.ErrKeyfunc):
		// The named JWK's alg differs from the token's, or its use is "enc".
		return wrap(ErrBadAlgorithm)
	case errors.Is(err, jwt.ErrTokenUnverifiable), errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return wrap(ErrBadSignature)
	case errors.Is(err, jwt.ErrInvalidType):
		return wrap(ErrMalformed)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// jwt/v5 says only "missing"; name the claim.
		switch {
		case claims["exp"] == nil:
			return wrap(ErrNoExpiry)
		case v.opts.Issuer != "" && claims["iss"] == nil:
			return wrap(ErrBadIssuer)
		case v.opts.Audience != "" && claims["aud"] == nil:
			return wrap(ErrBadAudience)
		}
	case errors.Is(err, jwt.ErrTokenExpired):
		return wrap(ErrTokenExpired)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return wrap(ErrTokenNotYetValid)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return wrap(ErrBadIssuer)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return wrap(ErrBadAudience)
	}
	return wrap(ErrMalformed)
}

// BearerToken extracts the token from an Authorization header value
// ("Bearer <token>", scheme case-insensitive per RFC 6750 and RFC 9110).
// ok is false for another scheme or an empty token.
func BearerToken(authorization string) (token string, ok bool) {
	const scheme = "bearer "
	if len(authorization) <= len(scheme) || !strings.EqualFold(authorization[:len(scheme)], scheme) {
		return "", false
	}
	token = strings.TrimSpace(authorization[len(scheme):])
	return token, token != ""
}
