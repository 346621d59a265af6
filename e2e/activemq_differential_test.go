//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stompgate/stompgate/gateway/config"
	"github.com/stompgate/stompgate/mapping"
)

// activeMQDifferences is every difference the ActiveMQ differential test
// allows between a real ActiveMQ 5.17 and stompgate with stomp.dialect:
// activemq in front of RabbitMQ (issue 14). Each is a regular expression
// over "<scenario>/<path>" of a value in the programs' normalised JSON,
// with the reason. README.md "Coming from ActiveMQ" repeats this table.
var activeMQDifferences = []struct {
	path   string
	reason string
}{
	{`selectors/bad_selector/[^/]+/message`,
		"ERROR message: ActiveMQ says `Couldn't create TopicSubscription`, stompgate `Invalid selector` with the position in the body"},
	{`selectors/arithmetic/n \* 2 = 4/(send|message|bodies)`,
		"ActiveMQ does not convert a header string in arithmetic and fails the SEND (ERROR `Cannot call multiply operation`); stompgate computes 2 * 2 = 4 and delivers"},
	{`selectors/arithmetic/n \+ 1 > 3/bodies`,
		"ActiveMQ concatenates (\"21\" > 3 is TRUE); stompgate adds (3 > 3 is FALSE)"},
	{`selectors/queue_selector/(reply|message|bodies)`,
		"selectors on /queue are refused with ERROR `Invalid selector`: a shared queue cannot skip messages without taking them from other consumers"},
	{`durable/steps/[123]/(reply|message)`,
		"UNSUBSCRIBE with activemq.subscriptionName removes the subscription even while it has a consumer (ActiveMQ: ERROR `Durable consumer is in use`, connection kept); the plain UNSUBSCRIBE that follows then gets ERROR `No subscription found`, which ends the session as every ERROR does"},
	{`scheduled/headers/delayed/scheduledJobId`,
		"no scheduler: a delayed message waits in a delay queue and has no job id"},
	{`redelivery/nack-(non)?persistent/deliveries/[12]/(redeliveryDelay|scheduledJobId)`,
		"no redelivery plugin: a NACKed message is redelivered at once (at the end of the queue), not after a 1 s delay by a scheduler job"},
	{`redelivery/nack-(non)?persistent/deliveries/[12]/JMSXDeliveryCount`,
		"a redelivery carries JMSXDeliveryCount (ActiveMQ sends no count over STOMP)"},
	{`redelivery/nack-persistent/dlq/0/headers/(JMSXDeliveryCount|originalExpiration|redeliveryDelay|scheduledJobId)`,
		"the dead-lettered copy carries JMSXDeliveryCount and original-destination, not ActiveMQ's originalExpiration or the redelivery plugin's headers"},
	{`redelivery/nack-nonpersistent/dlq`,
		"a non-persistent message past the limit is dead-lettered too (ActiveMQ drops it: processNonPersistent=false)"},
}

// activeMQProgram is one of the differential client programs.
type activeMQProgram struct {
	name string
	cmd  []string // interpreter and script, relative to e2e/
}

func activeMQPrograms() []activeMQProgram {
	return []activeMQProgram{
		{"stomp.py", []string{pythonInterpreter(), "clients/activemq_scenarios.py"}},
		{"ruby-stomp", []string{"ruby", "clients/activemq_scenarios.rb"}},
	}
}

// ensureActiveMQ starts (or reuses) the ActiveMQ of scripts/ensure-activemq.sh
// and returns its STOMP address. A failure fails the test: the suite needs
// the real broker.
func ensureActiveMQ(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repoRoot(t), "scripts", "ensure-activemq.sh"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/ensure-activemq.sh: %v\n%s", err, stderr.String())
	}
	addr := strings.TrimSpace(string(out))
	if _, _, err := net.SplitHostPort(addr); err != nil {
		t.Fatalf("scripts/ensure-activemq.sh printed %q, want host:port", addr)
	}
	return addr
}

// runActiveMQProgram runs p against addr with prefix and returns its JSON
// objects by scenario. Any failed scenario fails the test.
func runActiveMQProgram(t *testing.T, p activeMQProgram, addr, prefix string, only []string) map[string]any {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	args := append(append([]string{}, p.cmd[1:]...), host, port, prefix)
	if len(only) > 0 {
		args = append(args, "--only", strings.Join(only, ","))
	}
	cmd := exec.CommandContext(ctx, p.cmd[0], args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	got := map[string]any{}
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var obj map[string]any
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Errorf("%s against %s printed a line that is not JSON: %q", p.name, addr, sc.Text())
			continue
		}
		name, _ := obj["scenario"].(string)
		if e, failed := obj["error"]; failed {
			t.Errorf("%s against %s: scenario %s failed: %v", p.name, addr, name, e)
		}
		got[name] = obj
	}
	if runErr != nil {
		t.Errorf("%s against %s: %v\nstderr:\n%s", p.name, addr, runErr, stderr.String())
	}
	return got
}

