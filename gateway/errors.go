package gateway

import (
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/codec"
)

// Version is stompgate's version, shown in CONNECTED's server header and in
// the AMQP client properties. cmd/stompgate sets it from its build flags.
var Version = "dev"

// Session-level conditions. Each ends a session; the ones a client can be
// told about become ERROR frames in errorFrame, the single place where that
// happens.
var (
	// errTooManyConnections: limits.max_connections sessions are open.
	errTooManyConnections = errors.New("too many connections")
	// errTooManyFromClient: limits.max_connections_per_client sessions are
	// open from this client address.
	errTooManyFromClient = errors.New("too many connections from this client address")
	// errClientClosed: the client closed its side (EOF) or reset.
	errClientClosed = errors.New("client closed the connection")
	// errClientDisconnected: the client sent DISCONNECT.
	errClientDisconnected = errors.New("client sent DISCONNECT")
	// errHeartbeatTimeout: nothing arrived within the receive interval times
	// heartbeat.tolerance (semantics 3).
	errHeartbeatTimeout = errors.New("heart-beat timeout")
	// errConnectTimeout: no complete CONNECT within limits.connect_timeout.
	errConnectTimeout = errors.New("connect timeout")
	// errSlowConsumer: a socket write made no progress for flow.write_timeout.
	errSlowConsumer = errors.New("slow consumer: write timed out")
	// errShuttingDown: the gateway is shutting down.
	errShuttingDown = errors.New("server shutting down")
	// errKilled: the session was force-closed (shutdown timeout).
	errKilled = errors.New("session force-closed")
	// errTokenExpired: the session's token expired (exp plus
	// auth.jwt.leeway passed) and was not renewed in time.
	errTokenExpired = errors.New("token expired")
)

// CloseReason says why a session ended; it is logged with every session end.
type CloseReason string

// The reasons a session ends.
const (
	CloseClientDisconnect CloseReason = "client_disconnect"
	CloseClientEOF        CloseReason = "client_eof"
	CloseProtocolError    CloseReason = "protocol_error"
	CloseBrokerError      CloseReason = "broker_error"
	CloseHeartbeatTimeout CloseReason = "heartbeat_timeout"
	CloseConnectTimeout   CloseReason = "connect_timeout"
	CloseSlowConsumer     CloseReason = "slow_consumer"
	CloseShutdown         CloseReason = "shutdown"
	CloseInternalError    CloseReason = "internal_error"
	CloseTooMany          CloseReason = "too_many_connections"
	CloseTokenExpired     CloseReason = "token_expired"
)

// closeReasonFor classifies the error that ended a session.
func closeReasonFor(err error) CloseReason {
	var pe *codec.ProtocolError
	var ae *amqp.Error
	switch {
	case err == nil, errors.Is(err, errClientDisconnected):
		return CloseClientDisconnect
	case errors.Is(err, errClientClosed):
		return CloseClientEOF
	case errors.Is(err, errHeartbeatTimeout):
		return CloseHeartbeatTimeout
	case errors.Is(err, errConnectTimeout):
		return CloseConnectTimeout
	case errors.Is(err, errSlowConsumer):
		return CloseSlowConsumer
	case errors.Is(err, errShuttingDown), errors.Is(err, errKilled):
		return CloseShutdown
	case errors.Is(err, errTooManyConnections), errors.Is(err, errTooManyFromClient):
		return CloseTooMany
	case errors.Is(err, errTokenExpired):
		return CloseTokenExpired
	case errors.As(err, &ae), errors.Is(err, errAMQPConnectionDied):
		return CloseBrokerError
	case errors.As(err, &pe):
		return CloseProtocolError
	}
	return CloseInternalError
}

// errAMQPConnectionDied: the AMQP link was lost without a close method.
var errAMQPConnectionDied = errors.New("AMQP connection died")

// connectionDiedError is errAMQPConnectionDied with the local reason
// (a reset, missed heartbeats).
type connectionDiedError struct{ reason string }

func (e *connectionDiedError) Error() string { return "AMQP connection died: " + e.reason }

func (e *connectionDiedError) Is(target error) bool { return target == errAMQPConnectionDied }

