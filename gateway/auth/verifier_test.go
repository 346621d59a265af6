package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/stompgate/stompgate/gateway/auth"
	"github.com/stompgate/stompgate/gateway/auth/authtest"
)

const (
	testIss = "https://id.example.test/"
	testAud = "stompgate"
)

// keys are made once: RSA generation is slow under -race.
var (
	keysOnce                   sync.Once
	rsaA, rsaB, ecA, edA, rsaC *authtest.Key
)

func testKeys(t testing.TB) {
	keysOnce.Do(func() {
		rsaA = authtest.NewRSAKey(t, "rsa-a")
		rsaB = authtest.NewRSAKey(t, "rsa-b")
		rsaC = authtest.NewRSAKey(t, "rsa-c")
		ecA = authtest.NewECDSAKey(t, "ec-a")
		edA = authtest.NewEd25519Key(t, "ed-a")
	})
}

func nullLogger() logrus.FieldLogger {
	l, _ := test.NewNullLogger()
	return l
}

// fileVerifier returns a verifier over a JWKS file holding keys, and the
// file's path.
func fileVerifier(t *testing.T, opts auth.Options, keys ...*authtest.Key) (*auth.Verifier, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	authtest.WriteJWKSFile(t, path, keys...)
	opts.JWKSFile = path
	if opts.Issuer == "" {
		opts.Issuer = testIss
	}
	if opts.Audience == "" {
		opts.Audience = testAud
	}
	v, err := auth.NewVerifier(opts, nullLogger())
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v, path
}

func claims(ttl time.Duration) jwt.MapClaims {
	return authtest.Claims("alice", testIss, testAud, ttl)
}

func wantErr(t *testing.T, v *auth.Verifier, token string, want error) {
	t.Helper()
	id, err := v.Verify(context.Background(), token)
	if !errors.Is(err, want) {
		t.Fatalf("Verify = %+v, %v; want %v", id, err, want)
	}
	if id != nil {
		t.Fatalf("Verify returned an identity with error %v", err)
	}
}

func TestVerifyValid(t *testing.T) {
	testKeys(t)
	v, _ := fileVerifier(t, auth.Options{}, rsaA, ecA, edA)
	for _, k := range []*authtest.Key{rsaA, ecA, edA} {
		t.Run(k.Alg, func(t *testing.T) {
			c := claims(time.Minute)
			c["tenant"] = "acme"
			c["level"] = 3
			c["admin"] = false
			c["groups"] = []string{"a", "b"}
			c["nbf"] = time.Now().Add(-time.Second).Unix()
			id, err := v.Verify(context.Background(), authtest.Sign(t, k, c))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.User != "alice" || id.Subject != "alice" || id.Issuer != testIss {
				t.Errorf("identity = %+v; want user and subject alice, issuer %s", id, testIss)
			}
			if want := time.Unix(c["exp"].(int64), 0); !id.Expiry.Equal(want) {
				t.Errorf("Expiry = %v; want %v", id.Expiry, want)
			}
			if id.NotBefore.IsZero() {
				t.Errorf("NotBefore is zero; want the nbf claim")
			}
			for name, want := range map[string]string{"tenant": "acme", "level": "3", "admin": "false", "sub": "alice"} {
				if got, ok := id.Claim(name); !ok || got != want {
					t.Errorf("Claim(%q) = %q, %v; want %q", name, got, ok, want)
				}
			}
			if got, ok := id.Claim("groups"); ok {
				t.Errorf("Claim(groups) = %q; want absent (arrays are not template values)", got)
			}
			if got, want := id.ExpiresAt(2*time.Second), id.Expiry.Add(2*time.Second); !got.Equal(want) {
				t.Errorf("ExpiresAt = %v; want %v", got, want)
			}
		})
	}
}

