package codec

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// escaping is how header names and values are (un)escaped for one frame
// (semantics 4.3).
type escaping uint8

const (
	// escapeNone: CONNECT, STOMP, CONNECTED and every frame before
	// negotiation. STOMP 1.2: "CONNECT and CONNECTED frames do not escape".
	escapeNone escaping = iota
	// escape10: STOMP 1.0 has no escaping; inbound values are left-trimmed
	// of spaces (rabbitmq_stomp util trim_headers/1).
	escape10
	// escape11: \n \c \\ (and \r tolerated inbound).
	escape11
	// escape12: \r \n \c \\.
	escape12
)

// escapingFor returns the escaping of a frame with command cmd in a session
// at version v.
func escapingFor(cmd string, v Version) escaping {
	switch cmd {
	case CmdConnect, CmdStomp, CmdConnected:
		return escapeNone
	}
	switch v {
	case Version10:
		return escape10
	case Version11:
		return escape11
	case Version12:
		return escape12
	}
	return escapeNone
}

// appendUnescaped appends the unescaped form of b to dst. On an invalid
// escape it returns ok=false and the offending sequence (e.g. `\t`, or `\`
// for a trailing backslash).
func appendUnescaped(dst, b []byte, mode escaping) (out []byte, bad string, ok bool) {
	if mode < escape11 || bytes.IndexByte(b, '\\') < 0 {
		return append(dst, b...), "", true
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		if i+1 == len(b) {
			return dst, `\`, false
		}
		i++
		switch b[i] {
		case 'n':
			dst = append(dst, '\n')
		case 'c':
			dst = append(dst, ':')
		case '\\':
			dst = append(dst, '\\')
		case 'r':
			// STOMP 1.2 defines \r; 1.1 does not, but clients send it and
			// semantics 4.3 tolerates it.
			dst = append(dst, '\r')
		default:
			return dst, `\` + printable(b[i:i+1]), false
		}
	}
	return dst, "", true
}

// writable reports whether a header can be written unescaped (STOMP 1.0,
// CONNECTED, before negotiation) without breaking the frame: semantics 4.3
// leaves out a header whose name has ':', CR or LF or whose value has CR or
// LF.
func writable(h Header) bool {
	return !strings.ContainsAny(h.Name, ":\r\n") && !strings.ContainsAny(h.Value, "\r\n")
}

// appendEscaped appends s escaped for STOMP 1.1 (cr=false) or 1.2 (cr=true).
func appendEscaped(dst []byte, s string, cr bool) []byte {
	if !strings.ContainsAny(s, "\r\n:\\") {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\n':
			dst = append(dst, '\\', 'n')
		case ':':
			dst = append(dst, '\\', 'c')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\r':
			if cr {
				dst = append(dst, '\\', 'r')
			} else {
				dst = append(dst, c)
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// TrimLeft10 left-trims every value of h of spaces, in place: STOMP 1.0
// trimming (semantics 4.3, rabbitmq_stomp util trim_headers/1). The Reader
// does this itself for frames read at Version10; the session applies it to
// the CONNECT headers, which are read before 1.0 is negotiated (semantics 2.2).
func TrimLeft10(h Headers) {
	for i := range h {
		h[i].Value = strings.TrimLeft(h[i].Value, " ")
	}
}

// quoteLimit bounds how much of an offending line an error detail quotes.
const quoteLimit = 64

// quoted returns b, truncated to max bytes ("..." marks the cut), in double
// quotes, with control bytes and invalid UTF-8 written as Go escapes so an
// ERROR body stays readable text.
func quoted(b []byte, max int) string {
	return `"` + truncated(b, max) + `"`
}

// truncated is quoted without the quotes.
func truncated(b []byte, max int) string {
	cut := len(b) > max
	if cut {
		b = b[:max]
	}
	s := printable(b)
	if cut {
		s += "..."
	}
	return s
}

// printable writes control bytes and invalid UTF-8 in b as \xNN (or \t, \r,
// \n), everything else as is.
func printable(b []byte) string {
	clean := true
	for _, c := range b {
		if c < 0x20 || c >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return string(b)
	}
	const hex = "0123456789abcdef"
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		switch {
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r == utf8.RuneError && size <= 1, r < 0x20, r == 0x7f:
			sb.WriteString(`\x`)
			sb.WriteByte(hex[b[0]>>4])
			sb.WriteByte(hex[b[0]&0xf])
		default:
			sb.Write(b[:size])
		}
		b = b[size:]
	}
	return sb.String()
}
