// Package broker is stompgate's AMQP side: everything between a session and
// the AMQP 0-9-1 broker that is not session state.
//
// It owns:
//   - dialing (NewDialer): the amqp.url failover list, TLS to the broker,
//     the client properties, and the classification of dial errors
//     (ErrAccessRefused, ErrVHostRefused, ErrUnreachable);
//   - the Conn and Channel interfaces the session core talks to, which
//     *amqp.Connection (through amqpConn) and *amqp.Channel satisfy and the
//     session tests fake;
//   - shared-connection pools (NewSharedDialer, amqp.shared_connections);
//   - broker profiles (Profile, SelectProfile): what RabbitMQ, Qpid
//     Broker-J and generic brokers accept, and how messages, queue
//     arguments and deliveries are adapted to them (semantics 17);
//   - coalesced socket writes (coalescingConn, WriteHolder): consecutive
//     publishes of a session share one syscall.
//
// Goroutines: one flusher per broker socket (coalescingConn.flush, ends
// with the socket), one watcher per pooled shared connection
// (pooledConn.watch, ends when the connection closes), and a short-lived
// closer of a redundant authentication connection in dialShared. amqp091-go
// runs its own reader and heartbeater per connection.
//
// Imports: the standard library, amqp091-go, gateway/config (the AMQP
// settings) and gateway/codec (a profile refuses a header with a
// *codec.ProtocolError). Never the session core (package gateway).
package broker
