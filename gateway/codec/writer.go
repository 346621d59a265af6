package codec

import "strconv"

// AppendFrame appends the wire form of f for a session at version v and
// returns the extended buffer (semantics 4.6): the command, the headers in
// the given order escaped per semantics 4.3, then for MESSAGE and ERROR with
// a non-empty body a content-length header (callers never put one in
// f.Headers), the empty line, the body, NUL, and one LF if trailingLF. Lines
// end in LF only. It allocates only to grow dst.
//
// Escaping follows the command and v: none for CONNECT, STOMP, CONNECTED and
// VersionNone; none for 1.0; \n \c \\ for 1.1; \r \n \c \\ for 1.2. Headers
// that cannot be written in that escaping are left out: unescaped, a name
// with ':', CR or LF or a value with CR or LF; in 1.1, a name or value with
// CR (1.1 has no \r).
func AppendFrame(dst []byte, f *Frame, v Version, trailingLF bool) []byte {
	dst = AppendFrameHead(dst, f, v)
	dst = append(dst, f.Body...)
	return AppendFrameTail(dst, trailingLF)
}

// AppendFrameTail appends what follows a frame's body: NUL, and one LF if
// trailingLF.
func AppendFrameTail(dst []byte, trailingLF bool) []byte {
	dst = append(dst, 0)
	if trailingLF {
		dst = append(dst, '\n')
	}
	return dst
}

// AppendFrameHead appends what precedes f's body in AppendFrame: command,
// headers, content-length and the empty line. A writer that sends the body
// from its own buffer (writev) writes head, f.Body and AppendFrameTail.
func AppendFrameHead(dst []byte, f *Frame, v Version) []byte {
	mode := escapingFor(f.Command, v)
	dst = append(dst, f.Command...)
	dst = append(dst, '\n')
	for _, h := range f.Headers {
		switch mode {
		case escapeNone, escape10:
			if !writable(h) {
				continue
			}
			dst = append(dst, h.Name...)
			dst = append(dst, ':')
			dst = append(dst, h.Value...)
		case escape11, escape12:
			if mode == escape11 && (containsCR(h.Name) || containsCR(h.Value)) {
				continue
			}
			dst = appendEscaped(dst, h.Name, mode == escape12)
			dst = append(dst, ':')
			dst = appendEscaped(dst, h.Value, mode == escape12)
		}
		dst = append(dst, '\n')
	}
	if len(f.Body) > 0 && (f.Command == CmdMessage || f.Command == CmdError) {
		dst = append(dst, "content-length:"...)
		dst = strconv.AppendInt(dst, int64(len(f.Body)), 10)
		dst = append(dst, '\n')
	}
	return append(dst, '\n')
}

func containsCR(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' {
			return true
		}
	}
	return false
}
