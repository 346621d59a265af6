//go:build e2e

package e2e

import (
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/config"
)

// TestQpidBrokerJScriptingClients runs every scripting client (stomp.py,
// stomper, Ruby stomp, Net::Stomp, php-stomp) through stompgate in front
// of Qpid Broker-J (issue 15): the same script and checks as
// TestScriptingClients against RabbitMQ.
func TestQpidBrokerJScriptingClients(t *testing.T) {
	broker := startQpid(t)
	srv, _ := startGatewayFor(t, broker.URL)
	host, port, err := net.SplitHostPort(srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, client := range scriptingClients() {
		t.Run(client.name, func(t *testing.T) {
			t.Parallel()
			requireClient(t, client)
			n := newNames(t)
			env := clientEnv(host, port, client, map[string]string{
				"E2E_QUEUE":      "qpid-" + n.queue("q"),
				"E2E_ACK_QUEUE":  "qpid-" + n.queue("ack"),
				"E2E_TOPIC_KEY":  n.key("fanout"),
				"E2E_DIRECT_KEY": n.key("direct"),
			})
			broker.deleteAtCleanup(t, env["E2E_QUEUE"], env["E2E_ACK_QUEUE"])
			steps := runClient(t, client, env)
			checkClientSteps(t, client, env, steps)
			broker.expectDrained(t, env["E2E_ACK_QUEUE"])
		})
	}
}

// expectDrained checks that queue is empty once its consumers are gone:
// the client's ACKs reached Broker-J.
func (q *qpidBroker) expectDrained(t *testing.T, queue string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var st amqp.Queue
		err := q.do(t, "passive declare "+queue, func(ch *amqp.Channel) (err error) {
			st, err = ch.QueueDeclarePassive(queue, true, false, false, false, nil)
			return err
		})
		if err != nil {
			t.Fatalf("passive declare %q: %v", queue, err)
		}
		if st.Consumers == 0 {
			if st.Messages != 0 {
				t.Errorf("queue %q holds %d messages after the client ACKed everything", queue, st.Messages)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue %q still has %d consumers 5s after the client ended", queue, st.Consumers)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestQpidBrokerJBrowserStompJS: @stomp/stompjs in headless Chromium over
// the gateway's WebSocket, in front of Qpid Broker-J (the page of
// TestBrowserStompJSOverWebSocket: connect, subscribe, send, receive, ACK).
func TestQpidBrokerJBrowserStompJS(t *testing.T) {
	chromium := chromiumPath(t)
	ensureStompJS(t)
	broker := startQpid(t)

	page, web := servePage(t)
	pageHost := web.Listener.Addr().String()

	srv, _ := startGatewayFor(t, broker.URL, func(c *config.Config) {
		c.WebSocket.Listen = "127.0.0.1:0"
		c.WebSocket.AllowedOrigins = []string{pageHost}
	})
	queue := "qpid-" + newNames(t).queue("browser")
	broker.deleteAtCleanup(t, queue)
	pageURL := web.URL + "/index.html?" + url.Values{
		"ws":    {"ws://" + srv.WebSocketAddr().String() + "/ws"},
		"queue": {queue},
	}.Encode()

	dom, _ := dumpDOM(t, chromium, pageURL)
	page.mu.Lock()
	posted := page.result
	page.mu.Unlock()
	want := "OK version=1.2 protocol=v12.stomp body=hello from chromium " + queue
	if !strings.Contains(string(dom), `<pre id="result">`+want+`</pre>`) {
		t.Errorf("the page's DOM does not show %q:\n%s\nposted result: %q", want, dom, posted)
	}
	if posted != want {
		t.Errorf("the page posted %q, want %q", posted, want)
	}
	if n, err := broker.depth(t, queue); err != nil || n != 0 {
		t.Errorf("queue %s holds %d messages after the browser's ACK (err %v), want 0", queue, n, err)
	}
}
