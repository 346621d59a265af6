//go:build e2e

package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/mapping"
)

// The broker differential (issue 15): the same STOMP scenarios run through
// stompgate in front of RabbitMQ and in front of Qpid Broker-J, and the
// transcripts (frames the client sees, plus queue depths read over AMQP)
// must be equal except for the differences named in qpidDifferences. Each
// named difference must be observed (else the table is stale) and is then
// reconciled. The README's "Qpid Broker-J" table mirrors qpidDifferences.

// brokerDifference is one difference a STOMP client can see between
// stompgate on RabbitMQ 3.10 and stompgate on Qpid Broker-J 10.1.0.
type brokerDifference struct {
	name     string
	scenario string
	// rabbitmq and qpid are the transcript lines that differ (after
	// normalising); a line matches if it equals the entry or, for an entry
	// ending in "…", starts with what precedes it.
	rabbitmq, qpid string
}

var qpidDifferences = []brokerDifference{
	{"temp queue names", "temp-queue reply",
		"MESSAGE reply-to=/reply-queue/amq.gen-…", "MESSAGE reply-to=/reply-queue/tmp_…"},
	{"MESSAGE expiration counts down", "expiration",
		"MESSAGE expiration=60000…", "MESSAGE expiration=remaining ms (≤ 60000)…"},
	{"queue arguments without a Broker-J equivalent are refused", "x-max-length",
		"RECEIPT r", "ERROR Invalid header: 'x-max-length' is not supported by broker profile qpid"},
	{"exclusive durable queues are refused", "exclusive durable",
		"RECEIPT r", "ERROR Invalid header: 'exclusive' queues must not be durable on broker profile qpid: queue '<q>' (Qpid Broker-J would close the AMQP connection)"},
	{"NACK requeue:false on a queue stompgate did not declare keeps the message", "nack on /amq/queue",
		"depth <q> = 0", "depth <q> = 1"},
	{"broker error texts", "unknown exchange",
		"ERROR not_found: NOT_FOUND - no exchange '<x>' in vhost '/'", "ERROR not_found: Unknown exchange name: '<x>'"},
	{"broker error texts", "missing /amq/queue",
		"ERROR not_found: NOT_FOUND - no queue '<q>' in vhost '/'", "ERROR not_found: No such queue, '<q>'"},
	{"channel-max 256", "257 subscriptions",
		"RECEIPT r256", "ERROR Too many subscriptions: The broker allows 256 channels per AMQP connection (channel-max) and this one has none left: each subscription and temp queue needs one, plus one for sending."},
}

// diffEnv is what a scenario gets: the gateway's address, a name for its
// queues, and the broker behind it over AMQP.
type diffEnv struct {
	addr   string
	q      string // a queue name unique to the run and scenario
	broker *qpidBroker
}

// brokerScenario returns its transcript: one line per frame or check.
type brokerScenario struct {
	name string
	run  func(t *testing.T, e diffEnv) []string
}

// line renders a frame for a transcript: command, then the headers a
// scenario names.
func line(f *rawFrame, headers ...string) string {
	switch f.Command {
	case "RECEIPT":
		return "RECEIPT " + firstHeader(f, "receipt-id")
	case "ERROR":
		return "ERROR " + firstHeader(f, "message") + ": " + strings.TrimSuffix(string(f.Body), "\n")
	}
	s := f.Command
	for _, h := range headers {
		s += " " + h + "=" + firstHeader(f, h)
	}
	if len(f.Body) > 0 {
		s += " body=" + string(f.Body)
	}
	return s
}

func depthLine(t *testing.T, e diffEnv, queue string) string {
	n, err := e.broker.depth(t, queue)
	if err != nil {
		return "depth " + queue + ": " + err.Error()
	}
	return "depth " + queue + " = " + strconv.Itoa(n)
}