// jsonDiff appends the paths where a and b differ. Lists of objects of the
// same length are compared element by element; other lists as a whole.
func jsonDiff(path string, a, b any, out *[]string) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		for k := range keys {
			av, ain := am[k]
			bv, bin := bm[k]
			switch {
			case !ain:
				av = "<absent>"
			case !bin:
				bv = "<absent>"
			}
			jsonDiff(path+"/"+k, av, bv, out)
		}
		return
	}
	al, aok := a.([]any)
	bl, bok := b.([]any)
	if aok && bok && len(al) == len(bl) && allObjects(al) && allObjects(bl) {
		for i := range al {
			jsonDiff(fmt.Sprintf("%s/%d", path, i), al[i], bl[i], out)
		}
		return
	}
	aj, _ := json.Marshal(a)
	bj, _ := json.Marshal(b)
	if !bytes.Equal(aj, bj) {
		*out = append(*out, fmt.Sprintf("%s\x00%s\x00%s", path, aj, bj))
	}
}

func allObjects(l []any) bool {
	for _, v := range l {
		if _, ok := v.(map[string]any); !ok {
			return false
		}
	}
	return true
}

func randomPrefix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "amq" + hex.EncodeToString(b)
}

// TestActiveMQDifferential runs the same stomp.py and Ruby stomp programs,
// speaking ActiveMQ's dialect, against a real ActiveMQ 5.17 and through
// stompgate (stomp.dialect: activemq, stomp.max_redeliveries: 2, as the
// ActiveMQ's redelivery plugin) to RabbitMQ, all four at once, and fails on
// any difference not in activeMQDifferences (issue 14).
func TestActiveMQDifferential(t *testing.T) {
	amq := ensureActiveMQ(t)
	n := newNames(t)
	cfg := config.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.AMQP.URL = amqpURL()
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.STOMP.Dialect = config.DialectActiveMQ
	cfg.STOMP.MaxRedeliveries = 2
	gw := serveGateway(t, cfg).Addr().String()

	type run struct {
		prog        activeMQProgram
		amqP, gwP   string
		amqOut, gwO map[string]any
	}
	var runs []*run
	for _, p := range activeMQPrograms() {
		r := &run{prog: p, amqP: randomPrefix(), gwP: randomPrefix()}
		runs = append(runs, r)
		// Every queue the programs make through stompgate, deleted at cleanup.
		for _, q := range []string{"selq", "exp", "delay", "excl", "nack-persistent", "nack-nonpersistent", "disconnect"} {
			name := r.gwP + "." + q
			n.addQueue(name)
			n.addQueue(mapping.ActiveMQDeadLetterQueue(name))
		}
		n.addQueue(mapping.ActiveMQDurableQueueName(r.gwP+"-cid", r.gwP+"-sub"))
	}
	var wg sync.WaitGroup
	start := time.Now()
	for _, r := range runs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			r.amqOut = runActiveMQProgram(t, r.prog, amq, r.amqP, nil)
		}()
		go func() {
			defer wg.Done()
			r.gwO = runActiveMQProgram(t, r.prog, gw, r.gwP, nil)
		}()
	}
	wg.Wait()
	t.Logf("four programs ran in %v", time.Since(start).Round(time.Millisecond))

	allowed := make([]*regexp.Regexp, len(activeMQDifferences))
	for i, d := range activeMQDifferences {
		allowed[i] = regexp.MustCompile("^" + d.path + "$")
	}
	used := make([]bool, len(allowed))
	for _, r := range runs {
		names := make([]string, 0, len(r.amqOut))
		for k := range r.amqOut {
			names = append(names, k)
		}
		sort.Strings(names)
		if len(names) < 7 {
			t.Errorf("%s against ActiveMQ printed %d scenarios (%v), want 7", r.prog.name, len(names), names)
		}
		for _, s := range names {
			g, ok := r.gwO[s]
			if !ok {
				t.Errorf("%s through stompgate printed no scenario %s", r.prog.name, s)
				continue
			}
			var diffs []string
			jsonDiff(s, r.amqOut[s], g, &diffs)
			sort.Strings(diffs)
			for _, d := range diffs {
				parts := strings.SplitN(d, "\x00", 3)
				known := false
				for i, re := range allowed {
					if re.MatchString(parts[0]) {
						known, used[i] = true, true
					}
				}
				if known {
					t.Logf("%s: known difference %s: ActiveMQ %s, stompgate %s", r.prog.name, parts[0], parts[1], parts[2])
				} else {
					t.Errorf("%s: difference %s not in activeMQDifferences: ActiveMQ %s, stompgate %s", r.prog.name, parts[0], parts[1], parts[2])
				}
			}
		}
	}
	for i, u := range used {
		if !u {
			t.Logf("listed difference not seen in this run: %s (%s)", activeMQDifferences[i].path, activeMQDifferences[i].reason)
		}
	}
}

// addQueue schedules the deletion of a queue the test did not name itself.
func (n *names) addQueue(q string) {
	n.mu.Lock()
	n.queues = append(n.queues, q)
	n.mu.Unlock()
}
