// Package authtest makes keys, JWK Sets and tokens for tests of
// gateway/auth and of the gateway's token logins: RSA, ECDSA and Ed25519
// keys with a kid, signed tokens, the classic forged tokens (alg none, HS256
// keyed with the public key), JWKS files, and a loopback HTTPS JWKS server
// whose key set can be rotated and which counts fetches.
//
// Tokens are signed with github.com/golang-jwt/jwt/v5 and JWKs built with
// github.com/MicahParks/jwkset, the libraries gateway/auth verifies with.
// Every helper fails the test on error. It must not import the session core.
package authtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Key is a signing key pair with its kid and JWS algorithm.
type Key struct {
	// KID is the key ID, put in the JWK and in tokens' headers.
	KID string
	// Alg is the JWS algorithm: RS256, ES256 or EdDSA.
	Alg string
	// Private signs tokens.
	Private crypto.Signer
}

// NewRSAKey makes a 2048-bit RSA key for RS256.
func NewRSAKey(t testing.TB, kid string) *Key {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("authtest: rsa key: %v", err)
	}
	return &Key{KID: kid, Alg: "RS256", Private: k}
}

// NewECDSAKey makes a P-256 key for ES256.
func NewECDSAKey(t testing.TB, kid string) *Key {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("authtest: ecdsa key: %v", err)
	}
	return &Key{KID: kid, Alg: "ES256", Private: k}
}

// NewEd25519Key makes an Ed25519 key for EdDSA.
func NewEd25519Key(t testing.TB, kid string) *Key {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("authtest: ed25519 key: %v", err)
	}
	return &Key{KID: kid, Alg: "EdDSA", Private: k}
}

// Public is the key's public half.
func (k *Key) Public() crypto.PublicKey { return k.Private.Public() }

// PublicPEM is the public key as a PEM "PUBLIC KEY" (PKIX) block: what a
// key-confusion attacker uses as an HMAC secret.
func (k *Key) PublicPEM(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatalf("authtest: marshal public key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// JWKS is the public JWK Set JSON of keys, each with kid, alg and use "sig".
func JWKS(t testing.TB, keys ...*Key) []byte {
	t.Helper()
	set := jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{}}
	for _, k := range keys {
		j, err := jwkset.NewJWKFromKey(k.Public(), jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: k.KID, ALG: jwkset.ALG(k.Alg), USE: jwkset.UseSig},
		})
		if err != nil {
			t.Fatalf("authtest: jwk %s: %v", k.KID, err)
		}
		set.Keys = append(set.Keys, j.Marshal())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatalf("authtest: jwks: %v", err)
	}
	return b
}

// WriteJWKSFile writes the JWK Set of keys to path (replacing it).
func WriteJWKSFile(t testing.TB, path string, keys ...*Key) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, JWKS(t, keys...), 0o600); err != nil {
		t.Fatalf("authtest: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("authtest: %v", err)
	}
}

// Claims returns the usual claims of a valid token: sub, iss, aud, iat,
// and exp = now + ttl. Add or delete entries to shape a test case.
func Claims(sub, iss, aud string, ttl time.Duration) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"sub": sub,
		"iss": iss,
		"aud": aud,
		"iat": now.Unix(),
		"exp": now.Add(ttl).Unix(),
	}
}

func method(t testing.TB, alg string) jwt.SigningMethod {
	t.Helper()
	m := jwt.GetSigningMethod(alg)
	if m == nil {
		t.Fatalf("authtest: unknown alg %q", alg)
	}
	return m
}

// Sign makes a compact JWS of claims signed by k, with kid in its header.
func Sign(t testing.TB, k *Key, claims jwt.MapClaims) string {
	t.Helper()
	return SignAs(t, k, k.Alg, k.KID, claims)
}

// SignAs signs with k but lets the test choose the header's alg (it must
// suit k's type, e.g. RS384 for an RSA key) and kid ("" leaves kid out).
func SignAs(t testing.TB, k *Key, alg, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method(t, alg), claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(k.Private)
	if err != nil {
		t.Fatalf("authtest: sign: %v", err)
	}
	return s
}

// NoneToken is an unsigned token (alg "none", empty signature) with kid.
func NoneToken(t testing.TB, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodNone, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatalf("authtest: none token: %v", err)
	}
	return s
}

// HS256WithPublicKey is the key-confusion forgery: an HS256 token whose HMAC
// secret is k's public key in PEM, with k's kid. A verifier that lets the
// token pick the algorithm would accept it.
func HS256WithPublicKey(t testing.TB, k *Key, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = k.KID
	s, err := tok.SignedString(k.PublicPEM(t))
	if err != nil {
		t.Fatalf("authtest: hs256 token: %v", err)
	}
	return s
}

// JWKSServer serves a JWK Set over HTTPS on a loopback port
// (httptest.NewTLSServer). It is closed by t.Cleanup.
type JWKSServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	body    []byte
	fetches atomic.Int64
}

// NewJWKSServer starts a server serving the JWK Set of keys at URL().
func NewJWKSServer(t testing.TB, keys ...*Key) *JWKSServer {
	t.Helper()
	s := &JWKSServer{body: JWKS(t, keys...)}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwks.json" {
			http.NotFound(w, r)
			return
		}
		s.fetches.Add(1)
		s.mu.Lock()
		body := s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the https URL of the JWK Set.
func (s *JWKSServer) URL() string { return s.srv.URL + "/jwks.json" }

// Client is an HTTP client that trusts the server's certificate.
func (s *JWKSServer) Client() *http.Client { return s.srv.Client() }

// RootCAs is a pool holding the server's certificate.
func (s *JWKSServer) RootCAs() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.srv.Certificate())
	return p
}

// CertPEM is the server's certificate in PEM, for a CA file in a gateway
// configuration.
func (s *JWKSServer) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// SetKeys replaces the served key set (key rotation).
func (s *JWKSServer) SetKeys(t testing.TB, keys ...*Key) {
	t.Helper()
	body := JWKS(t, keys...)
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

// Fetches is how many times the JWK Set has been served.
func (s *JWKSServer) Fetches() int64 { return s.fetches.Load() }
