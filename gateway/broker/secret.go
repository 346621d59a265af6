package broker

import "errors"

// ErrNoUpdateSecret: the connection cannot take connection.update-secret
// (a shared connection, whose secret belongs to all its sessions, or a
// connection type without the method).
var ErrNoUpdateSecret = errors.New("connection.update-secret not supported on this connection")

// secretUpdater is implemented by connections that can send AMQP 0-9-1
// connection.update-secret: amqpConn, through the embedded
// *amqp.Connection (amqp091-go UpdateSecret), and test fakes.
type secretUpdater interface {
	UpdateSecret(newSecret, reason string) error
}

// UpdateSecret sends connection.update-secret with newSecret on c: with
// RabbitMQ's OAuth2 backend, a renewed token replaces the one the
// connection was opened with, without reconnecting. A shared connection
// refuses (ErrNoUpdateSecret): its sessions share one secret.
func UpdateSecret(c Conn, newSecret, reason string) error {
	if _, shared := c.(*sharedConn); shared {
		return ErrNoUpdateSecret
	}
	u, ok := c.(secretUpdater)
	if !ok {
		return ErrNoUpdateSecret
	}
	return u.UpdateSecret(newSecret, reason)
}