func TestVerifyTimeClaims(t *testing.T) {
	testKeys(t)
	strict, _ := fileVerifier(t, auth.Options{}, rsaA)
	lenient, _ := fileVerifier(t, auth.Options{Leeway: 10 * time.Second}, rsaA)
	if lenient.Leeway() != 10*time.Second {
		t.Fatalf("Leeway() = %v", lenient.Leeway())
	}

	expired := claims(-3 * time.Second)
	wantErr(t, strict, authtest.Sign(t, rsaA, expired), auth.ErrTokenExpired)
	if _, err := lenient.Verify(context.Background(), authtest.Sign(t, rsaA, expired)); err != nil {
		t.Errorf("expired 3 s ago with 10 s leeway: %v; want valid", err)
	}
	wantErr(t, lenient, authtest.Sign(t, rsaA, claims(-30*time.Second)), auth.ErrTokenExpired)

	early := claims(time.Minute)
	early["nbf"] = time.Now().Add(3 * time.Second).Unix()
	wantErr(t, strict, authtest.Sign(t, rsaA, early), auth.ErrTokenNotYetValid)
	if _, err := lenient.Verify(context.Background(), authtest.Sign(t, rsaA, early)); err != nil {
		t.Errorf("nbf in 3 s with 10 s leeway: %v; want valid", err)
	}
	early["nbf"] = time.Now().Add(30 * time.Second).Unix()
	wantErr(t, lenient, authtest.Sign(t, rsaA, early), auth.ErrTokenNotYetValid)

	noExp := claims(time.Minute)
	delete(noExp, "exp")
	wantErr(t, strict, authtest.Sign(t, rsaA, noExp), auth.ErrNoExpiry)

	badExp := claims(time.Minute)
	badExp["exp"] = "tomorrow"
	wantErr(t, strict, authtest.Sign(t, rsaA, badExp), auth.ErrMalformed)
}

func TestVerifyIssuerAudience(t *testing.T) {
	testKeys(t)
	v, _ := fileVerifier(t, auth.Options{}, rsaA)
	c := claims(time.Minute)
	c["iss"] = "https://evil.example.test/"
	wantErr(t, v, authtest.Sign(t, rsaA, c), auth.ErrBadIssuer)
	delete(c, "iss")
	wantErr(t, v, authtest.Sign(t, rsaA, c), auth.ErrBadIssuer)

	c = claims(time.Minute)
	c["aud"] = "other"
	wantErr(t, v, authtest.Sign(t, rsaA, c), auth.ErrBadAudience)
	c["aud"] = []string{"other", "another"}
	wantErr(t, v, authtest.Sign(t, rsaA, c), auth.ErrBadAudience)
	delete(c, "aud")
	wantErr(t, v, authtest.Sign(t, rsaA, c), auth.ErrBadAudience)
	c["aud"] = []string{"other", testAud}
	if _, err := v.Verify(context.Background(), authtest.Sign(t, rsaA, c)); err != nil {
		t.Errorf("aud array holding %q: %v; want valid", testAud, err)
	}
}

func TestVerifyForgeries(t *testing.T) {
	testKeys(t)
	v, _ := fileVerifier(t, auth.Options{}, rsaA, ecA)
	c := claims(time.Minute)

	wantErr(t, v, authtest.NoneToken(t, rsaA.KID, c), auth.ErrBadAlgorithm)
	wantErr(t, v, authtest.NoneToken(t, "", c), auth.ErrBadAlgorithm)
	wantErr(t, v, authtest.HS256WithPublicKey(t, rsaA, c), auth.ErrBadAlgorithm)
	wantErr(t, v, authtest.HS256WithPublicKey(t, ecA, c), auth.ErrBadAlgorithm)

	// Signed by a key not in the set, under a kid that is.
	wantErr(t, v, authtest.SignAs(t, rsaC, "RS256", rsaA.KID, c), auth.ErrBadSignature)
	// Signed by a key not in the set, no kid: every key is tried.
	wantErr(t, v, authtest.SignAs(t, rsaC, "RS256", "", c), auth.ErrBadSignature)
	// No kid, right key: accepted.
	if _, err := v.Verify(context.Background(), authtest.SignAs(t, rsaA, "RS256", "", c)); err != nil {
		t.Errorf("token without kid from a known key: %v; want valid", err)
	}

	// Payload changed after signing.
	good := authtest.Sign(t, rsaA, c)
	parts := strings.Split(good, ".")
	other := strings.Split(authtest.Sign(t, rsaA, authtest.Claims("mallory", testIss, testAud, time.Minute)), ".")
	wantErr(t, v, parts[0]+"."+other[1]+"."+parts[2], auth.ErrBadSignature)

	for _, bad := range []string{"", "abc", "a.b", "a.b.c", parts[0] + ".!!." + parts[2]} {
		wantErr(t, v, bad, auth.ErrMalformed)
	}
}

