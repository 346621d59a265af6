//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// scriptingClient is one of the clients the gateway exists for, run as a
// subprocess on the gateway's bound port (style.md practice 14). Each script
// under clients/ runs the same steps and prints one JSON object per step.
type scriptingClient struct {
	name    string
	version string   // STOMP version the script negotiates
	probe   []string // command that succeeds only if the client library is installed
	run     []string // command that runs the script (path relative to e2e/)
	install string   // what provides the library
}

func pythonInterpreter() string {
	if p := os.Getenv("STOMPGATE_E2E_PYTHON"); p != "" {
		return p
	}
	// The Debian packages python3-stomp and python3-stomper install into the
	// system interpreter; a pyenv or venv python3 first in PATH lacks them.
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	return "python3"
}

func scriptingClients() []scriptingClient {
	py := pythonInterpreter()
	return []scriptingClient{
		{
			name: "stomp.py", version: "1.2",
			probe:   []string{py, "-c", "import stomp, sys; sys.exit(0 if stomp.__version__[0] == 8 else 1)"},
			run:     []string{py, "clients/stomppy_client.py"},
			install: "python3-stomp (stomp.py 8.x) for " + py,
		},
		{
			name: "stomper", version: "1.1",
			probe:   []string{py, "-c", "import stomper"},
			run:     []string{py, "clients/stomper_client.py"},
			install: "python3-stomper for " + py,
		},
		{
			name: "ruby-stomp", version: "1.2",
			probe:   []string{"ruby", "-e", `require "stomp"`},
			run:     []string{"ruby", "clients/ruby_client.rb"},
			install: "ruby and ruby-stomp (the stomp gem)",
		},
		{
			name: "Net::Stomp", version: "1.0",
			probe:   []string{"perl", "-MNet::Stomp", "-MJSON::PP", "-e", "1"},
			run:     []string{"perl", "clients/netstomp_client.pl"},
			install: "perl and libnet-stomp-perl",
		},
		{
			name: "php-stomp", version: "1.1",
			probe:   []string{"php", "-r", `exit(class_exists("Stomp") ? 0 : 1);`},
			run:     []string{"php", "clients/php_client.php"},
			install: "php-cli and php-stomp",
		},
	}
}

// clientStep is one JSON line of a script's output.
type clientStep struct {
	Step         string              `json:"step"`
	Error        string              `json:"error"`
	Version      string              `json:"version"`
	Receipts     []string            `json:"receipts"`
	Destination  string              `json:"destination"`
	Destinations []string            `json:"destinations"`
	Body         string              `json:"body"`
	Bodies       []string            `json:"bodies"`
	Deliveries   []map[string]string `json:"deliveries"`
}

// TestScriptingClients runs every scripting client against the gateway: a
// queue round trip, topic fan-out to two subscribers, /exchange/amq.direct,
// client-individual ACK and NACK with requeue, receipts on SEND and
// SUBSCRIBE. A missing client library fails the test (scripts/install-test-deps.sh
// installs them).
func TestScriptingClients(t *testing.T) {
	t.Parallel()
	addr := startGateway(t)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("split %q: %v", addr, err)
	}
	for _, client := range scriptingClients() {
		t.Run(client.name, func(t *testing.T) {
			t.Parallel()
			requireClient(t, client)
			n := newNames(t)
			env := clientEnv(host, port, client, map[string]string{
				"E2E_QUEUE":      n.queue("q"),
				"E2E_ACK_QUEUE":  n.queue("ack"),
				"E2E_TOPIC_KEY":  n.key("fanout"),
				"E2E_DIRECT_KEY": n.key("direct"),
			})
			steps := runClient(t, client, env)
			checkClientSteps(t, client, env, steps)
			expectQueueDrained(t, env["E2E_ACK_QUEUE"])
		})
	}
}

// requireClient fails the test, with the package to install, when the
// client's library is missing.
func requireClient(t *testing.T, client scriptingClient) {
	t.Helper()
	if out, err := exec.Command(client.probe[0], client.probe[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s is not installed (%s failed: %v: %s); install %s, e.g. with scripts/install-test-deps.sh",
			client.name, strings.Join(client.probe, " "), err, bytes.TrimSpace(out), client.install)
	}
}

