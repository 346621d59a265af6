package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stompgate/stompgate/gateway/auth"
	"github.com/stompgate/stompgate/gateway/auth/authtest"
)

func urlVerifier(t *testing.T, opts auth.Options) *auth.Verifier {
	t.Helper()
	opts.Issuer, opts.Audience = testIss, testAud
	v, err := auth.NewVerifier(opts, nullLogger())
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// An unknown kid refetches the JWKS at once, at most once per rate-limit
// interval; callers over the limit fail at once instead of waiting; a key
// rotated in is found by the first refetch the limit allows.
func TestVerifyURLUnknownKIDRotation(t *testing.T) {
	testKeys(t)
	srv := authtest.NewJWKSServer(t, rsaA)
	const limit = 400 * time.Millisecond
	v := urlVerifier(t, auth.Options{
		JWKSURL:                    srv.URL(),
		HTTPClient:                 srv.Client(),
		RefreshUnknownKIDRateLimit: limit,
		RefreshInterval:            time.Hour,
	})
	if got := srv.Fetches(); got != 1 {
		t.Fatalf("fetches after NewVerifier = %d; want 1", got)
	}
	if _, err := v.Verify(context.Background(), authtest.Sign(t, rsaA, claims(time.Minute))); err != nil {
		t.Fatalf("known key: %v", err)
	}
	tokB := authtest.Sign(t, rsaB, claims(time.Minute))

	wantErr(t, v, tokB, auth.ErrUnknownKey)
	if got := srv.Fetches(); got != 2 {
		t.Fatalf("fetches after the first unknown kid = %d; want 2 (one refetch)", got)
	}
	start := time.Now()
	for i := 0; i < 5; i++ {
		wantErr(t, v, tokB, auth.ErrUnknownKey)
	}
	if d := time.Since(start); d > limit/2 {
		t.Errorf("rate-limited unknown kids took %v; want an immediate failure", d)
	}
	if got := srv.Fetches(); got != 2 {
		t.Fatalf("fetches after rate-limited unknown kids = %d; want still 2", got)
	}

	srv.SetKeys(t, rsaA, rsaB) // rotation
	wantErr(t, v, tokB, auth.ErrUnknownKey)
	if got := srv.Fetches(); got != 2 {
		t.Fatalf("fetches inside the limit = %d; want 2", got)
	}
	time.Sleep(limit + 50*time.Millisecond)
	if _, err := v.Verify(context.Background(), tokB); err != nil {
		t.Fatalf("rotated key after the limit: %v", err)
	}
	if got := srv.Fetches(); got != 3 {
		t.Fatalf("fetches = %d; want 3", got)
	}
	if _, err := v.Verify(context.Background(), tokB); err != nil {
		t.Fatalf("rotated key, cached: %v", err)
	}
	if got := srv.Fetches(); got != 3 {
		t.Fatalf("fetches for a cached key = %d; want 3", got)
	}
}

// The background refresh follows the server's key set: a key removed there
// stops verifying without any unknown kid.
func TestVerifyURLRefreshInterval(t *testing.T) {
	testKeys(t)
	srv := authtest.NewJWKSServer(t, rsaA, ecA)
	v := urlVerifier(t, auth.Options{
		JWKSURL:                    srv.URL(),
		RootCAs:                    srv.RootCAs(), // the Verifier's own client
		RefreshInterval:            100 * time.Millisecond,
		RefreshUnknownKIDRateLimit: time.Hour,
	})
	tokEC := authtest.Sign(t, ecA, claims(time.Minute))
	if _, err := v.Verify(context.Background(), tokEC); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// Use up the unknown-kid refetch so that only the refresh can help.
	wantErr(t, v, authtest.Sign(t, rsaB, claims(time.Minute)), auth.ErrUnknownKey)
	srv.SetKeys(t, rsaA)
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, err := v.Verify(context.Background(), tokEC)
		if errors.Is(err, auth.ErrUnknownKey) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("removed key still verifies after 3 s (last %v, fetches %d)", err, srv.Fetches())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := srv.Fetches(); n < 3 {
		t.Errorf("fetches = %d; want the initial one, the unknown kid's and at least one refresh", n)
	}
	_ = v.Close()
	n := srv.Fetches()
	time.Sleep(300 * time.Millisecond)
	if got := srv.Fetches(); got != n {
		t.Errorf("fetches went on after Close: %d → %d", n, got)
	}
}

// Without the server's CA the fetch fails; the Verifier still starts (the
// identity provider may come later) and rejects tokens as unknown keys.
func TestVerifyURLUntrusted(t *testing.T) {
	testKeys(t)
	srv := authtest.NewJWKSServer(t, rsaA)
	v := urlVerifier(t, auth.Options{JWKSURL: srv.URL(), RefreshUnknownKIDRateLimit: time.Millisecond})
	wantErr(t, v, authtest.Sign(t, rsaA, claims(time.Minute)), auth.ErrUnknownKey)
	if got := srv.Fetches(); got != 0 {
		t.Errorf("served %d fetches to a client that should refuse the certificate", got)
	}
}

// File and URL together: keys from either verify.
func TestVerifyFileAndURL(t *testing.T) {
	testKeys(t)
	srv := authtest.NewJWKSServer(t, ecA)
	path := t.TempDir() + "/jwks.json"
	authtest.WriteJWKSFile(t, path, rsaA)
	v := urlVerifier(t, auth.Options{JWKSFile: path, JWKSURL: srv.URL(), HTTPClient: srv.Client()})
	for _, k := range []*authtest.Key{rsaA, ecA} {
		if _, err := v.Verify(context.Background(), authtest.Sign(t, k, claims(time.Minute))); err != nil {
			t.Errorf("%s: %v", k.KID, err)
		}
	}
	wantErr(t, v, authtest.Sign(t, edA, claims(time.Minute)), auth.ErrUnknownKey)
}

// Many sessions presenting unknown kids at once cause one refetch, not one
// each: the limiter is shared and never waits.
func TestVerifyURLUnknownKIDBurst(t *testing.T) {
	testKeys(t)
	srv := authtest.NewJWKSServer(t, rsaA)
	v := urlVerifier(t, auth.Options{JWKSURL: srv.URL(), HTTPClient: srv.Client(), RefreshUnknownKIDRateLimit: time.Hour})
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := authtest.SignAs(t, rsaB, "RS256", "forged-"+strconv.Itoa(i), claims(time.Minute))
			if _, err := v.Verify(context.Background(), tok); !errors.Is(err, auth.ErrUnknownKey) {
				t.Errorf("Verify = %v; want ErrUnknownKey", err)
			}
		}()
	}
	wg.Wait()
	if got := srv.Fetches(); got != 2 {
		t.Errorf("fetches = %d; want 2 (the first and one refetch for 20 unknown kids)", got)
	}
}

// A JWKS server that does not answer holds an unknown-kid Verify only as
// long as the caller's context allows.
func TestVerifyURLHangingServerHonoursContext(t *testing.T) {
	testKeys(t)
	release := make(chan struct{})
	hang := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	start := time.Now()
	v := urlVerifier(t, auth.Options{JWKSURL: hang.URL, HTTPClient: hang.Client(), HTTPTimeout: 300 * time.Millisecond})
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("NewVerifier took %v; the first fetch should give up after HTTPTimeout", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err := v.Verify(ctx, authtest.Sign(t, rsaA, claims(time.Minute)))
	if !errors.Is(err, auth.ErrUnknownKey) {
		t.Errorf("Verify = %v; want ErrUnknownKey", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Verify took %v with a 100 ms context", d)
	}
}