func TestVerifyAlgorithmAllowList(t *testing.T) {
	testKeys(t)
	onlyES, _ := fileVerifier(t, auth.Options{Algorithms: []string{"ES256"}}, rsaA, ecA)
	c := claims(time.Minute)
	wantErr(t, onlyES, authtest.Sign(t, rsaA, c), auth.ErrBadAlgorithm)
	if _, err := onlyES.Verify(context.Background(), authtest.Sign(t, ecA, c)); err != nil {
		t.Errorf("ES256 with ES256 allowed: %v", err)
	}

	// RS384 is allowed, but the JWK says RS256.
	wide, _ := fileVerifier(t, auth.Options{Algorithms: []string{"RS256", "RS384"}}, rsaA)
	wantErr(t, wide, authtest.SignAs(t, rsaA, "RS384", rsaA.KID, c), auth.ErrBadAlgorithm)

	for _, algs := range [][]string{{"none"}, {"HS256"}, {"RS256", "HS512"}, {"XX1"}} {
		_, err := auth.NewVerifier(auth.Options{JWKSFile: "/nonexistent", Algorithms: algs}, nullLogger())
		if err == nil || !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("NewVerifier(Algorithms: %v) = %v; want an algorithm error", algs, err)
		}
	}
}

func TestVerifyUserClaim(t *testing.T) {
	testKeys(t)
	v, _ := fileVerifier(t, auth.Options{}, rsaA)
	c := claims(time.Minute)
	delete(c, "sub")
	wantErr(t, v, authtest.Sign(t, rsaA, c), auth.ErrBadUser)
	c["sub"] = ""
	wantErr(t, v, authtest.Sign(t, rsaA, c), auth.ErrBadUser)
	c["sub"] = 42
	wantErr(t, v, authtest.Sign(t, rsaA, c), auth.ErrBadUser)
	c["sub"] = "ali\nce"
	wantErr(t, v, authtest.Sign(t, rsaA, c), auth.ErrBadUser)

	named, _ := fileVerifier(t, auth.Options{UserClaim: "preferred_username"}, rsaA)
	c = claims(time.Minute)
	c["sub"] = "3f9c-uuid"
	c["preferred_username"] = "bob"
	id, err := named.Verify(context.Background(), authtest.Sign(t, rsaA, c))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if id.User != "bob" || id.Subject != "3f9c-uuid" {
		t.Errorf("User, Subject = %q, %q; want bob, 3f9c-uuid", id.User, id.Subject)
	}
	delete(c, "preferred_username")
	wantErr(t, named, authtest.Sign(t, rsaA, c), auth.ErrBadUser)
}

func TestVerifyFileReload(t *testing.T) {
	testKeys(t)
	v, path := fileVerifier(t, auth.Options{}, rsaA)
	tokB := authtest.Sign(t, rsaB, claims(time.Minute))
	wantErr(t, v, tokB, auth.ErrUnknownKey)

	authtest.WriteJWKSFile(t, path, rsaA, rsaB)
	wantErr(t, v, tokB, auth.ErrUnknownKey) // not before Reload
	if err := v.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if _, err := v.Verify(context.Background(), tokB); err != nil {
		t.Fatalf("after Reload: %v", err)
	}

	// A broken file keeps the old keys.
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := v.Reload(); err == nil {
		t.Fatalf("Reload of a broken file succeeded")
	}
	if _, err := v.Verify(context.Background(), tokB); err != nil {
		t.Fatalf("after a failed Reload: %v; want the previous keys", err)
	}

	// Rotation that drops key A.
	authtest.WriteJWKSFile(t, path, rsaB)
	if err := v.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	wantErr(t, v, authtest.Sign(t, rsaA, claims(time.Minute)), auth.ErrUnknownKey)
}

