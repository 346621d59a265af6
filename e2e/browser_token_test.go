//go:build e2e

package e2e

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stompgate/stompgate/gateway/auth/authtest"
	"github.com/stompgate/stompgate/gateway/config"
)

// TestBrowserStompJSTokenRenewal: headless Chromium runs @stomp/stompjs
// (testdata/browser/token.html), logs in over WebSocket with a token of a
// few seconds in the access_token query parameter, renews it with
// client.publish to /gateway/token and a receipt, and is still connected
// and working after the first token's expiry (issue 13).
func TestBrowserStompJSTokenRenewal(t *testing.T) {
	chromium := chromiumPath(t)
	ensureStompJS(t)

	page, web := servePage(t)

	key := authtest.NewRSAKey(t, "browser-1")
	srv, _ := tokenGateway(t, key, func(c *config.Config) {
		c.WebSocket.Listen = "127.0.0.1:0"
		c.WebSocket.AllowedOrigins = []string{web.Listener.Addr().String()}
	})
	queue := newNames(t).queue("browser-token")
	first := e2eClaims("alice", 4*time.Second)
	exp := first["exp"].(int64)
	pageURL := web.URL + "/token.html?" + url.Values{
		"ws":    {"ws://" + srv.WebSocketAddr().String() + "/ws"},
		"queue": {queue},
		"token": {authtest.Sign(t, key, first)},
		"renew": {authtest.Sign(t, key, e2eClaims("alice", time.Minute))},
		"exp":   {strconv.FormatInt(exp, 10)},
	}.Encode()

	dom, stderr := dumpDOM(t, chromium, pageURL)
	page.mu.Lock()
	posted := page.result
	page.mu.Unlock()
	want := "OK renewed=true body=after renewal " + queue
	if posted != want {
		t.Errorf("the page posted %q, want %q\nDOM:\n%s\nchromium stderr (end):\n%s", posted, want, dom, lastLines(stderr, 30))
	}
	if time.Now().Unix() <= exp {
		t.Errorf("the page finished before the first token expired: the renewal was not needed")
	}
}
