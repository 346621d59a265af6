// Package gateway terminates STOMP 1.0/1.1/1.2 sessions and carries them over
// AMQP 0-9-1 to RabbitMQ or another AMQP 0-9-1 broker. The wire behavior is
// specified in shared/design/semantics.md; section numbers in comments refer
// to it.
//
// # Layout
//
// This package is the STOMP session core. Around it, each package owns one
// side of the gateway, and none of them imports this one:
//
//	gateway            Server (listeners, accept loops, Shutdown) and the
//	                   sessions: loop, subscriptions, sends, acks,
//	                   transactions, the outbound writer, ERROR frames
//	gateway/codec      STOMP frames: a limited streaming Reader, escaping,
//	                   AppendFrame (pure)
//	gateway/broker     the AMQP side: dialing and the failover URL list,
//	                   shared pools, broker profiles, coalesced socket
//	                   writes, behind the Conn and Channel interfaces
//	gateway/config     Config, defaults, YAML loading, ${ENV}, validation,
//	                   TLS material
//	gateway/admin      /healthz, /readyz, /metrics, pprof; the Prometheus
//	                   Metrics behind the Observer interface
//	gateway/ws         the WebSocket transport (a net.Conn per upgrade)
//	gateway/auth       bearer tokens (JWT against a JWKS) and acl.rules
//	mapping            destinations and headers ⇄ AMQP plans (pure)
//	mapping/selector   JMS message selectors (pure)
//
// Imports go one way: gateway may import all of them; broker imports config
// and codec; admin imports config and codec; config imports auth (to check
// acl.rules); mapping imports codec and mapping/selector; ws, auth, codec and
// mapping/selector import no other stompgate package.
//
// Token logins and rules (token.go, acl.go, expiry.go): a session's
// identity comes from a verified token or its login; its expiry is a timer
// the loop selects on plus a cutoff in the outbound queue, so nothing is
// written after it; rules are checked by the loop at SEND and SUBSCRIBE and
// again for live subscriptions when Server.Reload signals session.recheck.
//
// # Design
//
// A Server owns the listener and the accept loop (Serve), and tracks its
// sessions so that Shutdown can drain them. Each accepted connection gets one
// session, which owns one AMQP connection opened with the client's own
// credentials.
//
// The session's AMQP channels: one per subscription, opened by SUBSCRIBE,
// and the publisher channel, opened by the first SEND (session.publisher),
// so a subscribe-only session holds none.
//
// Goroutines of a session, and who owns what:
//
//   - The session goroutine (session.run) reads the CONNECT frame itself,
//     opens the AMQP connection and then runs the session loop
//     (session.loop), the single owner of session state: subscriptions,
//     outstanding delivery tags, pending receipts, transactions and
//     flow-control flags. It needs no mutex.
//   - The reader goroutine (session.readLoop) only decodes frames with the
//     codec package's limited Reader and hands them to the loop over an
//     unbuffered-ish channel; when the loop stops taking frames (too many
//     unconfirmed publishes, broker flow control), TCP pushes back.
//   - The writer goroutine (writer.run) alone writes to the net.Conn:
//     frames queued by the loop in the outbound buffer, in batches, plus
//     heart-beat LFs when idle. It acknowledges ack:auto deliveries once
//     their MESSAGE is written (semantics 10.3). A session that sends no
//     heart-beats parks its writer after writerIdleTimeout without work
//     (the goroutine returns) and the next queued frame starts a new one;
//     at most one runs at a time (outbound.writerRunning).
//   - The loop reads the deliveries of the session's first subscription
//     (session.direct) from amqp091-go itself; each further subscription
//     gets a forwarder goroutine (session.forward) that hands its
//     deliveries, then their end, to the loop. When amqp091-go closes a
//     delivery channel, its subscription's cancel and close notifications
//     (buffered, sent before the close) say why (subscription.endEvent).
//   - While more client frames wait, the loop holds the socket writes of
//     its publishes so that consecutive SENDs share one (broker.WriteHolder);
//     it flushes them before it waits for anything (flushBrokerWrites).
//   - The AMQP side runs its own goroutines (package broker's doc), and a
//     WebSocket session has a read pump under its net.Conn (package ws).
//
// Queues and their policies when full: the outbound buffer is capped at
// flow.max_outbound_bytes (one frame always fits); while it is full the
// loop takes no deliveries, so they stay unacked at the broker and prefetch
// stops the flow. Unconfirmed publishes are capped at flow.max_unconfirmed;
// at the cap the loop stops reading. A write that makes no progress for
// flow.write_timeout ends the session as a slow consumer.
//
// Shutdown: a session ends when its loop returns an error. session.end
// queues the ERROR frame for it (errorFrame is the single place where
// errors become ERROR frames), lets the writer flush, closes the AMQP
// connection, half-closes the socket, lingers reading for at most
// stomp.error_linger, and closes (semantics 14.2).
package gateway
