//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if err := checkBroker(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: RabbitMQ is not reachable at %s: %v\n"+
			"e2e: start it with scripts/ensure-rabbitmq.sh (or `rabbitmq-server -detached`), "+
			"or point AMQP_URL at a running broker\n", amqpURL(), err)
		os.Exit(1)
	}
	if target := externalTarget(); target != "" {
		c, err := net.DialTimeout("tcp", target, 3*time.Second)
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: STOMPGATE_E2E_TARGET=%s is not reachable: %v\n", target, err)
			os.Exit(1)
		}
		_ = c.Close()
	}
	// Every session goroutine of the gateway, every go-stomp and amqp091-go
	// goroutine must be gone when the tests end (style.md practice 14).
	goleak.VerifyTestMain(m)
}

// amqpURL is the broker the gateway and the tests' AMQP clients use.
func amqpURL() string {
	if u := os.Getenv("AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

// externalTarget is the STOMP server to test instead of the in-process
// gateway, or "".
func externalTarget() string { return os.Getenv("STOMPGATE_E2E_TARGET") }

// external reports whether the tests run against an external STOMP server.
func external() bool { return externalTarget() != "" }

func checkBroker() error {
	conn, err := amqp.DialConfig(amqpURL(), amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		return err
	}
	return conn.Close()
}
