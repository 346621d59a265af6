package codec

// Default limits (semantics 4.5). Config keys in parentheses.
const (
	// DefaultMaxLineBytes bounds one command or header line on the wire,
	// without its EOL (limits.max_header_line).
	DefaultMaxLineBytes = 64 << 10
	// DefaultMaxHeaders bounds the header lines of a frame, repeats
	// included (limits.max_headers).
	DefaultMaxHeaders = 1000
	// DefaultMaxHeaderBytes bounds all header lines of a frame, without
	// their EOLs (limits.max_header_bytes).
	DefaultMaxHeaderBytes = 1 << 20
	// DefaultMaxBody bounds a body, declared by content-length or actual
	// (limits.max_body).
	DefaultMaxBody = 64 << 20
)

// MaxCommandBytes bounds the command line. The longest client command,
// UNSUBSCRIBE, has 11 bytes; a longer line is rejected as "Bad command"
// without buffering further (semantics 4.1).
const MaxCommandBytes = 32

// Limits bounds what a Reader buffers for one frame (semantics 4.5). A field
// that is zero or negative takes its default.
type Limits struct {
	// MaxLineBytes bounds one command or header line on the wire, without EOL.
	MaxLineBytes int
	// MaxHeaders bounds the header lines per frame; repeats count.
	MaxHeaders int
	// MaxHeaderBytes bounds all header lines of a frame, without EOLs.
	MaxHeaderBytes int
	// MaxBody bounds the body, declared (content-length) or actual.
	MaxBody int64
}

// DefaultLimits returns the limits of semantics 4.5.
func DefaultLimits() Limits {
	return Limits{
		MaxLineBytes:   DefaultMaxLineBytes,
		MaxHeaders:     DefaultMaxHeaders,
		MaxHeaderBytes: DefaultMaxHeaderBytes,
		MaxBody:        DefaultMaxBody,
	}
}

// withDefaults replaces unset fields by their defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxLineBytes <= 0 {
		l.MaxLineBytes = DefaultMaxLineBytes
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = DefaultMaxHeaders
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxBody <= 0 {
		l.MaxBody = DefaultMaxBody
	}
	return l
}
