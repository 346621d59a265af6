package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/stompgate/stompgate/gateway"
	"github.com/stompgate/stompgate/gateway/config"
)

const exampleConfigPath = "../../config.example.yaml"

var stompgateEnvVars = []string{
	"STOMPGATE_CONFIG", "STOMPGATE_LISTEN", "STOMPGATE_AMQP_URL", "STOMPGATE_LOG_LEVEL", "STOMPGATE_LOG_FORMAT",
	"STOMPGATE_TLS_LISTEN", "STOMPGATE_WS_LISTEN", "STOMPGATE_HTTP_LISTEN", "STOMPGATE_PPROF",
}

// clearEnv unsets the STOMPGATE_* variables for the test (urfave/cli treats
// a variable that is set but empty as set) and restores them afterwards.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, name := range stompgateEnvVars {
		t.Setenv(name, "")
		if err := os.Unsetenv(name); err != nil {
			t.Fatal(err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test reading it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type result struct {
	code           int
	stdout, stderr string
}

// runApp runs the program in-process, with runGateway standing in for
// gateway.Run.
func runApp(t *testing.T, runGateway gatewayRunner, args ...string) result {
	t.Helper()
	var stdout, stderr syncBuffer
	code := run(context.Background(), newApp(runGateway), append([]string{"stompgate"}, args...), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// recordingGateway replaces gateway.Run: it records what serve passed and
// returns at once.
type recordingGateway struct {
	calls int
	cfg   config.Config
	log   logrus.FieldLogger
}

func (r *recordingGateway) run(_ context.Context, cfg config.Config, log logrus.FieldLogger) error {
	r.calls++
	r.cfg, r.log = cfg, log
	return nil
}

func failIfGatewayRuns(t *testing.T) gatewayRunner {
	return func(context.Context, config.Config, logrus.FieldLogger) error {
		t.Error("gateway.Run was called")
		return nil
	}
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stompgate.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVersionPrintsVersionCommitAndGoVersion(t *testing.T) {
	clearEnv(t)
	res := runApp(t, failIfGatewayRuns(t), "version")
	if res.code != 0 {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	want := "stompgate dev (commit unknown, " + runtime.Version() + ")\n"
	if res.stdout != want {
		t.Errorf("stdout = %q, want %q", res.stdout, want)
	}
}

func TestCheckConfigAcceptsTheExample(t *testing.T) {
	clearEnv(t)
	res := runApp(t, failIfGatewayRuns(t), "check-config", "--config", exampleConfigPath)
	if res.code != 0 || res.stdout != "config OK\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and \"config OK\"", res.code, res.stdout, res.stderr)
	}
}

func TestCheckConfigReadsSTOMPGATE_CONFIG(t *testing.T) {
	clearEnv(t)
	t.Setenv("STOMPGATE_CONFIG", writeFile(t, "log:\n  format: yaml\n"))
	res := runApp(t, failIfGatewayRuns(t), "check-config")
	if res.code == 0 || !strings.Contains(res.stderr, `log.format: must be one of text, json, got "yaml"`) {
		t.Fatalf("exit %d, stderr %q; want failure naming log.format", res.code, res.stderr)
	}
}

func TestCheckConfigRejects(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"unknown key", "listen: :1\nlimits:\n  max_bodyy: 1\n", []string{`line 3: unknown key "limits.max_bodyy"`}},
		{"invalid values, all reported", "limits:\n  max_body: -1\nflow:\n  max_prefetch: 5\n",
			[]string{"limits.max_body: must be > 0, got -1", "flow.max_prefetch: must be >= flow.default_prefetch (1000), got 5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			path := writeFile(t, tt.text)
			res := runApp(t, failIfGatewayRuns(t), "check-config", "--config", path)
			if res.code == 0 {
				t.Fatalf("exit 0, stdout %q", res.stdout)
			}
			if strings.Contains(res.stdout, "config OK") {
				t.Errorf("stdout %q claims the config is OK", res.stdout)
			}
			for _, want := range append([]string{path}, tt.want...) {
				if !strings.Contains(res.stderr, want) {
					t.Errorf("stderr %q does not contain %q", res.stderr, want)
				}
			}
		})
	}
}

func TestCheckConfigNeedsAFile(t *testing.T) {
	clearEnv(t)
	if res := runApp(t, failIfGatewayRuns(t), "check-config"); res.code == 0 {
		t.Errorf("check-config without --config exited 0, stdout %q", res.stdout)
	}
	if res := runApp(t, failIfGatewayRuns(t), "check-config", "--config", filepath.Join(t.TempDir(), "missing.yaml")); res.code == 0 ||
		!strings.Contains(res.stderr, "missing.yaml") {
		t.Errorf("check-config on a missing file: exit %d, stderr %q", res.code, res.stderr)
	}
}

// style.md practice 10: a flag beats its env var, which beats the file,
// which beats the default; unset flags and env vars change nothing.
func TestServeListenPrecedence(t *testing.T) {
	file := writeFile(t, "listen: 127.0.0.1:1111\n")
	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		wantListen string
	}{
		{"default", nil, nil, ":61613"},
		{"file", nil, []string{"--config", file}, "127.0.0.1:1111"},
		{"file named by STOMPGATE_CONFIG", map[string]string{"STOMPGATE_CONFIG": file}, nil, "127.0.0.1:1111"},
		{"env beats file", map[string]string{"STOMPGATE_LISTEN": "127.0.0.1:2222"}, []string{"--config", file}, "127.0.0.1:2222"},
		{"flag beats env and file", map[string]string{"STOMPGATE_LISTEN": "127.0.0.1:2222"},
			[]string{"--config", file, "--listen", "127.0.0.1:3333"}, "127.0.0.1:3333"},
		{"flag without file", nil, []string{"--listen", "127.0.0.1:3333"}, "127.0.0.1:3333"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var gw recordingGateway
			res := runApp(t, gw.run, append([]string{"serve"}, tt.args...)...)
			if res.code != 0 || gw.calls != 1 {
				t.Fatalf("exit %d, gateway runs %d, stderr %q", res.code, gw.calls, res.stderr)
			}
			if gw.cfg.Listen != tt.wantListen {
				t.Errorf("listen = %q, want %q", gw.cfg.Listen, tt.wantListen)
			}
		})
	}
}

