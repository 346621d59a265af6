package codectest

import (
	"io"
	"strings"

	"github.com/stompgate/stompgate/gateway/codec"
)

// Case is one fixture.
type Case struct {
	Name    string
	Version codec.Version // the Reader's version, or the version AppendFrame writes for
	Limits  codec.Limits  // zero: defaults
	Wire    string

	// Decode: reading Wire gives Frame then io.EOF, or gives Err.
	Decode bool
	// Encode: AppendFrame(nil, Frame, Version, TrailingLF) gives Wire.
	Encode     bool
	TrailingLF bool

	Frame *codec.Frame
	// Err is the expected decode error: a *codec.ProtocolError (every field
	// compared) or io.EOF / io.ErrUnexpectedEOF.
	Err error
}

// Cases is the table. Names are unique.
var Cases = []Case{
	// Round trips: Wire is what AppendFrame writes and what the Reader reads.
	{Name: "1.2 SEND counted body", Version: codec.Version12, Decode: true, Encode: true,
		Wire:  "SEND\ndestination:/queue/a\ncontent-type:text/plain\ncontent-length:5\n\nhello\x00",
		Frame: frame("SEND", "hello", "destination", "/queue/a", "content-type", "text/plain", "content-length", "5")},
	{Name: "1.2 SEND body with NUL", Version: codec.Version12, Decode: true, Encode: true,
		Wire:  "SEND\ndestination:/queue/a\ncontent-length:3\n\na\x00b\x00",
		Frame: frame("SEND", "a\x00b", "destination", "/queue/a", "content-length", "3")},
	{Name: "1.2 SEND escapes", Version: codec.Version12, Decode: true, Encode: true,
		Wire:  "SEND\ndestination:/queue/a\\cb\nx\\nname:one\\ntwo\\rthree\\\\four\n\nbody\x00",
		Frame: frame("SEND", "body", "destination", "/queue/a:b", "x\nname", "one\ntwo\rthree\\four")},
	{Name: "1.2 SUBSCRIBE with receipt", Version: codec.Version12, Decode: true, Encode: true,
		Wire:  "SUBSCRIBE\nid:0\ndestination:/topic/t\nack:client-individual\nreceipt:r-1\n\n\x00",
		Frame: frame("SUBSCRIBE", "", "id", "0", "destination", "/topic/t", "ack", "client-individual", "receipt", "r-1")},
	{Name: "1.2 DISCONNECT without headers", Version: codec.Version12, Decode: true, Encode: true,
		Wire: "DISCONNECT\n\n\x00", Frame: frame("DISCONNECT", "")},
	{Name: "1.2 repeated header kept in order", Version: codec.Version12, Decode: true, Encode: true,
		Wire:  "SEND\ndestination:/queue/first\ndestination:/queue/second\n\n\x00",
		Frame: frame("SEND", "", "destination", "/queue/first", "destination", "/queue/second")},
	{Name: "1.2 empty value", Version: codec.Version12, Decode: true, Encode: true,
		Wire: "BEGIN\ntransaction:\n\n\x00", Frame: frame("BEGIN", "", "transaction", "")},
	{Name: "1.2 UTF-8 header", Version: codec.Version12, Decode: true, Encode: true,
		Wire: "SEND\nnamé:välue ✓\n\n\x00", Frame: frame("SEND", "", "namé", "välue ✓")},
	{Name: "1.1 SEND escapes", Version: codec.Version11, Decode: true, Encode: true,
		Wire:  "SEND\ndestination:/queue/a\\cb\nx:one\\ntwo\\\\three\n\nhi\x00",
		Frame: frame("SEND", "hi", "destination", "/queue/a:b", "x", "one\ntwo\\three")},
	{Name: "1.0 SEND backslash is a byte", Version: codec.Version10, Decode: true, Encode: true,
		Wire:  "SEND\ndestination:/queue/a\\cb\\n\n\nhi\x00",
		Frame: frame("SEND", "hi", "destination", `/queue/a\cb\n`)},
	{Name: "1.0 NACK", Version: codec.Version10, Decode: true, Encode: true,
		Wire: "NACK\nmessage-id:m-1\n\n\x00", Frame: frame("NACK", "", "message-id", "m-1")},
	{Name: "none CONNECT not unescaped", Version: codec.VersionNone, Decode: true, Encode: true,
		Wire:  "CONNECT\naccept-version:1.0,1.1,1.2\nhost:/\nlogin:guest\npasscode:pa\\cs\\s\n\n\x00",
		Frame: frame("CONNECT", "", "accept-version", "1.0,1.1,1.2", "host", "/", "login", "guest", "passcode", `pa\cs\s`)},
	{Name: "none CONNECT not trimmed", Version: codec.VersionNone, Decode: true, Encode: true,
		Wire: "CONNECT\nlogin: guest\n\n\x00", Frame: frame("CONNECT", "", "login", " guest")},
	{Name: "1.2 STOMP not unescaped", Version: codec.Version12, Decode: true, Encode: true,
		Wire: "STOMP\nhost:a\\b\n\n\x00", Frame: frame("STOMP", "", "host", `a\b`)},
	{Name: "1.0 CONNECT not trimmed", Version: codec.Version10, Decode: true, Encode: true,
		Wire: "CONNECT\nlogin:  guest\n\n\x00", Frame: frame("CONNECT", "", "login", "  guest")},

	// Decode only: accepted input that AppendFrame writes differently.
	{Name: "heart-beats before and after", Version: codec.Version12, Decode: true,
		Wire: "\n\r\n\x00\n\nCOMMIT\ntransaction:t\n\n\x00\n\r\n\n", Frame: frame("COMMIT", "", "transaction", "t")},
	{Name: "CRLF lines", Version: codec.Version12, Decode: true,
		Wire: "SEND\r\ndestination:/queue/a\r\n\r\nhi\x00", Frame: frame("SEND", "hi", "destination", "/queue/a")},
	{Name: "CR in body", Version: codec.Version12, Decode: true,
		Wire: "SEND\n\na\rb\r\x00", Frame: frame("SEND", "a\rb\r")},
	{Name: "1.0 values left-trimmed", Version: codec.Version10, Decode: true,
		Wire:  "SEND\ndestination:  /queue/a \ncontent-length: 2\n\nhi\x00",
		Frame: frame("SEND", "hi", "destination", "/queue/a ", "content-length", "2")},
	{Name: "1.1 tolerated \\r", Version: codec.Version11, Decode: true,
		Wire: "SEND\nx:a\\rb\n\n\x00", Frame: frame("SEND", "", "x", "a\rb")},
	{Name: "1.2 unescaped colon in value", Version: codec.Version12, Decode: true,
		Wire: "SEND\ndestination:/queue/a:b\n\n\x00", Frame: frame("SEND", "", "destination", "/queue/a:b")},
	{Name: "1.2 escaped name", Version: codec.Version12, Decode: true,
		Wire: "SEND\na\\cb:c\n\n\x00", Frame: frame("SEND", "", "a:b", "c")},
	{Name: "ACK content-length ignored", Version: codec.Version12, Decode: true,
		Wire: "ACK\nid:1\ncontent-length:99\n\n\x00", Frame: frame("ACK", "", "id", "1", "content-length", "99")},
	{Name: "ACK invalid content-length ignored", Version: codec.Version12, Decode: true,
		Wire: "ACK\nid:1\ncontent-length:abc\n\nxyz\x00", Frame: frame("ACK", "xyz", "id", "1", "content-length", "abc")},
	{Name: "SEND content-length 0", Version: codec.Version12, Decode: true,
		Wire: "SEND\ncontent-length:0\n\n\x00", Frame: frame("SEND", "", "content-length", "0")},
	{Name: "SEND content-length leading zeros", Version: codec.Version12, Decode: true,
		Wire: "SEND\ncontent-length:002\n\nab\x00", Frame: frame("SEND", "ab", "content-length", "002")},
	{Name: "SEND first content-length wins", Version: codec.Version12, Decode: true,
		Wire: "SEND\ncontent-length:1\ncontent-length:5\n\na\x00", Frame: frame("SEND", "a", "content-length", "1", "content-length", "5")},
	{Name: "SEND body to NUL", Version: codec.Version12, Decode: true,
		Wire: "SEND\ndestination:/queue/a\n\nsome body\x00", Frame: frame("SEND", "some body", "destination", "/queue/a")},
	{Name: "body at max", Version: codec.Version12, Limits: codec.Limits{MaxBody: 4}, Decode: true,
		Wire: "SEND\n\nabcd\x00", Frame: frame("SEND", "abcd")},
	{Name: "line at max", Version: codec.Version12, Limits: codec.Limits{MaxLineBytes: 8}, Decode: true,
		Wire: "SEND\nabcd:efg\r\n\n\x00", Frame: frame("SEND", "", "abcd", "efg")},
	{Name: "headers at max", Version: codec.Version12, Limits: codec.Limits{MaxHeaders: 2}, Decode: true,
		Wire: "SEND\na:1\nb:2\n\n\x00", Frame: frame("SEND", "", "a", "1", "b", "2")},
	{Name: "header bytes at max", Version: codec.Version12, Limits: codec.Limits{MaxHeaderBytes: 6}, Decode: true,
		Wire: "SEND\na:1\nb:2\r\n\r\n\x00", Frame: frame("SEND", "", "a", "1", "b", "2")},

	// Encode only: server frames.
	{Name: "1.2 MESSAGE", Version: codec.Version12, Encode: true, TrailingLF: true,
		Wire:  "MESSAGE\nsubscription:0\ndestination:/queue/a\\cb\nmessage-id:T_0@@session-x@@1\nx:a\\rb\\nc\\\\\ncontent-length:5\n\nhello\x00\n",
		Frame: frame("MESSAGE", "hello", "subscription", "0", "destination", "/queue/a:b", "message-id", "T_0@@session-x@@1", "x", "a\rb\nc\\")},
	{Name: "1.2 MESSAGE empty body", Version: codec.Version12, Encode: true,
		Wire: "MESSAGE\nsubscription:0\n\n\x00", Frame: frame("MESSAGE", "", "subscription", "0")},
	{Name: "1.1 MESSAGE leaves out CR", Version: codec.Version11, Encode: true, TrailingLF: true,
		Wire:  "MESSAGE\ndestination:/queue/a\\cb\ny:1\\n2\ncontent-length:2\n\nab\x00\n",
		Frame: frame("MESSAGE", "ab", "destination", "/queue/a:b", "x", "a\rb", "y", "1\n2", "c\rr", "v")},
	{Name: "1.0 MESSAGE leaves out unwritable", Version: codec.Version10, Encode: true,
		Wire:  "MESSAGE\ndestination:/queue/a\\cb\nok:a:b\ncontent-length:1\n\nx\x00",
		Frame: frame("MESSAGE", "x", "destination", `/queue/a\cb`, "a:b", "v", "l\n", "v", "cr", "a\rb", "lf", "a\nb", "ok", "a:b")},
	{Name: "none ERROR", Version: codec.VersionNone, Encode: true, TrailingLF: true,
		Wire:  "ERROR\nmessage:Bad command\ncontent-type:text/plain\nversion:1.0,1.1,1.2\ncontent-length:34\n\nCould not interpret command \"FOO\"\n\x00\n",
		Frame: frame("ERROR", "Could not interpret command \"FOO\"\n", "message", "Bad command", "content-type", "text/plain", "version", "1.0,1.1,1.2")},
	{Name: "1.2 CONNECTED not escaped", Version: codec.Version12, Encode: true, TrailingLF: true,
		Wire:  "CONNECTED\nserver:stompgate/1.0\nsession:session-a\\b\nheart-beat:0,0\nversion:1.2\n\n\x00\n",
		Frame: frame("CONNECTED", "", "server", "stompgate/1.0", "session", `session-a\b`, "heart-beat", "0,0", "version", "1.2")},
	{Name: "1.2 RECEIPT", Version: codec.Version12, Encode: true, TrailingLF: true,
		Wire: "RECEIPT\nreceipt-id:a\\cb\n\n\x00\n", Frame: frame("RECEIPT", "", "receipt-id", "a:b")},

	// Bad input.
	{Name: "unknown command", Version: codec.Version12, Decode: true,
		Wire: "FOO\n\n\x00", Err: badCommand(`FOO`)},
	{Name: "server command", Version: codec.Version12, Decode: true,
		Wire: "MESSAGE\n\n\x00", Err: badCommand(`MESSAGE`)},
	{Name: "lower-case command", Version: codec.VersionNone, Decode: true,
		Wire: "connect\n\n\x00", Err: badCommand(`connect`)},
	{Name: "command with space", Version: codec.Version12, Decode: true,
		Wire: " SEND\n\n\x00", Err: badCommand(` SEND`)},
	{Name: "command too long", Version: codec.Version12, Decode: true,
		Wire: strings.Repeat("X", 40) + "\n\n\x00", Err: badCommand(strings.Repeat("X", 32) + "...")},
	{Name: "command with NUL", Version: codec.Version12, Decode: true,
		Wire: "DISCONNECT\x00", Err: badCommand(`DISCONNECT\x00`)},
	{Name: "command with lone CR", Version: codec.Version12, Decode: true,
		Wire: "SE\rND\n\n\x00", Err: malformed(`CR not followed by LF in command line "SE\rND"`)},
	{Name: "lone CR between frames", Version: codec.Version12, Decode: true,
		Wire: "\rSEND\n\n\x00", Err: malformed(`CR not followed by LF in command line "\rSEND"`)},
	{Name: "header lone CR", Version: codec.Version12, Decode: true,
		Wire: "SEND\na:b\rc\n\n\x00", Err: malformed(`CR not followed by LF in header line "a:b\rc"`)},
	{Name: "header without colon", Version: codec.Version12, Decode: true,
		Wire: "SEND\ndestination\n\n\x00", Err: malformed(`header line without ':' "destination"`)},
	{Name: "empty header name", Version: codec.Version12, Decode: true,
		Wire: "SEND\n:x\n\n\x00", Err: malformed(`empty header name in ":x"`)},
	{Name: "NUL in header", Version: codec.Version12, Decode: true,
		Wire: "SEND\nde\x00st:x\n\n\x00", Err: malformed(`NUL in header section: "de\x00"`)},
	{Name: "NUL instead of empty line", Version: codec.Version12, Decode: true,
		Wire: "DISCONNECT\n\x00", Err: malformed(`NUL in header section: "\x00"`)},
	{Name: "1.2 invalid escape", Version: codec.Version12, Decode: true,
		Wire: "SEND\nx:a\\tb\n\n\x00", Err: malformed(`invalid escape sequence '\t' in header 'x'`)},
	{Name: "1.2 trailing backslash", Version: codec.Version12, Decode: true,
		Wire: "SEND\nx:ab\\\n\n\x00", Err: malformed(`invalid escape sequence '\' in header 'x'`)},
	{Name: "1.1 trailing backslash", Version: codec.Version11, Decode: true,
		Wire: "SEND\nx:ab\\\n\n\x00", Err: malformed(`invalid escape sequence '\' in header 'x'`)},
	{Name: "1.1 invalid escape in name", Version: codec.Version11, Decode: true,
		Wire: "SEND\na\\tb:c\n\n\x00", Err: malformed(`invalid escape sequence '\t' in header 'a\tb'`)},
	{Name: "1.2 invalid escape reports unescaped name", Version: codec.Version12, Decode: true,
		Wire: "SEND\na\\cb:\\x\n\n\x00", Err: malformed(`invalid escape sequence '\x' in header 'a:b'`)},
	{Name: "invalid UTF-8 value", Version: codec.Version12, Decode: true,
		Wire: "SEND\nx:\xff\n\n\x00", Err: malformed(`header not valid UTF-8: "x:\xff"`)},
	{Name: "invalid UTF-8 name before negotiation", Version: codec.VersionNone, Decode: true,
		Wire: "CONNECT\n\xc3:x\n\n\x00", Err: malformed(`header not valid UTF-8: "\xc3:x"`)},
	{Name: "content-length negative", Version: codec.Version12, Decode: true,
		Wire: "SEND\nreceipt:77\ncontent-length:-1\n\n\x00", Err: withReceipt(malformed(`invalid content-length '-1'`), "77")},
	{Name: "content-length not a number", Version: codec.Version12, Decode: true,
		Wire: "SEND\ncontent-length:abc\n\n\x00", Err: malformed(`invalid content-length 'abc'`)},
	{Name: "content-length list", Version: codec.Version12, Decode: true,
		Wire: "SEND\ncontent-length:5, 6\n\nhello\x00", Err: malformed(`invalid content-length '5, 6'`)},
	{Name: "content-length overflow", Version: codec.Version12, Decode: true,
		Wire: "SEND\ncontent-length:99999999999999999999\n\n\x00", Err: malformed(`invalid content-length '99999999999999999999'`)},
	{Name: "1.2 content-length not trimmed", Version: codec.Version12, Decode: true,
		Wire: "SEND\ncontent-length: 2\n\nhi\x00", Err: malformed(`invalid content-length ' 2'`)},
	{Name: "content-length empty", Version: codec.Version12, Decode: true,
		Wire: "SEND\ncontent-length:\n\n\x00", Err: malformed(`invalid content-length ''`)},
	{Name: "content-length too large", Version: codec.Version12, Limits: codec.Limits{MaxBody: 10}, Decode: true,
		Wire: "SEND\nreceipt:r\ncontent-length:11\n\n", Err: withReceipt(tooLarge(`content-length 11 exceeds limits.max_body (10 bytes)`), "r")},
	{Name: "no NUL after counted body", Version: codec.Version12, Decode: true,
		Wire: "SEND\nreceipt:r\\c1\ncontent-length:2\n\nabc\x00", Err: withReceipt(malformed(`no NUL after the body of content-length 2`), "r:1")},
	{Name: "body too large", Version: codec.Version12, Limits: codec.Limits{MaxBody: 4}, Decode: true,
		Wire: "SEND\nreceipt:r\n\nabcde\x00", Err: withReceipt(tooLarge(`body longer than limits.max_body (4 bytes)`), "r")},
	{Name: "ACK body too large", Version: codec.Version12, Limits: codec.Limits{MaxBody: 4}, Decode: true,
		Wire: "ACK\ncontent-length:1\n\nabcde\x00", Err: tooLarge(`body longer than limits.max_body (4 bytes)`)},
	{Name: "header line too long", Version: codec.Version12, Limits: codec.Limits{MaxLineBytes: 8}, Decode: true,
		Wire: "SEND\nabcd:efgh\n\n\x00", Err: tooLarge(`header line longer than limits.max_header_line (8 bytes): "abcd:efgh"`)},
	{Name: "header line too long, CR at limit", Version: codec.Version12, Limits: codec.Limits{MaxLineBytes: 8}, Decode: true,
		Wire: "SEND\nabcd:efg\rh\n\n\x00", Err: tooLarge(`header line longer than limits.max_header_line (8 bytes): "abcd:efg\rh"`)},
	{Name: "too many headers", Version: codec.Version12, Limits: codec.Limits{MaxHeaders: 2}, Decode: true,
		Wire: "SEND\na:1\nb:2\nc:3\n\n\x00", Err: tooLarge(`more than limits.max_headers (2) header lines`)},
	{Name: "header bytes too many", Version: codec.Version12, Limits: codec.Limits{MaxHeaderBytes: 5}, Decode: true,
		Wire: "SEND\na:1\nb:2\n\n\x00", Err: tooLarge(`header section longer than limits.max_header_bytes (5 bytes)`)},

	// Truncated input.
	{Name: "empty stream", Version: codec.Version12, Decode: true, Wire: "", Err: io.EOF},
	{Name: "only heart-beats", Version: codec.Version12, Decode: true, Wire: "\n\r\n\x00\n", Err: io.EOF},
	{Name: "ends after CR", Version: codec.Version12, Decode: true, Wire: "\n\r", Err: io.ErrUnexpectedEOF},
	{Name: "ends in command", Version: codec.Version12, Decode: true, Wire: "SEN", Err: io.ErrUnexpectedEOF},
	{Name: "ends in headers", Version: codec.Version12, Decode: true, Wire: "SEND\ndest", Err: io.ErrUnexpectedEOF},
	{Name: "ends in body", Version: codec.Version12, Decode: true, Wire: "SEND\n\nabc", Err: io.ErrUnexpectedEOF},
	{Name: "ends in counted body", Version: codec.Version12, Decode: true, Wire: "SEND\ncontent-length:5\n\nab", Err: io.ErrUnexpectedEOF},
	{Name: "ends before NUL of counted body", Version: codec.Version12, Decode: true, Wire: "SEND\ncontent-length:2\n\nab", Err: io.ErrUnexpectedEOF},
}

// frame builds a Frame from name/value pairs. An empty body is nil, as the
// Reader returns it.
func frame(cmd, body string, nameValues ...string) *codec.Frame {
	f := &codec.Frame{Command: cmd}
	if body != "" {
		f.Body = []byte(body)
	}
	for i := 0; i+1 < len(nameValues); i += 2 {
		f.Headers.Add(nameValues[i], nameValues[i+1])
	}
	return f
}

func badCommand(cmd string) *codec.ProtocolError {
	return &codec.ProtocolError{Message: "Bad command", Detail: `Could not interpret command "` + cmd + "\"\n", Kind: codec.ErrBadCommand}
}

func malformed(detail string) *codec.ProtocolError {
	return &codec.ProtocolError{Message: "Malformed frame", Detail: detail + "\n", Kind: codec.ErrMalformedFrame}
}

func tooLarge(detail string) *codec.ProtocolError {
	return &codec.ProtocolError{Message: "Frame too large", Detail: detail + "\n", Kind: codec.ErrFrameTooLarge}
}

func withReceipt(e *codec.ProtocolError, receipt string) *codec.ProtocolError {
	e.ReceiptID = receipt
	return e
}
