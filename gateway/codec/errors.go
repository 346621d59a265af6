package codec

import "errors"

// Sentinel kinds carried by *ProtocolError.Kind.
var (
	// ErrMalformedFrame: the bytes are not a STOMP frame (ERROR "Malformed frame").
	ErrMalformedFrame = errors.New("malformed frame")
	// ErrFrameTooLarge: a configured limit was exceeded (ERROR "Frame too large").
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrBadCommand: the command is not a client command (ERROR "Bad command").
	ErrBadCommand = errors.New("bad command")
)
