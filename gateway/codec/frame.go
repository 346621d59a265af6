package codec

// Version is a negotiated STOMP protocol version.
type Version uint8

// The STOMP versions stompgate speaks. VersionNone is the state before
// CONNECT has been negotiated: no escaping, no trimming.
const (
	VersionNone Version = iota
	Version10
	Version11
	Version12
)

// String returns the wire form ("1.0", "1.1", "1.2"), or "" for VersionNone.
func (v Version) String() string {
	switch v {
	case Version10:
		return "1.0"
	case Version11:
		return "1.1"
	case Version12:
		return "1.2"
	}
	return ""
}

// Client and server commands (STOMP 1.2 "Client Frames", "Server Frames").
const (
	CmdConnect     = "CONNECT"
	CmdStomp       = "STOMP"
	CmdSend        = "SEND"
	CmdSubscribe   = "SUBSCRIBE"
	CmdUnsubscribe = "UNSUBSCRIBE"
	CmdAck         = "ACK"
	CmdNack        = "NACK"
	CmdBegin       = "BEGIN"
	CmdCommit      = "COMMIT"
	CmdAbort       = "ABORT"
	CmdDisconnect  = "DISCONNECT"

	CmdConnected = "CONNECTED"
	CmdMessage   = "MESSAGE"
	CmdReceipt   = "RECEIPT"
	CmdError     = "ERROR"
)

// Header is one header line, after unescaping (decode) or before escaping
// (encode).
type Header struct {
	Name  string
	Value string
}

// Headers keeps header lines in wire order. Repeats are kept; lookups
// return the first occurrence (STOMP 1.2: repeated header, first value wins).
type Headers []Header

// Get returns the value of the first header called name.
func (h Headers) Get(name string) (string, bool) {
	for i := range h {
		if h[i].Name == name {
			return h[i].Value, true
		}
	}
	return "", false
}

// Value returns the value of the first header called name, or "".
func (h Headers) Value(name string) string {
	v, _ := h.Get(name)
	return v
}

// Add appends a header line.
func (h *Headers) Add(name, value string) {
	*h = append(*h, Header{Name: name, Value: value})
}

// Frame is one STOMP frame.
type Frame struct {
	Command string
	Headers Headers
	Body    []byte
}

// ProtocolError is an error that becomes a STOMP ERROR frame: Message is the
// ERROR's `message` header, Detail its body, ReceiptID the `receipt-id`
// header when the failing frame asked for a receipt. Kind, when set, is one
// of the codec's sentinel errors and is what errors.Is matches.
type ProtocolError struct {
	Message   string
	Detail    string
	ReceiptID string
	Kind      error
}

func (e *ProtocolError) Error() string {
	if e.Detail == "" {
		return e.Message
	}
	return e.Message + ": " + e.Detail
}

// Unwrap returns Kind, so errors.Is(err, codec.ErrFrameTooLarge) works.
func (e *ProtocolError) Unwrap() error { return e.Kind }