func TestServeFlagsOverrideTheirKeysOnly(t *testing.T) {
	clearEnv(t)
	file := writeFile(t, "amqp:\n  url: amqp://file.example/\n  dial_timeout: 7s\nlog:\n  level: warn\n")
	var gw recordingGateway
	res := runApp(t, gw.run, "serve", "--config", file,
		"--amqp-url", "amqps://flag.example:5671/", "--log-level", "debug", "--log-format", "json")
	if res.code != 0 || gw.calls != 1 {
		t.Fatalf("exit %d, gateway runs %d, stderr %q", res.code, gw.calls, res.stderr)
	}
	want := config.DefaultConfig()
	want.AMQP.URL = "amqps://flag.example:5671/"
	want.AMQP.DialTimeout = 7 * time.Second // from the file, untouched by flags
	want.Log = config.LogConfig{Level: "debug", Format: "json"}
	assertConfig(t, gw.cfg, want)
	assertLogger(t, gw.log, logrus.DebugLevel, &logrus.JSONFormatter{})
}

func TestServeEnvOverridesTheirKeys(t *testing.T) {
	clearEnv(t)
	t.Setenv("STOMPGATE_AMQP_URL", "amqp://env.example/")
	t.Setenv("STOMPGATE_LOG_LEVEL", "error")
	t.Setenv("STOMPGATE_LOG_FORMAT", "json")
	var gw recordingGateway
	res := runApp(t, gw.run, "serve")
	if res.code != 0 || gw.calls != 1 {
		t.Fatalf("exit %d, gateway runs %d, stderr %q", res.code, gw.calls, res.stderr)
	}
	want := config.DefaultConfig()
	want.AMQP.URL = "amqp://env.example/"
	want.Log = config.LogConfig{Level: "error", Format: "json"}
	assertConfig(t, gw.cfg, want)
	assertLogger(t, gw.log, logrus.ErrorLevel, &logrus.JSONFormatter{})
}

