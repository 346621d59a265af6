//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/sirupsen/logrus"

	"github.com/stompgate/stompgate/gateway"
	"github.com/stompgate/stompgate/gateway/config"
)

// A second, real AMQP 0-9-1 broker for the e2e suite (issue 7, semantics
// 17 "Minimal brokers"): Debian's garagemq, started by the test on
// loopback ports of its own with a temporary data directory, and stopped
// at cleanup. It never touches RabbitMQ's 5672.

// garageMQGuestMD5 is md5("guest"): garagemq's config stores md5 passwords.
const garageMQGuestMD5 = "084e0343a0486ff05530df6c705c8bb4"

// garageMQStartTimeout bounds how long garagemq may take to accept AMQP.
const garageMQStartTimeout = 20 * time.Second

// garageMQ is a running garagemq process.
type garageMQ struct {
	URL     string // amqp://guest:guest@127.0.0.1:<port>/
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	waitErr error         // set before exited is closed
}

// startGarageMQ starts garagemq for t and stops it at cleanup. A missing
// binary or a broker that does not come up FAILS the test (issue 7: the
// suite must pass against garagemq, so its absence is not a skip).
func startGarageMQ(t testing.TB) *garageMQ {
	t.Helper()
	bin, err := exec.LookPath("garagemq")
	if err != nil {
		t.Fatalf("garagemq is not installed (%v): install Debian's package with "+
			"`apt-get install -y garagemq` or run scripts/install-test-deps.sh", err)
	}
	var lastErr error
	// A port picked by listening on :0 can be taken by someone else
	// before garagemq binds it: retry with fresh ports.
	for attempt := 1; attempt <= 3; attempt++ {
		g, err := launchGarageMQ(t, bin)
		if err == nil {
			return g
		}
		lastErr = err
		t.Logf("garagemq start attempt %d failed: %v", attempt, err)
	}
	t.Fatalf("garagemq did not start: %v", lastErr)
	return nil
}

func launchGarageMQ(t testing.TB, bin string) (*garageMQ, error) {
	t.Helper()
	dir, err := os.MkdirTemp("", "stompgate-garagemq-")
	if err != nil {
		return nil, err
	}
	removeDir := func() { _ = os.RemoveAll(dir) }
	amqpPort, err := freeLoopbackPort()
	if err != nil {
		removeDir()
		return nil, err
	}
	adminPort, err := freeLoopbackPort()
	if err != nil {
		removeDir()
		return nil, err
	}
	configPath := filepath.Join(dir, "config.yaml")
	// The package's /etc/garagemq/config.yaml with our ports and data
	// directory: both listeners on loopback, the admin UI (default 15672,
	// RabbitMQ management's port) moved too.
	config := fmt.Sprintf(`proto: amqp-rabbit
users:
  - username: guest
    password: %s
tcp:
  ip: 127.0.0.1
  port: %d
  nodelay: true
  readBufSize: 196608
  writeBufSize: 196608
admin:
  ip: 127.0.0.1
  port: %d
queue:
  shardSize: 8192
  maxMessagesInRam: 131072
db:
  defaultPath: %s
  engine: badger
vhost:
  defaultPath: /
security:
  passwordCheck: md5
connection:
  channelsMax: 4096
  frameMaxSize: 65536
`, garageMQGuestMD5, amqpPort, adminPort, filepath.Join(dir, "db"))
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		removeDir()
		return nil, err
	}
	logPath := filepath.Join(dir, "garagemq.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		removeDir()
		return nil, err
	}
	cmd := exec.Command(bin, "--config", configPath, "--log-level", "info")
	cmd.Dir = dir
	// An *os.File: no copying goroutine for goleak to find.
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so a stop signal reaches only garagemq.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		removeDir()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	g := &garageMQ{
		URL:     fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", amqpPort),
		logPath: logPath,
		cmd:     cmd,
		exited:  make(chan struct{}),
	}
	go func() {
		g.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(g.exited)
	}()
	if err := g.waitReady(); err != nil {
		g.stop()
		removeDir()
		return nil, err
	}
	t.Cleanup(func() {
		g.stop()
		removeDir()
	})
	t.Logf("garagemq pid %d at %s, data in %s", cmd.Process.Pid, g.URL, dir)
	return g, nil
}

