//go:build e2e

package e2e

// The cluster fault test (issue 16, README "Running more than one"): a
// 3-node RabbitMQ cluster started by scripts/rabbitmq-cluster.sh, two
// stompgate replicas as separate processes with amqp.resume_sessions and
// quorum queues, go-stomp producers that ask for a RECEIPT for every SEND
// and consumers with client-individual acks, spread over both replicas.
// During the run a node is SIGKILLed and started again, a replica is
// SIGKILLed and started again (its clients reconnect), and a broker link is
// cut with the fault proxy. Counted as Jepsen does: every SEND that got a
// RECEIPT must be received at least once.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	amqp "github.com/rabbitmq/amqp091-go"
)

// TestClusterNodeLossLosesNothingReceipted is the fault test of make test;
// make soak runs the same scenario for longer (soak_test.go).
func TestClusterNodeLossLosesNothingReceipted(t *testing.T) {
	res := runClusterFaults(t, faultSchedule{
		warmup: 4 * time.Second,
		rounds: 1,
		pause:  3 * time.Second,
	})
	res.check(t, 1)
}

// faultSchedule is one fault run: after warmup, rounds of (kill the node
// most sessions use, start it again, kill a replica and start it again,
// cut the broker links of the other replica), pause between the steps.
type faultSchedule struct {
	warmup time.Duration
	rounds int
	pause  time.Duration
}

// clusterResult is what a fault run counted.
type clusterResult struct {
	receipted, received, lost, duplicated int
	deliveries                            int
	resumed, resumeFailed                 int
	resumeTimes                           []time.Duration
	nodeKills, replicaKills, linkCuts     int
	receivedAfterReplicaRestart           int
	lostIDs                               []string
	ended, attemptErrors                  []string
	elapsed                               time.Duration
}

func (r clusterResult) String() string {
	p50, p99 := percentile(r.resumeTimes, 0.50), percentile(r.resumeTimes, 0.99)
	return fmt.Sprintf("receipted %d, received %d, lost %d, duplicated %d (deliveries %d), sessions resumed %d (failed %d), resume time p50 %v p99 %v; node kills %d, replica kills %d, link cuts %d; run %v",
		r.receipted, r.received, r.lost, r.duplicated, r.deliveries, r.resumed, r.resumeFailed,
		p50.Round(time.Millisecond), p99.Round(time.Millisecond), r.nodeKills, r.replicaKills, r.linkCuts, r.elapsed.Round(time.Second))
}

// check fails t unless nothing receipted was lost and the faults really
// moved sessions.
func (r clusterResult) check(t *testing.T, minNodeKills int) {
	t.Helper()
	t.Log(r.String())
	if r.lost != 0 {
		t.Errorf("%d receipted messages were never received, e.g. %q", r.lost, r.lostIDs[:min(len(r.lostIDs), 10)])
	}
	if r.nodeKills < minNodeKills {
		t.Errorf("%d node kills, want at least %d", r.nodeKills, minNodeKills)
	}
	if r.receipted < 100 {
		t.Errorf("only %d messages receipted: the run proves little", r.receipted)
	}
	if r.resumed == 0 {
		t.Error("no session was resumed: the faults did not reach the gateway")
	}
	if r.resumeFailed != 0 {
		t.Errorf("%d resumes failed", r.resumeFailed)
	}
	if len(r.ended) > 0 {
		t.Logf("sessions that ended for a broker or protocol reason (their clients reconnected): %q", r.ended)
	}
	if len(r.attemptErrors) > 0 {
		t.Logf("failed resume attempts (retried): %q", r.attemptErrors[:min(len(r.attemptErrors), 10)])
	}
	if r.receivedAfterReplicaRestart == 0 && r.replicaKills > 0 {
		t.Error("nothing was received after the replica restart: clients did not reconnect")
	}
}

// percentile of ds (nearest rank), 0 when empty.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// clusterScript runs scripts/rabbitmq-cluster.sh with this test's own state
// dir and node names, so it never meets a cluster of someone else's.
type clusterScript struct {
	dir, prefix string
}

func (c clusterScript) run(t testing.TB, timeout time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(repoRoot(t), "scripts", "rabbitmq-cluster.sh")}, args...)...)
	cmd.Env = append(os.Environ(), "STOMPGATE_CLUSTER_DIR="+c.dir, "STOMPGATE_CLUSTER_PREFIX="+c.prefix)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rabbitmq-cluster.sh %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// repoRoot is the repository root (the e2e tests run in e2e/).
func repoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// buildGateway builds cmd/stompgate once per test binary.
var buildGateway = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "stompgate-e2e-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "stompgate")
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/stompgate")
	cmd.Dir = filepath.Dir(wd)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// replica is one stompgate process.
type replica struct {
	name    string
	bin     string
	cfgPath string
	logFile *os.File // every log line of every run of the replica

	mu      sync.Mutex // guards the fields below
	cmd     *exec.Cmd
	addr    string // STOMP address of the current process, "" while down
	exited  chan struct{}
	resumed []time.Duration
	// ended are the sessions that ended for a reason other than their
	// client leaving or the replica stopping: "reason: error".
	ended []string
	// attemptErrors are the errors of resume attempts that failed.
	attemptErrors []string
}

// start runs the replica and waits until it listens.
func (r *replica) start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(r.bin, "serve", "--config", r.cfgPath, "--log-format", "json", "--log-level", "info")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", r.name, err)
	}
	listening := make(chan string, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if r.logFile != nil {
				_, _ = r.logFile.Write(append(sc.Bytes(), '\n'))
			}
			r.logLine(sc.Bytes(), listening)
		}
		_ = cmd.Wait()
	}()
	select {
	case addr := <-listening:
		r.mu.Lock()
		r.cmd, r.addr, r.exited = cmd, addr, exited
		r.mu.Unlock()
	case <-exited:
		t.Fatalf("%s exited before listening", r.name)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("%s did not listen within 30 s", r.name)
	}
}

// logLine reads one JSON log entry of the replica.
func (r *replica) logLine(line []byte, listening chan<- string) {
	var e map[string]any
	if json.Unmarshal(line, &e) != nil {
		return
	}
	msg, _ := e["msg"].(string)
	switch msg {
	case "stompgate listening for STOMP connections":
		addr, _ := e["addr"].(string)
		select {
		case listening <- addr:
		default:
		}
	case "session resumed":
		d, err := time.ParseDuration(fmt.Sprint(e["duration"]))
		if err == nil {
			r.mu.Lock()
			r.resumed = append(r.resumed, d)
			r.mu.Unlock()
		}
	case "session ended":
		if reason := fmt.Sprint(e["reason"]); reason != "client_eof" && reason != "client_disconnect" && reason != "shutdown" {
			r.mu.Lock()
			r.ended = append(r.ended, reason+": "+fmt.Sprint(e["error"]))
			r.mu.Unlock()
		}
	case "resume attempt failed":
		r.mu.Lock()
		r.attemptErrors = append(r.attemptErrors, fmt.Sprint(e["error"]))
		r.mu.Unlock()
	}
}

// kill SIGKILLs the replica and waits for the process to go.
func (r *replica) kill() { r.end(syscall.SIGKILL, 0) }

// stop ends the replica gracefully (SIGTERM), SIGKILL after 15 s.
func (r *replica) stop() { r.end(syscall.SIGTERM, 15*time.Second) }

// end sends sig to the replica's process and waits for it to exit; after
// grace (if not 0) it is SIGKILLed.
func (r *replica) end(sig syscall.Signal, grace time.Duration) {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.addr = ""
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	if grace == 0 {
		<-exited
		return
	}
	select {
	case <-exited:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
	}
}

func (r *replica) currentAddr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

// ledger counts as Jepsen does: what got a RECEIPT, what was received.
type ledger struct {
	mu           sync.Mutex
	receipted    map[string]bool
	received     map[string]int
	receivedLate int         // deliveries after the replica restart
	late         atomic.Bool // set once the replica restart is done
}

func (l *ledger) receipt(id string) {
	l.mu.Lock()
	l.receipted[id] = true
	l.mu.Unlock()
}

func (l *ledger) receive(id string) {
	l.mu.Lock()
	l.received[id]++
	if l.late.Load() {
		l.receivedLate++
	}
	l.mu.Unlock()
}

// missing is the receipted ids not received yet.
func (l *ledger) missing() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var m []string
	for id := range l.receipted {
		if l.received[id] == 0 {
			m = append(m, id)
		}
	}
	slices.Sort(m)
	return m
}

