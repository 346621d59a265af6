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

// ErrBadHeartBeat: CONNECT's heart-beat header is not "cx,cy" with each part
// [0-9]+ and at most 2^31−1 (ERROR "Bad CONNECT", semantics 3).
var ErrBadHeartBeat = errors.New("bad heart-beat header")
