package broker

import (
	"context"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/codec"
)

// Qpid Broker-J closes the whole AMQP connection, or drops its socket,
// for requests RabbitMQ answers with a channel error
// (e2e/testdata/qpid/FINDINGS.md). In shared-connection mode that would
// end every session on the pooled connection, so a channel on a Broker-J
// connection refuses them up front with an ERROR that names the limit,
// whatever amqp.profile says. What cannot be checked without asking the
// broker (README "Qpid Broker-J"): consuming or declaring an exclusive
// queue of another connection (530/403) and redeclaring an exchange with
// another type (530).

// isBrokerJ reports whether connection.start came from Qpid Broker-J.
func isBrokerJ(serverProperties amqp.Table) bool {
	if _, ok := serverProperties["qpid.confirmed_publish_supported"]; ok {
		return true
	}
	return strings.Contains(strings.ToLower(productOf(serverProperties)), "qpid")
}

// brokerJChannel is an *amqp.Channel on a Broker-J connection.
type brokerJChannel struct{ *amqp.Channel }

// brokerJExchanges are the amq.* exchanges a Broker-J vhost has, with
// their types; declaring any other amq.* name, or one of these with
// another type, is connection.close 530.
var brokerJExchanges = map[string]string{
	"amq.direct": "direct",
	"amq.topic":  "topic",
	"amq.fanout": "fanout",
	"amq.match":  "headers",
}

func brokerJRefused(detail string) *codec.ProtocolError {
	return &codec.ProtocolError{Message: "Invalid header", Detail: detail + " (Qpid Broker-J would close the AMQP connection)\n"}
}

// QueueDeclare refuses an exclusive durable queue: Broker-J keeps it after
// its connection closes and then lets no other connection declare, use or
// delete it (530), so the next session to touch the name would fail.
func (c brokerJChannel) QueueDeclare(name string, durable, autoDelete, exclusive, noWait bool, args amqp.Table) (amqp.Queue, error) {
	if durable && exclusive {
		return amqp.Queue{}, brokerJRefused("'exclusive' queues must not be durable on broker profile qpid: queue '" + name + "'")
	}
	for k := range args {
		if !brokerJQueueArguments[k] {
			return amqp.Queue{}, brokerJRefused("queue argument '" + k + "' is not supported by broker profile qpid")
		}
	}
	return c.Channel.QueueDeclare(name, durable, autoDelete, exclusive, noWait, args)
}

// brokerJQueueArguments are the queue.declare arguments Broker-J 10.1.0
// accepted live; any other is connection.close 542.
var brokerJQueueArguments = map[string]bool{
	"x-single-active-consumer": true, "x-qpid-priorities": true, "x-qpid-maximum-delivery-count": true,
	"x-qpid-capacity": true, "x-qpid-flow-resume-capacity": true, "qpid.max_count": true, "qpid.max_size": true,
	"qpid.policy_type": true, "maximumMessageTtl": true, "qpid.last_value_queue_key": true,
}

// ExchangeDeclare refuses what Broker-J answers with connection.close:
// a new amq.* name or a standard one with another type (530), and any
// argument (542).
func (c brokerJChannel) ExchangeDeclare(name, kind string, durable, autoDelete, internal, noWait bool, args amqp.Table) error {
	if strings.HasPrefix(name, "amq.") && brokerJExchanges[name] != kind {
		return brokerJRefused("exchange '" + name + "' of type " + kind + " cannot be declared: the amq. prefix is reserved")
	}
	for k := range args {
		return brokerJRefused("exchange argument '" + k + "' is not supported by broker profile qpid")
	}
	return c.Channel.ExchangeDeclare(name, kind, durable, autoDelete, internal, noWait, args)
}

// PublishWithContext refuses an expiration that is not a number: Broker-J
// drops the TCP connection without a close frame.
func (c brokerJChannel) PublishWithContext(ctx context.Context, exchange, key string, mandatory, immediate bool, msg amqp.Publishing) error {
	if !allDigits(msg.Expiration) {
		return brokerJRefused("'expiration' must be a non-negative integer (milliseconds), not '" + msg.Expiration + "'")
	}
	return c.Channel.PublishWithContext(ctx, exchange, key, mandatory, immediate, msg)
}

// allDigits reports whether s is empty or only ASCII digits.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
