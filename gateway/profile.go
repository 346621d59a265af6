package gateway

import (
	amqp "github.com/rabbitmq/amqp091-go"
)

// brokerProfile adapts the AMQP side to what a broker accepts (semantics
// 17). A session picks one right after its AMQP connection opens and
// consults it from the session loop only; profiles are immutable values.
type brokerProfile interface {
	// Name is "rabbitmq", "qpid" or "generic".
	Name() string
	// PublisherConfirms reports whether the broker supports confirm.select;
	// without it, SEND receipts follow a synchronous round trip.
	PublisherConfirms() bool
	// ServerNamedQueues reports whether queue.declare with an empty name
	// gets a broker-generated name (temp queues, semantics 9).
	ServerNamedQueues() bool
	// AdaptPublishing rewrites msg for the broker (e.g. Qpid's absolute
	// expiration) or refuses what the broker cannot do.
	AdaptPublishing(msg *amqp.Publishing) error
	// AdaptQueueArgs rewrites queue.declare arguments, or refuses them with
	// ERROR Invalid header before anything is declared.
	AdaptQueueArgs(args amqp.Table) (amqp.Table, error)
	// AdaptDelivery rewrites a delivery's properties for the MESSAGE frame
	// (e.g. Qpid's absolute expiration back to remaining milliseconds).
	AdaptDelivery(d *amqp.Delivery)
}

// rabbitMQProfile is the reference: everything passes unchanged.
type rabbitMQProfile struct{}

func (rabbitMQProfile) Name() string                                    { return "rabbitmq" }
func (rabbitMQProfile) PublisherConfirms() bool                         { return true }
func (rabbitMQProfile) ServerNamedQueues() bool                         { return true }
func (rabbitMQProfile) AdaptPublishing(*amqp.Publishing) error          { return nil }
func (rabbitMQProfile) AdaptQueueArgs(a amqp.Table) (amqp.Table, error) { return a, nil }
func (rabbitMQProfile) AdaptDelivery(*amqp.Delivery)                    {}

// selectProfile picks the profile for a connection from the configured
// name ("auto" or empty: from the server properties of connection.start).
func selectProfile(configured string, serverProperties amqp.Table) brokerProfile {
	return rabbitMQProfile{}
}