// freeLoopbackPort returns a port that was free on 127.0.0.1 a moment ago.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls an AMQP handshake until it succeeds, the process exits
// or garageMQStartTimeout passes.
func (g *garageMQ) waitReady() error {
	deadline := time.Now().Add(garageMQStartTimeout)
	for {
		conn, err := amqp.DialConfig(g.URL, amqp.Config{Dial: amqp.DefaultDial(time.Second)})
		if err == nil {
			return conn.Close()
		}
		select {
		case <-g.exited:
			return fmt.Errorf("garagemq exited (%v) before accepting AMQP; its log:\n%s", g.waitErr, g.logTail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("garagemq did not accept AMQP at %s within %v (last: %v); its log:\n%s",
				g.URL, garageMQStartTimeout, err, g.logTail())
		}
	}
}

// stop kills garagemq and waits for the exit. SIGKILL, not SIGTERM:
// garagemq 0.0~git20200204 logs "All connections safe closed" on SIGTERM
// and then hangs closing its storage; its data directory is thrown away.
func (g *garageMQ) stop() {
	select {
	case <-g.exited:
		return
	default:
	}
	_ = g.cmd.Process.Kill()
	<-g.exited
}

// logTail is the end of garagemq's log, for failure messages.
func (g *garageMQ) logTail() string {
	b, err := os.ReadFile(g.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const keep = 4000
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return string(b)
}

// logCapture keeps the gateway's log entries for assertions and forwards
// them to the test log (testLogSink from the harness).
type logCapture struct {
	mu      sync.Mutex
	entries []logrus.Entry
}

func (c *logCapture) Levels() []logrus.Level { return logrus.AllLevels }

func (c *logCapture) Fire(e *logrus.Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = append(c.entries, logrus.Entry{Level: e.Level, Message: e.Message, Data: e.Data})
	return nil
}

// find returns the entries whose message contains substr.
func (c *logCapture) find(substr string) []logrus.Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []logrus.Entry
	for _, e := range c.entries {
		if strings.Contains(e.Message, substr) {
			out = append(out, e)
		}
	}
	return out
}

// startGatewayFor runs the gateway in-process on 127.0.0.1:0 in front of
// brokerURL with an admin listener for /metrics. It ignores
// STOMPGATE_E2E_TARGET: these tests are about the gateway's broker
// profiles, which an external STOMP server does not have.
func startGatewayFor(t testing.TB, brokerURL string, mutate ...func(*config.Config)) (*gateway.Server, *logCapture) {
	t.Helper()
	cfg := config.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.AMQP.URL = brokerURL
	cfg.ShutdownTimeout = 5 * time.Second
	for _, m := range mutate {
		m(&cfg)
	}
	captured := &logCapture{}
	return serveGateway(t, cfg, captured), captured
}

// garageMQCallTimeout bounds one AMQP check against garagemq, so that a
// stuck broker (see genericProfile.ExclusiveQueues) fails the suite
// instead of hanging it: amqp091-go's synchronous methods have no timeout.
const garageMQCallTimeout = 10 * time.Second

// do dials garagemq, opens a channel and runs op on it, all within
// garageMQCallTimeout; past that the socket is closed, which unblocks
// amqp091-go, and the test fails. It returns op's error.
func (g *garageMQ) do(t testing.TB, what string, op func(ch *amqp.Channel) error) error {
	t.Helper()
	return amqpDo(t, "garagemq", g.URL, garageMQCallTimeout, what, op, g.logTail)
}

// amqpDo dials url (amqp091-go), opens a channel and runs op on it, all
// within limit; past that the socket is closed, which unblocks amqp091-go,
// and t fails, with tail's text if given. It returns op's error. The
// brokers other than RabbitMQ (garagemq, Qpid Broker-J) get a connection
// per call: they can close a whole connection for what RabbitMQ raises on
// a channel, or stop answering.
func amqpDo(t testing.TB, broker, url string, limit time.Duration, what string, op func(ch *amqp.Channel) error, tail func() string) error {
	t.Helper()
	var mu sync.Mutex
	var sock net.Conn
	dial := amqp.DefaultDial(5 * time.Second)
	type result struct{ setupErr, opErr error }
	done := make(chan result, 1)
	go func() {
		conn, err := amqp.DialConfig(url, amqp.Config{Dial: func(network, addr string) (net.Conn, error) {
			c, err := dial(network, addr)
			mu.Lock()
			sock = c
			mu.Unlock()
			return c, err
		}})
		if err != nil {
			done <- result{setupErr: err}
			return
		}
		defer conn.CloseDeadline(time.Now().Add(time.Second))
		ch, err := conn.Channel()
		if err != nil {
			done <- result{setupErr: err}
			return
		}
		done <- result{opErr: op(ch)}
	}()
	select {
	case r := <-done:
		if r.setupErr != nil {
			t.Fatalf("%s: connect to %s %s: %v", what, broker, url, r.setupErr)
		}
		return r.opErr
	case <-time.After(limit):
		mu.Lock()
		if sock != nil {
			_ = sock.Close()
		}
		mu.Unlock()
		<-done
		detail := ""
		if tail != nil {
			detail = ": it is stuck (log tail:\n" + tail() + ")"
		}
		t.Fatalf("%s: %s gave no answer within %v%s", what, broker, limit, detail)
		return nil
	}
}

// metricSample reads one series of the gateway's /metrics, e.g.
// `stompgate_broker_profile_info{profile="generic"}`; ok is false if absent.
// expectSessionProfile checks that the latest session logged broker
// profile with publisher confirms (no "no publisher confirms" warning: the
// brokers tested announce them) and that /metrics shows the profile.
// CONNECTED is queued before "session started" is logged, so it waits.
func expectSessionProfile(t *testing.T, logs *logCapture, srv *gateway.Server, profile string) {
	t.Helper()
	var started []logrus.Entry
	deadline := time.Now().Add(5 * time.Second)
	for len(started) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		started = logs.find("session started")
	}
	if len(started) == 0 {
		t.Fatal("no 'session started' log entry")
	}
	if got := started[len(started)-1].Data["broker_profile"]; got != profile {
		t.Errorf("session log broker_profile = %v, want %s", got, profile)
	}
	if w := logs.find("no publisher confirms"); len(w) != 0 {
		t.Errorf("the broker announces publisher confirms, yet the gateway logged %q", w[0].Message)
	}
	series := `stompgate_broker_profile_info{profile="` + profile + `"}`
	if v, ok := metricSample(t, srv, series); !ok || v != 1 {
		t.Errorf("/metrics %s = %v (present %v), want 1", series, v, ok)
	}
}

func metricSample(t testing.TB, srv *gateway.Server, series string) (value float64, ok bool) {
	t.Helper()
	addr := srv.AdminAddr()
	if addr == nil {
		t.Fatal("gateway has no admin listener")
	}
	conn, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial admin %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", addr); err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := conn.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	body := b.String()
	if !strings.HasPrefix(body, "HTTP/1.0 200") && !strings.HasPrefix(body, "HTTP/1.1 200") {
		t.Fatalf("GET /metrics: %.200q", body)
	}
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimRight(line, "\r")
		name, v, found := strings.Cut(line, " ")
		if found && name == series {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("/metrics line %q: %v", line, err)
			}
			return f, true
		}
	}
	return 0, false
}