func TestNewVerifierOptions(t *testing.T) {
	testKeys(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, opts := range map[string]auth.Options{
		"no source":       {},
		"missing file":    {JWKSFile: filepath.Join(dir, "nope.json")},
		"not json":        {JWKSFile: write("bad.json", "nope")},
		"empty set":       {JWKSFile: write("empty.json", `{"keys":[]}`)},
		"symmetric key":   {JWKSFile: write("oct.json", `{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`)},
		"negative leeway": {JWKSFile: write("ok.json", string(authtest.JWKS(t, rsaA))), Leeway: -time.Second},
	} {
		if v, err := auth.NewVerifier(opts, nullLogger()); err == nil {
			_ = v.Close()
			t.Errorf("%s: NewVerifier succeeded; want an error", name)
		}
	}
}

func TestVerifyClosed(t *testing.T) {
	testKeys(t)
	v, _ := fileVerifier(t, auth.Options{}, rsaA)
	_ = v.Close()
	_ = v.Close()
	wantErr(t, v, authtest.Sign(t, rsaA, claims(time.Minute)), auth.ErrClosed)
}

func TestSameSubject(t *testing.T) {
	a := &auth.Identity{User: "alice", Subject: "alice"}
	for _, c := range []struct {
		cur, next *auth.Identity
		want      bool
	}{
		{a, &auth.Identity{User: "alice", Subject: "alice"}, true},
		{a, &auth.Identity{User: "alice", Subject: "bob"}, false},
		{a, &auth.Identity{User: "bob", Subject: "alice"}, false},
		{&auth.Identity{User: "alice"}, &auth.Identity{User: "alice"}, false},
		{a, nil, false},
		{nil, a, false},
	} {
		if got := auth.SameSubject(c.cur, c.next); got != c.want {
			t.Errorf("SameSubject(%+v, %+v) = %v; want %v", c.cur, c.next, got, c.want)
		}
	}
	if got := (&auth.Identity{User: "bob"}).ExpiresAt(time.Second); !got.IsZero() {
		t.Errorf("ExpiresAt without expiry = %v; want zero", got)
	}
}

func TestVerifyConcurrent(t *testing.T) {
	testKeys(t)
	v, _ := fileVerifier(t, auth.Options{}, rsaA, edA)
	good := authtest.Sign(t, edA, claims(time.Minute))
	bad := authtest.Sign(t, rsaA, claims(-time.Minute))
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				if _, err := v.Verify(context.Background(), good); err != nil {
					t.Errorf("good token: %v", err)
					return
				}
				if _, err := v.Verify(context.Background(), bad); !errors.Is(err, auth.ErrTokenExpired) {
					t.Errorf("expired token: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkVerify(b *testing.B) {
	testKeys(b)
	path := filepath.Join(b.TempDir(), "jwks.json")
	authtest.WriteJWKSFile(b, path, rsaA, ecA, edA)
	v, err := auth.NewVerifier(auth.Options{JWKSFile: path, Issuer: testIss, Audience: testAud}, nullLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	for _, k := range []*authtest.Key{rsaA, ecA, edA} {
		tok := authtest.Sign(b, k, claims(time.Hour))
		b.Run(k.Alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(context.Background(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestVerifyEncryptionKeyRefused(t *testing.T) {
	testKeys(t)
	var set map[string][]map[string]any
	if err := json.Unmarshal(authtest.JWKS(t, rsaA), &set); err != nil {
		t.Fatal(err)
	}
	set["keys"][0]["use"] = "enc"
	raw, _ := json.Marshal(set)
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Options{JWKSFile: path}, nullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	wantErr(t, v, authtest.Sign(t, rsaA, claims(time.Minute)), auth.ErrBadAlgorithm)
}

func TestBearerToken(t *testing.T) {
	for in, want := range map[string]string{
		"Bearer abc.def.ghi":   "abc.def.ghi",
		"bearer abc":           "abc",
		"BEARER   abc  ":       "abc",
		"Bearer ":              "",
		"Bearer":               "",
		"Basic dXNlcjpwYXNz":   "",
		"abc.def.ghi":          "",
		"":                     "",
		"Bearerabc.def.ghi...": "",
	} {
		got, ok := auth.BearerToken(in)
		if got != want || ok != (want != "") {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", in, got, ok, want, want != "")
		}
	}
}