var brokerScenarios = []brokerScenario{
	{"queue round trip", func(t *testing.T, e diffEnv) []string {
		c := connectRaw(t, e.addr, "1.2")
		send(t, c, "SUBSCRIBE\nid:s\ndestination:/queue/"+e.q+"\nack:client-individual\nreceipt:s\n\n\x00")
		out := []string{line(expectFrame(t, c, "RECEIPT"))}
		send(t, c, "SEND\ndestination:/queue/"+e.q+"\ncontent-type:text/plain\ncorrelation-id:c\nx-h:v\npriority:4\nreceipt:r\n\nbody\x00")
		got := expectFrames(t, c, "RECEIPT", "MESSAGE")
		out = append(out, line(got["RECEIPT"]), line(got["MESSAGE"], "destination", "content-type", "correlation-id", "x-h", "priority", "redelivered"))
		send(t, c, "NACK\nid:"+ackHeader(t, got["MESSAGE"])+"\n\n\x00")
		m := expectFrame(t, c, "MESSAGE")
		out = append(out, line(m, "redelivered"))
		send(t, c, "NACK\nid:"+ackHeader(t, m)+"\nrequeue:false\nreceipt:n\n\n\x00")
		out = append(out, line(expectFrame(t, c, "RECEIPT")))
		disconnectRaw(t, c)
		return append(out, depthLine(t, e, e.q))
	}},
	{"topic and exchange", func(t *testing.T, e diffEnv) []string {
		c := connectRaw(t, e.addr, "1.2")
		send(t, c, "SUBSCRIBE\nid:t\ndestination:/topic/"+e.q+".*\nreceipt:s1\n\n\x00")
		send(t, c, "SUBSCRIBE\nid:x\ndestination:/exchange/amq.direct/"+e.q+"\nreceipt:s2\n\n\x00")
		out := []string{line(expectFrame(t, c, "RECEIPT")), line(expectFrame(t, c, "RECEIPT"))}
		send(t, c, "SEND\ndestination:/topic/"+e.q+".a\n\ntopic\x00")
		out = append(out, line(expectFrame(t, c, "MESSAGE"), "subscription", "destination"))
		send(t, c, "SEND\ndestination:/exchange/amq.direct/"+e.q+"\n\ndirect\x00")
		out = append(out, line(expectFrame(t, c, "MESSAGE"), "subscription", "destination"))
		send(t, c, "SEND\ndestination:/topic/nobody-"+e.q+"\nreceipt:u\n\nunroutable\x00")
		return append(out, line(expectFrame(t, c, "RECEIPT")))
	}},
	{"transaction", func(t *testing.T, e diffEnv) []string {
		c := connectRaw(t, e.addr, "1.2")
		send(t, c, "BEGIN\ntransaction:a\n\n\x00SEND\ndestination:/queue/"+e.q+"\ntransaction:a\n\nx\x00ABORT\ntransaction:a\nreceipt:ab\n\n\x00")
		out := []string{line(expectFrame(t, c, "RECEIPT")), depthLine(t, e, e.q)}
		send(t, c, "BEGIN\ntransaction:b\n\n\x00SEND\ndestination:/queue/"+e.q+"\ntransaction:b\n\ny\x00COMMIT\ntransaction:b\nreceipt:co\n\n\x00")
		return append(out, line(expectFrame(t, c, "RECEIPT")), depthLine(t, e, e.q))
	}},
	{"temp-queue reply", func(t *testing.T, e diffEnv) []string {
		svc := connectRaw(t, e.addr, "1.2")
		send(t, svc, "SUBSCRIBE\nid:s\ndestination:/queue/"+e.q+"\nreceipt:s\n\n\x00")
		out := []string{line(expectFrame(t, svc, "RECEIPT"))}
		req := connectRaw(t, e.addr, "1.2")
		send(t, req, "SEND\ndestination:/queue/"+e.q+"\nreply-to:/temp-queue/r\n\nq\x00")
		m := expectFrame(t, svc, "MESSAGE")
		out = append(out, line(m, "reply-to"))
		send(t, svc, "SEND\ndestination:"+firstHeader(m, "reply-to")+"\n\na\x00")
		return append(out, line(expectFrame(t, req, "MESSAGE"), "subscription"))
	}},
	{"durable subscription", func(t *testing.T, e diffEnv) []string {
		c := connectRaw(t, e.addr, "1.2")
		subscribeDurable(t, c, "d", "/topic/"+e.q)
		disconnectRaw(t, c)
		c = connectRaw(t, e.addr, "1.2")
		send(t, c, "SEND\ndestination:/topic/"+e.q+"\nreceipt:r\n\nwhile away\x00")
		out := []string{line(expectFrame(t, c, "RECEIPT"))}
		subscribeDurable(t, c, "d", "/topic/"+e.q)
		m := expectFrame(t, c, "MESSAGE")
		out = append(out, line(m, "subscription"))
		send(t, c, "ACK\nid:"+ackHeader(t, m)+"\n\n\x00UNSUBSCRIBE\nid:d\ndurable:true\nreceipt:u\n\n\x00")
		return append(out, line(expectFrame(t, c, "RECEIPT")))
	}},
	{"expiration", func(t *testing.T, e diffEnv) []string {
		c := connectRaw(t, e.addr, "1.2")
		send(t, c, "SEND\ndestination:/queue/"+e.q+"\nexpiration:1\nreceipt:e1\n\ngone\x00SEND\ndestination:/queue/"+e.q+"\nexpiration:60000\nreceipt:e2\n\nkept\x00")
		out := []string{line(expectFrame(t, c, "RECEIPT")), line(expectFrame(t, c, "RECEIPT"))}
		time.Sleep(50 * time.Millisecond)
		send(t, c, "SUBSCRIBE\nid:e\ndestination:/queue/"+e.q+"\n\n\x00")
		m := expectFrame(t, c, "MESSAGE")
		if ms, err := strconv.Atoi(firstHeader(m, "expiration")); err == nil && ms > 0 && ms < 60000 {
			m.Headers = slices.DeleteFunc(m.Headers, func(h [2]string) bool { return h[0] == "expiration" })
			m.Headers = append(m.Headers, [2]string{"expiration", "remaining ms (≤ 60000)"})
		}
		return append(out, line(m, "expiration"))
	}},
	{"x-max-length", func(t *testing.T, e diffEnv) []string {
		c := connectRaw(t, e.addr, "1.2")
		send(t, c, "SEND\ndestination:/queue/"+e.q+"\nx-max-length:5\nreceipt:r\n\nx\x00")
		return []string{line(readAnyFrame(t, c))}
	}},
	{"exclusive durable", func(t *testing.T, e diffEnv) []string {
		c := connectRaw(t, e.addr, "1.2")
		send(t, c, "SEND\ndestination:/queue/"+e.q+"\nexclusive:true\nreceipt:r\n\nx\x00")
		return []string{line(readAnyFrame(t, c))}
	}},
	{"nack on /amq/queue", func(t *testing.T, e diffEnv) []string {
		if err := e.broker.do(t, "declare", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare(e.q, true, false, false, false, nil)
			return err
		}); err != nil {
			t.Fatalf("declare %s: %v", e.q, err)
		}
		c := connectRaw(t, e.addr, "1.2")
		send(t, c, "SEND\ndestination:/amq/queue/"+e.q+"\n\nx\x00SUBSCRIBE\nid:a\ndestination:/amq/queue/"+e.q+"\nack:client\n\n\x00")
		m := expectFrame(t, c, "MESSAGE")
		send(t, c, "NACK\nid:"+ackHeader(t, m)+"\nrequeue:false\nreceipt:n\n\n\x00")
		out := []string{line(m, "destination"), line(expectFrame(t, c, "RECEIPT"))}
		disconnectRaw(t, c)
		return append(out, depthLine(t, e, e.q))
	}},
	{"unknown exchange", func(t *testing.T, e diffEnv) []string {
		c := connectRaw(t, e.addr, "1.2")
		send(t, c, "SEND\ndestination:/exchange/"+e.q+"-x/k\nreceipt:r\n\nx\x00")
		return []string{line(readAnyFrame(t, c))}
	}},
	{"missing /amq/queue", func(t *testing.T, e diffEnv) []string {
		c := connectRaw(t, e.addr, "1.2")
		send(t, c, "SUBSCRIBE\nid:m\ndestination:/amq/queue/"+e.q+"\nreceipt:r\n\n\x00")
		return []string{line(readAnyFrame(t, c))}
	}},
	{"257 subscriptions", func(t *testing.T, e diffEnv) []string {
		c := connectRaw(t, e.addr, "1.2")
		var out []string
		for i := range 257 {
			send(t, c, fmt.Sprintf("SUBSCRIBE\nid:%d\ndestination:/topic/%s\nreceipt:r%d\n\n\x00", i, e.q, i))
			f := readAnyFrame(t, c)
			if f.Command != "RECEIPT" || i == 256 {
				out = append(out, line(f))
				if f.Command != "RECEIPT" {
					break
				}
			}
		}
		return out
	}},
}