// The listener flags and their env vars set websocket.listen, admin.listen,
// tls.listen and admin.pprof; a flag beats its env var, which beats the file.
func TestServeListenerFlagsAndEnv(t *testing.T) {
	clearEnv(t)
	file := writeFile(t, "websocket:\n  listen: 127.0.0.1:1111\nadmin:\n  listen: 127.0.0.1:1112\n")
	t.Setenv("STOMPGATE_WS_LISTEN", "127.0.0.1:2221")
	t.Setenv("STOMPGATE_HTTP_LISTEN", "127.0.0.1:2222")
	t.Setenv("STOMPGATE_PPROF", "true")
	var gw recordingGateway
	res := runApp(t, gw.run, "serve", "--config", file, "--http-listen", "127.0.0.1:3333")
	if res.code != 0 || gw.calls != 1 {
		t.Fatalf("exit %d, gateway runs %d, stderr %q", res.code, gw.calls, res.stderr)
	}
	want := config.DefaultConfig()
	want.WebSocket.Listen = "127.0.0.1:2221" // env beats file
	want.Admin.Listen = "127.0.0.1:3333"     // flag beats env and file
	want.Admin.Pprof = true
	assertConfig(t, gw.cfg, want)
}

// --tls-listen without a certificate fails validation naming the field.
func TestServeTLSListenNeedsCertificate(t *testing.T) {
	clearEnv(t)
	var gw recordingGateway
	res := runApp(t, gw.run, "serve", "--tls-listen", "127.0.0.1:0")
	if res.code != 1 || gw.calls != 0 {
		t.Fatalf("exit %d, gateway runs %d, want exit 1 and no run", res.code, gw.calls)
	}
	for _, field := range []string{"tls.cert_file", "tls.key_file"} {
		if !strings.Contains(res.stderr, field) {
			t.Errorf("stderr %q does not name %s", res.stderr, field)
		}
	}
}

func TestServeDefaultLoggerIsTextAtInfo(t *testing.T) {
	clearEnv(t)
	var gw recordingGateway
	if res := runApp(t, gw.run, "serve"); res.code != 0 {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	assertLogger(t, gw.log, logrus.InfoLevel, &logrus.TextFormatter{})
}

func assertConfig(t *testing.T, got, want config.Config) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config:\n got %+v\nwant %+v", got, want)
	}
}

func assertLogger(t *testing.T, log logrus.FieldLogger, level logrus.Level, formatter logrus.Formatter) {
	t.Helper()
	logger, ok := log.(*logrus.Logger)
	if !ok {
		t.Fatalf("logger is %T, want *logrus.Logger", log)
	}
	if logger.GetLevel() != level {
		t.Errorf("log level = %v, want %v", logger.GetLevel(), level)
	}
	if got, want := fmt.Sprintf("%T", logger.Formatter), fmt.Sprintf("%T", formatter); got != want {
		t.Errorf("formatter = %s, want %s", got, want)
	}
}

func TestServeRejectsBadOverrides(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"log format flag", []string{"--log-format", "xml"}, nil, `log.format: must be one of text, json, got "xml"`},
		{"log level env", nil, map[string]string{"STOMPGATE_LOG_LEVEL": "loud"}, `log.level: must be one of`},
		{"amqp url flag", []string{"--amqp-url", "http://h/"}, nil, `amqp.url: scheme must be amqp or amqps, got "http"`},
		{"empty listen env", nil, map[string]string{"STOMPGATE_LISTEN": ""}, `listen: must not be empty`},
		{"stray argument", []string{"extra"}, nil, "serve takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			res := runApp(t, failIfGatewayRuns(t), append([]string{"serve"}, tt.args...)...)
			if res.code == 0 || !strings.Contains(res.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want failure containing %q", res.code, res.stderr, tt.want)
			}
		})
	}
}

func TestServeReportsGatewayFailure(t *testing.T) {
	clearEnv(t)
	failing := func(context.Context, config.Config, logrus.FieldLogger) error {
		return errors.New("listen tcp: address already in use")
	}
	res := runApp(t, failing, "serve")
	if res.code != 1 || !strings.Contains(res.stderr, "address already in use") {
		t.Errorf("exit %d, stderr %q; want 1 and the gateway's error", res.code, res.stderr)
	}
}

var listeningAddr = regexp.MustCompile(`addr="?([0-9.]+:[0-9]+)`)

