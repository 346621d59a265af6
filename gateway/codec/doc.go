// Package codec is stompgate's STOMP 1.0/1.1/1.2 frame codec.
//
// It is pure: no net, no logging, no AMQP (style practice 2). The session's
// reader goroutine owns a Reader; the writer goroutine calls AppendFrame.
//
// # Decoding
//
// A Reader decodes client frames from a byte stream under explicit Limits
// (line length, header count, header bytes, body size) and MaxCommandBytes.
// Bytes are checked as they arrive, in the manner of net/textproto's
// readLineSlice(lim): no line, header section or body is buffered past its
// limit, and content-length is checked before anything is allocated from it
// (semantics 4.4, 4.5). The result does not depend on how the input is split
// into reads.
//
// # Escaping
//
// Header escaping depends on the negotiated version and on the command
// (semantics 4.3):
//
//	version      inbound                             outbound
//	1.0          none; values left-trimmed of spaces none; unwritable headers left out
//	1.1          \n \c \\ (\r tolerated)             \n \c \\; headers with CR left out
//	1.2          \r \n \c \\                         \r \n \c \\
//	CONNECT, STOMP, CONNECTED, before negotiation: none
//
// # Errors
//
// Every malformed input becomes a *ProtocolError whose Kind is one of the
// sentinels in errors.go, which the gateway turns into an ERROR frame in one
// place (style practice 9). Read errors pass through unchanged, except that
// a stream ending inside a frame gives io.ErrUnexpectedEOF.
//
// The fixture table shared by the codec and session tests is in the
// codectest package.
package codec