// normaliseTranscript replaces the run's names with placeholders.
func normaliseTranscript(lines []string, q string) []string {
	gen := regexp.MustCompile(`(amq\.gen-|tmp_)[A-Za-z0-9_-]+`)
	out := make([]string, len(lines))
	for i, l := range lines {
		l = strings.ReplaceAll(l, q+"-x", "<x>")
		l = strings.ReplaceAll(l, q, "<q>")
		out[i] = gen.ReplaceAllString(l, "${1}…")
	}
	return out
}

func matchLine(entry, l string) bool {
	if p, ok := strings.CutSuffix(entry, "…"); ok {
		return strings.HasPrefix(l, p)
	}
	return entry == l
}

func TestQpidBrokerJDifferential(t *testing.T) {
	qpid := startQpid(t)
	rabbit := &qpidBroker{URL: amqpURL()}
	gwQpid, _ := startGatewayFor(t, qpid.URL)
	gwRabbit, _ := startGatewayFor(t, rabbit.URL)
	observed := map[int]bool{}
	for si, sc := range brokerScenarios {
		t.Run(sc.name, func(t *testing.T) {
			q := fmt.Sprintf("diff-%s-%d", runID, si)
			qpid.deleteAtCleanup(t, q, mapping.DurableSubscriptionName(q, "d"))
			rabbit.deleteAtCleanup(t, q, mapping.DurableSubscriptionName(q, "d"))
			rl := normaliseTranscript(sc.run(t, diffEnv{addr: gwRabbit.Addr().String(), q: q, broker: rabbit}), q)
			ql := normaliseTranscript(sc.run(t, diffEnv{addr: gwQpid.Addr().String(), q: q, broker: qpid}), q)
			if len(rl) != len(ql) {
				t.Fatalf("transcripts differ in length:\nRabbitMQ: %q\nBroker-J: %q", rl, ql)
			}
			for i := range rl {
				if rl[i] == ql[i] {
					continue
				}
				named := false
				for di, d := range qpidDifferences {
					if d.scenario == sc.name && matchLine(d.rabbitmq, rl[i]) && matchLine(d.qpid, ql[i]) {
						observed[di], named = true, true
					}
				}
				if !named {
					t.Errorf("line %d differs and no entry of qpidDifferences names it:\nRabbitMQ: %s\nBroker-J: %s", i, rl[i], ql[i])
				}
			}
			t.Logf("transcript (RabbitMQ | Broker-J):\n%s", brokerSideBySide(rl, ql))
		})
	}
	for di, d := range qpidDifferences {
		if !observed[di] {
			t.Errorf("qpidDifferences %q (scenario %q) was not observed: the table is stale", d.name, d.scenario)
		}
	}
}

func brokerSideBySide(a, b []string) string {
	var s strings.Builder
	for i := range a {
		fmt.Fprintf(&s, "  %s | %s\n", a[i], b[i])
	}
	return s.String()
}
