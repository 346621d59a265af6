// Package mapping turns STOMP frames into AMQP 0-9-1 plans and AMQP
// deliveries into STOMP MESSAGE headers, following semantics.md sections 5–10.
//
// It is pure: no I/O, no logging, no state. Every function takes the
// headers of one frame (already unescaped and, in 1.0, trimmed by the codec)
// and returns values the gateway acts on. The gateway owns caches (which
// queues a session already declared), channels and subscriptions.
//
// Errors a client caused are *codec.ProtocolError values whose Message and
// Detail are the ERROR frame's `message` header and body, byte for byte as
// semantics.md (and, where it mirrors it, rabbitmq_stomp 3.10) gives them.
// Any other error would be a bug.
package mapping