// The real gateway.Run, in-process: serve listens where STOMPGATE_LISTEN
// says and returns 0 once its context is canceled.
func TestServeRunsTheGatewayUntilCanceled(t *testing.T) {
	clearEnv(t)
	t.Setenv("STOMPGATE_LISTEN", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	var code int
	exited := make(chan struct{})
	go func() {
		code = run(ctx, newApp(gateway.Run), []string{"stompgate", "serve"}, &stdout, &stderr)
		close(exited)
	}()

	addr := waitForListening(t, &stderr, exited)
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s from the listening line: %v", addr, err)
	}
	_ = conn.Close()

	cancel()
	select {
	case <-exited:
		if code != 0 {
			t.Errorf("exit %d after cancel, stderr %q", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return within 5s of cancel")
	}
}

// TestBinary builds the real command, as a release would (with -ldflags), and
// checks what only a separate process shows: the version variables and the
// exit status after a signal.
func TestBinary(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the binary: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "stompgate")
	build := exec.Command(goTool, "build", "-o", bin,
		"-ldflags", "-X main.version=9.8.7 -X main.commit=c0ffee", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	t.Run("version from ldflags", func(t *testing.T) {
		out, err := exec.Command(bin, "version").Output()
		if err != nil {
			t.Fatal(err)
		}
		if want := "stompgate 9.8.7 (commit c0ffee, " + runtime.Version() + ")\n"; string(out) != want {
			t.Errorf("version = %q, want %q", out, want)
		}
	})

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run("serve exits 0 on "+sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0")
			cmd.Env = envWithout(os.Environ(), stompgateEnvVars)
			var stderr syncBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var waitErr error
			exited := make(chan struct{})
			go func() { waitErr = cmd.Wait(); close(exited) }()
			defer func() {
				_ = cmd.Process.Kill() // in case the test failed early; an error once it has exited
				<-exited
			}()

			addr := waitForListening(t, &stderr, exited)
			conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				t.Fatalf("dial %s: %v", addr, err)
			}
			_ = conn.Close()

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-exited:
				if waitErr != nil {
					t.Errorf("after %v: %v (want exit 0); log:\n%s", sig, waitErr, stderr.String())
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("still running 5s after %v; log:\n%s", sig, stderr.String())
			}
		})
	}
}

// TestBinarySecondSignalForcesExit: a graceful shutdown waits for its
// sessions; a second SIGTERM ends the process at once. The session is held
// in its AMQP handshake by a "broker" that accepts and never answers, so
// the graceful shutdown would wait for amqp.dial_timeout (30 s here).
func TestBinarySecondSignalForcesExit(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the binary: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "stompgate")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	config := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(config, []byte("amqp:\n  dial_timeout: 30s\nshutdown_timeout: 30s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", config, "--listen", "127.0.0.1:0", "--amqp-url", "amqp://"+silent.Addr().String()+"/")
	cmd.Env = envWithout(os.Environ(), stompgateEnvVars)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	addr := waitForListening(t, &stderr, exited)
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("CONNECT\naccept-version:1.2\nhost:/\nlogin:u\npasscode:p\n\n\x00")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the session reaches its AMQP dial
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		t.Fatalf("exited on the first SIGTERM although a session was still dialling; log:\n%s", stderr.String())
	case <-time.After(500 * time.Millisecond):
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("the second SIGTERM took %v to end the process", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("still running 5s after the second SIGTERM; log:\n%s", stderr.String())
	}
}

// waitForListening polls the log for gateway.Run's listening line and returns
// the addr it names. It fails the test if the program exits first (exited
// is closed) or nothing appears within 10 s.
func waitForListening(t *testing.T, log *syncBuffer, exited <-chan struct{}) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if m := listeningAddr.FindStringSubmatch(log.String()); m != nil {
			return m[1]
		}
		select {
		case <-exited:
			t.Fatalf("exited before listening; log:\n%s", log.String())
		case <-deadline:
			t.Fatalf("no listening line within 10s; log:\n%s", log.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func envWithout(env, names []string) []string {
	var kept []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || name == n
		}
		if !drop {
			kept = append(kept, kv)
		}
	}
	return kept
}