// amqpErrorNames maps AMQP reply codes to the ERROR message names the
// plugin uses (semantics 14.3).
var amqpErrorNames = map[int]string{
	amqp.ContentTooLarge:    "content_too_large",
	amqp.NoRoute:            "no_route",
	amqp.NoConsumers:        "no_consumers",
	amqp.ConnectionForced:   "connection_forced",
	amqp.InvalidPath:        "invalid_path",
	amqp.AccessRefused:      "access_refused",
	amqp.NotFound:           "not_found",
	amqp.ResourceLocked:     "resource_locked",
	amqp.PreconditionFailed: "precondition_failed",
	amqp.FrameError:         "frame_error",
	amqp.SyntaxError:        "syntax_error",
	amqp.CommandInvalid:     "command_invalid",
	amqp.ChannelError:       "channel_error",
	amqp.UnexpectedFrame:    "unexpected_frame",
	amqp.ResourceError:      "resource_error",
	amqp.NotAllowed:         "not_allowed",
	amqp.NotImplemented:     "not_implemented",
	amqp.InternalError:      "internal_error",
}

// protocolError builds a *codec.ProtocolError; detail conventionally ends
// in LF, as the plugin's bodies do.
func protocolError(message, detail string) *codec.ProtocolError {
	return &codec.ProtocolError{Message: message, Detail: detail}
}

// errorFrame turns the error that ends a session into the ERROR frame the
// client is told, or nil when nothing can or should be said (client EOF,
// DISCONNECT, slow consumer). receiptID is the receipt of the frame that
// failed, if any. This is the one place where errors become ERROR frames
// (semantics 14.1).
func errorFrame(err error, receiptID string) *codec.Frame {
	var message, detail, subscription string
	var pe *codec.ProtocolError
	var ae *amqp.Error
	var sc *serverCancelError
	switch {
	case err == nil,
		errors.Is(err, errClientClosed),
		errors.Is(err, errClientDisconnected),
		errors.Is(err, errSlowConsumer),
		errors.Is(err, errKilled):
		return nil
	case errors.As(err, &pe):
		message, detail = pe.Message, pe.Detail
		if pe.ReceiptID != "" {
			receiptID = pe.ReceiptID
		}
	case errors.As(err, &sc):
		// rabbitmq_stomp server_cancel_consumer/2.
		message = "Server cancelled subscription" //nolint:misspell // the plugin's exact text
		detail = "The server has canceled a subscription.\nNo more messages will be delivered for \"id='" + sc.subscription + "'\".\n"
		subscription = sc.subscription
	case errors.As(err, &ae):
		// rabbitmq_stomp amqp_death/3: the name of the code, the broker's text.
		name, ok := amqpErrorNames[ae.Code]
		if !ok {
			name = fmt.Sprintf("amqp_error_%d", ae.Code)
		}
		message, detail = name, ae.Reason
	case errors.Is(err, errAMQPConnectionDied):
		reason := "connection lost"
		var cd *connectionDiedError
		if errors.As(err, &cd) {
			reason = cd.reason
		}
		message, detail = "AMQP connection died", "Reason: "+reason+"\n"
	case errors.Is(err, errHeartbeatTimeout):
		message, detail = "Heart-beat timeout", "No data was received from the client within the negotiated heart-beat interval.\n"
	case errors.Is(err, errConnectTimeout):
		message, detail = "Connect timeout", "No complete CONNECT frame arrived in time.\n"
	case errors.Is(err, errTokenExpired):
		message, detail = "Token expired", "The session's token expired; renew it before it expires (SEND to /gateway/token) or connect again with a new one.\n"
	case errors.Is(err, errShuttingDown):
		message, detail = "Server shutting down", "The gateway is shutting down; reconnect later.\n"
	case errors.Is(err, errTooManyConnections):
		message, detail = "Too many connections", "The gateway has reached its limit of concurrent sessions.\n"
	case errors.Is(err, errTooManyFromClient):
		message, detail = "Too many connections", "This client address has reached its limit of concurrent sessions (limits.max_connections_per_client).\n"
	default:
		message, detail = "Internal error", "The gateway failed to process the frame.\n"
	}
	f := &codec.Frame{Command: codec.CmdError, Body: []byte(detail)}
	f.Headers = append(f.Headers,
		codec.Header{Name: "message", Value: message},
		codec.Header{Name: "content-type", Value: "text/plain"},
		codec.Header{Name: "version", Value: "1.0,1.1,1.2"},
	)
	if receiptID != "" {
		f.Headers = append(f.Headers, codec.Header{Name: "receipt-id", Value: receiptID})
	}
	if subscription != "" {
		f.Headers = append(f.Headers, codec.Header{Name: "subscription", Value: subscription})
	}
	return f
}
