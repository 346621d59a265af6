//go:build e2e

package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stompgate/stompgate/gateway/config"
)

// A real browser: headless Chromium from Debian's chromium package loads a
// page served by this test that uses @stomp/stompjs from npm, connects to
// the gateway over WebSocket, subscribes, sends, receives and ACKs
// (testdata/browser/index.html). The test reads the outcome from the DOM
// that chromium --dump-dom prints, and checks the broker afterwards.

const (
	browserDir   = "testdata/browser"
	stompjsFile  = "node_modules/@stomp/stompjs/bundles/stomp.umd.min.js"
	browserLimit = 30 * time.Second
)

// dumpDOM loads pageURL in headless Chromium (a fresh profile) and
// returns the DOM it prints once the page has settled, and its stderr;
// it fails t if Chromium fails or takes longer than browserLimit.
func dumpDOM(t *testing.T, chromium, pageURL string) (dom []byte, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-first-run", "--no-default-browser-check",
		"--user-data-dir="+t.TempDir(),
		"--dump-dom", pageURL)
	var errOut strings.Builder
	cmd.Stderr = &errOut
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v (ctx: %v)\nstderr (end):\n%s", err, ctx.Err(), lastLines(errOut.String(), 30))
	}
	return dom, errOut.String()
}

// chromiumPath finds Debian's chromium; the test fails without it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: the browser test needs Debian's chromium package " +
		"(apt-get install -y chromium, or scripts/install-test-deps.sh)")
	return ""
}

// ensureStompJS installs @stomp/stompjs from package-lock.json into
// testdata/browser/node_modules with npm ci when it is missing.
func ensureStompJS(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(browserDir, stompjsFile)); err == nil {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatal("npm is not installed: the browser test installs @stomp/stompjs with npm ci " +
			"(apt-get install -y npm, or scripts/install-test-deps.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--prefix", browserDir, "--no-audit", "--no-fund")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci --prefix %s: %v\n%s", browserDir, err, out)
	}
	if _, err := os.Stat(filepath.Join(browserDir, stompjsFile)); err != nil {
		t.Fatalf("npm ci did not install %s: %v", stompjsFile, err)
	}
}

// browserPage serves testdata/browser, receives the page's outcome on POST
// /result, and holds GET /wait (the page's load event) until then.
type browserPage struct {
	once    sync.Once
	arrived chan struct{}
	mu      sync.Mutex
	result  string
}

// servePage serves testdata/browser and the page's /result and /wait on
// 127.0.0.1:0 until the test ends; the page is another origin than the
// gateway (another port), which the tests allow explicitly.
func servePage(t *testing.T) (*browserPage, *httptest.Server) {
	t.Helper()
	page := &browserPage{arrived: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewUnstartedServer(page.handler())
	_ = web.Listener.Close()
	web.Listener = ln
	web.Start()
	t.Cleanup(web.Close)
	return page, web
}

func (p *browserPage) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir(browserDir)))
	mux.HandleFunc("/result", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		p.mu.Lock()
		p.result = string(body)
		p.mu.Unlock()
		p.once.Do(func() { close(p.arrived) })
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/wait", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-p.arrived:
		case <-time.After(20 * time.Second):
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func TestBrowserStompJSOverWebSocket(t *testing.T) {
	chromium := chromiumPath(t)
	ensureStompJS(t)

	page, web := servePage(t)
	pageHost := web.Listener.Addr().String()

	// The page comes from another origin than the gateway (another port),
	// so it must be allowed explicitly.
	srv := startDeployedGateway(t, func(c *config.Config) {
		c.WebSocket.Listen = "127.0.0.1:0"
		c.WebSocket.AllowedOrigins = []string{pageHost}
	})
	queue := newNames(t).queue("browser")
	pageURL := web.URL + "/index.html?" + url.Values{
		"ws":    {"ws://" + srv.WebSocketAddr().String() + "/ws"},
		"queue": {queue},
	}.Encode()

	dom, stderr := dumpDOM(t, chromium, pageURL)

	page.mu.Lock()
	posted := page.result
	page.mu.Unlock()
	want := "OK version=1.2 protocol=v12.stomp body=hello from chromium " + queue
	if !strings.Contains(string(dom), `<pre id="result">`+want+`</pre>`) {
		t.Errorf("the page's DOM does not show %q:\n%s\nposted result: %q\nchromium stderr (end):\n%s", want, dom, posted, lastLines(stderr, 30))
	}
	if posted != want {
		t.Errorf("the page posted %q, want %q", posted, want)
	}

	// The ACK reached the broker: nothing is left or requeued.
	ch := amqpChannel(t)
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("queue %s: %v", queue, err)
	}
	if q.Messages != 0 {
		t.Errorf("queue %s holds %d messages after the browser's ACK, want 0", queue, q.Messages)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
