//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestIdleSessionWakesForDeliveries: a session that sends no heart-beats
// parks its writer goroutine after 1–2 s without work (issue 6); messages
// published after that still arrive, in order, and their ack:auto
// acknowledgements reach the broker (nothing is requeued when the session
// ends).
func TestIdleSessionWakesForDeliveries(t *testing.T) {
	t.Parallel()
	n := newNames(t)
	addr := startGateway(t)
	q := n.queue("idle")
	c := connectRaw(t, addr, "1.2") // no heart-beat header: 0,0
	send(t, c, "SUBSCRIBE\nid:0\ndestination:/queue/"+q+"\nreceipt:sub\n\n\x00")
	expectFrame(t, c, "RECEIPT")
	// Longer than the writer's idle timeout (1 s, parked on the second
	// idle tick): the state under test, not an event to poll for.
	time.Sleep(2500 * time.Millisecond)
	ch := amqpChannel(t)
	const count = 3
	for i := range count {
		if err := ch.PublishWithContext(context.Background(), "", q, false, false, amqp.Publishing{Body: []byte(fmt.Sprint("after idle ", i))}); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	for i := range count {
		f := expectFrame(t, c, "MESSAGE")
		if want := fmt.Sprint("after idle ", i); string(f.Body) != want {
			t.Fatalf("MESSAGE %d body %q, want %q", i, f.Body, want)
		}
	}
	// The broker saw the acks while the session lives: no delivery of the
	// queue is unacknowledged any more.
	deadline := time.Now().Add(20 * time.Second)
	for {
		unacked := queueUnacked(t, q)
		if unacked == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries still unacknowledged at the broker; ack:auto acks of a woken writer did not arrive", unacked)
		}
		time.Sleep(100 * time.Millisecond)
	}
	disconnectRaw(t, c)
}

// queueUnacked is the queue's messages_unacknowledged as rabbitmqctl
// reports it (AMQP does not tell).
func queueUnacked(t *testing.T, queue string) int {
	t.Helper()
	out, err := exec.Command("rabbitmqctl", "-q", "list_queues", "--no-table-headers", "name", "messages_unacknowledged").CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl list_queues: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 2 && fields[0] == queue {
			n, err := strconv.Atoi(fields[1])
			if err != nil {
				t.Fatalf("rabbitmqctl list_queues: %q", line)
			}
			return n
		}
	}
	t.Fatalf("rabbitmqctl list_queues does not list %s:\n%s", queue, out)
	return 0
}