// clientEnv is what every client script reads (where to connect, as whom,
// the tag its messages carry) plus the script's own names in extra.
func clientEnv(host, port string, client scriptingClient, extra map[string]string) map[string]string {
	env := map[string]string{
		"STOMP_HOST": host, "STOMP_PORT": port,
		"STOMP_LOGIN": "guest", "STOMP_PASSCODE": "guest", "STOMP_VHOST": "/",
		"E2E_TAG": "from " + client.name + " " + runID,
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// execClient runs client's script with env added to the environment (at
// most 45 s) and returns its output; the scripts print one JSON object per
// line.
func execClient(client scriptingClient, env map[string]string) (stdout, stderr *bytes.Buffer, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, client.run[0], client.run[1:]...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, stderr = new(bytes.Buffer), new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return stdout, stderr, cmd.Run()
}

func runClient(t *testing.T, client scriptingClient, env map[string]string) map[string]clientStep {
	t.Helper()
	stdout, stderr, runErr := execClient(client, env)
	steps := map[string]clientStep{}
	sc := bufio.NewScanner(bytes.NewReader(stdout.Bytes()))
	for sc.Scan() {
		var s clientStep
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Errorf("%s printed a line that is not JSON: %q", client.name, sc.Text())
			continue
		}
		steps[s.Step] = s
	}
	if runErr != nil || steps["error"].Step != "" {
		t.Fatalf("%s %s: %v\nerror step: %s\nstdout:\n%s\nstderr:\n%s", client.name,
			filepath.Base(client.run[len(client.run)-1]), runErr, steps["error"].Error, stdout.String(), stderr.String())
	}
	if t.Failed() {
		t.Logf("stderr of %s:\n%s", client.name, stderr.String())
	}
	return steps
}

func checkClientSteps(t *testing.T, client scriptingClient, env map[string]string, steps map[string]clientStep) {
	t.Helper()
	for _, want := range []string{"connect", "queue", "topic", "exchange", "ack", "done"} {
		if _, ok := steps[want]; !ok {
			t.Fatalf("%s never reported step %q; got %v", client.name, want, steps)
		}
	}
	tag := env["E2E_TAG"]
	if v := steps["connect"].Version; v != "" && v != client.version {
		t.Errorf("negotiated STOMP %s, want %s", v, client.version)
	}

	q := steps["queue"]
	sameSet(t, "queue receipts", q.Receipts, "sub-queue", "send-queue")
	if q.Destination != "/queue/"+env["E2E_QUEUE"] || q.Body != "queue "+tag {
		t.Errorf("queue MESSAGE destination %q body %q, want %q and %q", q.Destination, q.Body, "/queue/"+env["E2E_QUEUE"], "queue "+tag)
	}

	tp := steps["topic"]
	sameSet(t, "topic receipts", tp.Receipts, "sub-topic-0", "sub-topic-1", "send-topic")
	if !slices.Equal(tp.Bodies, []string{"topic " + tag, "topic " + tag}) {
		t.Errorf("topic fan-out bodies %q, want the message once per subscriber", tp.Bodies)
	}
	for _, d := range tp.Destinations {
		if d != "/topic/"+env["E2E_TOPIC_KEY"] {
			t.Errorf("topic MESSAGE destination %q, want %q", d, "/topic/"+env["E2E_TOPIC_KEY"])
		}
	}

	ex := steps["exchange"]
	sameSet(t, "exchange receipts", ex.Receipts, "sub-exchange", "send-exchange")
	wantDest := "/exchange/amq.direct/" + env["E2E_DIRECT_KEY"]
	if ex.Destination != wantDest || ex.Body != "direct "+tag {
		t.Errorf("exchange MESSAGE destination %q body %q, want %q and %q", ex.Destination, ex.Body, wantDest, "direct "+tag)
	}

	// ack-1 is NACKed on first delivery and must come back redelivered;
	// ack-2 is ACKed once. The requeued ack-1 may overtake ack-2 when the
	// NACK reaches the broker before ack-2 was published (AMQP keeps no
	// order across a requeue), so only the first delivery's place is fixed.
	var got []string
	for _, d := range steps["ack"].Deliveries {
		got = append(got, d["body"]+" redelivered="+d["redelivered"])
	}
	want := []string{
		"ack-1 " + tag + " redelivered=false",
		"ack-2 " + tag + " redelivered=false",
		"ack-1 " + tag + " redelivered=true",
	}
	if len(got) != len(want) || got[0] != want[0] {
		t.Errorf("client-individual deliveries\n got %q\nwant %q (the last two in either order)", got, want)
	} else {
		sameSet(t, "client-individual deliveries after the first", got[1:], want[1:]...)
	}
}

func sameSet(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("%s %q, want %q", what, got, want)
	}
}

// expectQueueDrained checks over AMQP that the client's ACKs really
// acknowledged: once its session is gone (no consumers) the queue is empty,
// where an unacknowledged delivery would have returned.
func expectQueueDrained(t *testing.T, queue string) {
	t.Helper()
	ch := amqpChannel(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			t.Fatalf("passive declare %q: %v", queue, err)
		}
		if q.Consumers == 0 {
			if q.Messages != 0 {
				t.Errorf("queue %q holds %d messages after the client ACKed everything", queue, q.Messages)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue %q still has %d consumers 5s after the client ended", queue, q.Consumers)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