// runClusterFaults runs the whole scenario and returns what it counted.
func runClusterFaults(t *testing.T, plan faultSchedule) clusterResult {
	start := time.Now()
	bin, err := buildGateway()
	if err != nil {
		t.Fatal(err)
	}
	cluster := clusterScript{dir: filepath.Join(os.TempDir(), "stompgate-e2e-cluster-"+runID), prefix: "sge" + runID[:4]}
	urls := strings.Fields(cluster.run(t, 4*time.Minute, "up", "3"))
	t.Cleanup(func() { cluster.run(t, 2*time.Minute, "down") })
	if len(urls) != 3 {
		t.Fatalf("rabbitmq-cluster.sh up 3 printed %q, want 3 URLs", urls)
	}
	t.Logf("cluster up in %v: %v", time.Since(start).Round(time.Second), urls)

	// Replica B reaches the nodes through fault proxies, so its links can
	// be cut; replica A reaches them directly.
	var proxied []string
	var proxies []*faultProxy
	for _, u := range urls {
		p := newFaultProxy(t, strings.TrimSuffix(strings.TrimPrefix(u, "amqp://guest:guest@"), "/"))
		proxies = append(proxies, p)
		proxied = append(proxied, p.URL())
	}
	dir := t.TempDir()
	replicas := []*replica{
		{name: "replica-a", bin: bin, cfgPath: writeReplicaConfig(t, dir, "a", urls, false)},
		// Replica B shares pooled AMQP connections: a cut link ends a
		// connection that carries several sessions, and each resumes.
		{name: "replica-b", bin: bin, cfgPath: writeReplicaConfig(t, dir, "b", proxied, true)},
	}
	logDir := os.Getenv("STOMPGATE_E2E_LOG_DIR") // keep the replicas' logs
	if logDir == "" {
		logDir = dir
	}
	for _, r := range replicas {
		f, err := os.Create(filepath.Join(logDir, r.name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Close() })
		r.logFile = f
		r.start(t)
	}
	t.Cleanup(func() {
		for _, r := range replicas {
			r.stop()
		}
	})

	led := &ledger{receipted: map[string]bool{}, received: map[string]int{}}
	names := newNames(t)
	queues := []string{names.queue("c0"), names.queue("c1")}
	t.Cleanup(func() { deleteClusterQueues(urls, queues) })
	addrs := func() []string {
		var a []string
		for _, r := range replicas {
			if addr := r.currentAddr(); addr != "" {
				a = append(a, addr)
			}
		}
		return a
	}

	ctx, stopProducers := context.WithCancel(context.Background())
	consumeCtx, stopConsumers := context.WithCancel(context.Background())
	var producers, consumers sync.WaitGroup
	for i := range 4 {
		q := "/queue/" + queues[i%2]
		producers.Add(1)
		consumers.Add(1)
		go func() { defer producers.Done(); produce(ctx, i, q, i%2, addrs, led) }()
		go func() { defer consumers.Done(); consume(consumeCtx, q, (i+1)%2, addrs, led) }()
	}
	defer func() {
		stopProducers()
		stopConsumers()
		producers.Wait()
		consumers.Wait()
	}()

	var res clusterResult
	sleep := time.Sleep
	sleep(plan.warmup)
	for round := range plan.rounds {
		// Both replicas list node 1 first, and a resumed session moves
		// on from the node it lost: the node most sessions use is the
		// one the last round started again, round 1: node 1.
		node := 1 + round%3
		t.Logf("round %d: SIGKILL node %d", round+1, node)
		cluster.run(t, time.Minute, "kill", fmt.Sprint(node))
		res.nodeKills++
		sleep(plan.pause)
		cluster.run(t, 3*time.Minute, "start", fmt.Sprint(node))
		t.Logf("round %d: node %d back", round+1, node)
		sleep(plan.pause)

		victim := replicas[round%2]
		t.Logf("round %d: SIGKILL %s", round+1, victim.name)
		victim.kill()
		res.replicaKills++
		sleep(plan.pause)
		victim.start(t)
		led.late.Store(true)
		sleep(plan.pause)

		t.Logf("round %d: cut replica-b's broker links", round+1)
		cut := 0
		for _, p := range proxies {
			cut += p.Cut()
		}
		res.linkCuts += cut
		sleep(plan.pause)
	}
	stopProducers()
	producers.Wait() // a SEND in flight may still get its RECEIPT
	// Drain: every receipted message must arrive.
	deadline := time.Now().Add(45 * time.Second)
	for len(led.missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	stopConsumers()
	consumers.Wait()

	led.mu.Lock()
	res.receipted = len(led.receipted)
	res.received = len(led.received)
	for _, n := range led.received {
		res.deliveries += n
		if n > 1 {
			res.duplicated++
		}
	}
	res.receivedAfterReplicaRestart = led.receivedLate
	led.mu.Unlock()
	res.lostIDs = led.missing()
	res.lost = len(res.lostIDs)
	for _, r := range replicas {
		r.mu.Lock()
		res.resumed += len(r.resumed)
		res.resumeTimes = append(res.resumeTimes, r.resumed...)
		for _, e := range r.ended {
			if strings.Contains(e, "could not be resumed") {
				res.resumeFailed++
			}
		}
		res.ended = append(res.ended, r.ended...)
		res.attemptErrors = append(res.attemptErrors, r.attemptErrors...)
		r.mu.Unlock()
	}
	res.elapsed = time.Since(start)
	return res
}

// writeReplicaConfig writes a replica's config: the given URL list, session
// resume, quorum queues, fast AMQP heart-beats, and shared AMQP
// connections if shared.
func writeReplicaConfig(t testing.TB, dir, name string, urls []string, shared bool) string {
	t.Helper()
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
shutdown_timeout: 5s
amqp:
  url: %q
  heartbeat: 2s
  dial_timeout: 3s
  resume_sessions: true
  resume_timeout: 30s
  shared_connections: %t
stomp:
  default_queue_type: quorum
`, strings.Join(urls, ","), shared)
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// dialReplica connects go-stomp to one of the live replicas, preferring
// index prefer, retrying until ctx ends.
func dialReplica(ctx context.Context, prefer int, addrs func() []string) *stomp.Conn {
	for try := 0; ctx.Err() == nil; try++ {
		a := addrs()
		if len(a) > 0 {
			addr := a[(prefer+try)%len(a)]
			conn, err := stomp.Dial("tcp", addr,
				stomp.ConnOpt.Login("guest", "guest"), stomp.ConnOpt.Host("/"), stomp.ConnOpt.HeartBeat(0, 0))
			if err == nil {
				return conn
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// produce sends numbered messages to queue, each with a receipt, until ctx
// ends; a message counts as receipted only when its RECEIPT arrived.
func produce(ctx context.Context, n int, queue string, prefer int, addrs func() []string, led *ledger) {
	seq := 0
	for ctx.Err() == nil {
		conn := dialReplica(ctx, prefer, addrs)
		if conn == nil {
			return
		}
		for ctx.Err() == nil {
			seq++
			id := fmt.Sprintf("p%d-%06d", n, seq)
			done := make(chan error, 1)
			go func() { done <- conn.Send(queue, "text/plain", []byte(id), stomp.SendOpt.Receipt) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(40 * time.Second):
				err = errors.New("no RECEIPT within 40 s")
			}
			if err != nil {
				break
			}
			led.receipt(id)
		}
		_ = conn.MustDisconnect()
		prefer++
	}
}

// consume receives from queue with client-individual acks until ctx ends,
// reconnecting (to another replica if need be) whenever its connection ends.
func consume(ctx context.Context, queue string, prefer int, addrs func() []string, led *ledger) {
	for ctx.Err() == nil {
		conn := dialReplica(ctx, prefer, addrs)
		if conn == nil {
			return
		}
		sub, err := conn.Subscribe(queue, stomp.AckClientIndividual)
		if err == nil {
		receive:
			for {
				select {
				case msg, ok := <-sub.C:
					if !ok || msg.Err != nil {
						break receive
					}
					led.receive(string(msg.Body))
					if conn.Ack(msg) != nil {
						break receive
					}
				case <-ctx.Done():
					break receive
				}
			}
		}
		_ = conn.MustDisconnect()
		prefer++
	}
}

// deleteClusterQueues removes the test's quorum queues through any node
// that answers.
func deleteClusterQueues(urls, queues []string) {
	for _, u := range urls {
		conn, err := amqp.DialConfig(u, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
		if err != nil {
			continue
		}
		ch, err := conn.Channel()
		if err == nil {
			for _, q := range queues {
				_, _ = ch.QueueDelete(q, false, false, false)
			}
		}
		_ = conn.Close()
		return
	}
}
