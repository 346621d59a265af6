package codec

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"unicode/utf8"
)

// The Reader's bufio.Reader starts at minReadBufferSize, enough for a
// CONNECT, a SUBSCRIBE and heart-beats, so an idle session holds little.
// When a read fills the buffer (the client streams), the next frame that
// starts with nothing buffered gets one twice the size, up to
// maxReadBufferSize (nats-server sizes its read buffer the same way). Lines
// longer than the buffer are assembled in Reader.line, bounded by the line
// limit; large bodies are read past the buffer.
const (
	minReadBufferSize = 512
	maxReadBufferSize = 8 << 10
)

// eagerBodyBytes is the largest counted body allocated in one piece before
// its bytes arrive. Above it the body grows as bytes arrive (up to the
// checked content-length), so a client cannot make the gateway hold
// limits.max_body per connection by only announcing a large body.
const eagerBodyBytes = 1 << 20

// PooledBodyMin is the smallest counted body a Reader takes from the
// allocator of SetBodyAllocator; smaller ones are allocated as usual.
const PooledBodyMin = 16 << 10

// retainedHeaderBytes caps the scratch buffer kept between frames.
const retainedHeaderBytes = 64 << 10

// Reader decodes client frames from a byte stream under Limits (semantics 4,
// style practice 2). It is not safe for concurrent use: the session's reader
// goroutine owns it.
//
// A *ProtocolError, or a read error in the middle of a frame, is sticky:
// every later ReadFrame returns it again. A read error between frames (e.g.
// a deadline while waiting for the next frame) is not; ReadFrame may be
// called again.
type Reader struct {
	br      *bufio.Reader
	src     fillReporter // what br reads from
	bufSize int          // br's size
	lim     Limits
	version Version
	err     error // sticky error, see the type comment

	// bodyAlloc supplies counted bodies of PooledBodyMin up to
	// eagerBodyBytes bytes; nil: make.
	bodyAlloc func(n int) []byte

	line  []byte       // a line that spans buffer refills; at most limit+1 bytes
	hbuf  []byte       // unescaped names and values of the current frame
	spans []headerSpan // where each header of the current frame ends in hbuf
}

// headerSpan locates header i in Reader.hbuf: its name is
// hbuf[spans[i-1].valueEnd:nameEnd] and its value hbuf[nameEnd:valueEnd].
type headerSpan struct{ nameEnd, valueEnd int }

// NewReader returns a Reader over r, wrapped in a bufio.Reader, with lim
// (unset fields take their defaults). Frames are read as VersionNone until
// SetVersion.
func NewReader(r io.Reader, lim Limits) *Reader {
	rd := &Reader{src: fillReporter{r: r}, bufSize: minReadBufferSize, lim: lim.withDefaults()}
	rd.br = bufio.NewReaderSize(&rd.src, rd.bufSize)
	return rd
}

// SetBodyAllocator makes the Reader take counted bodies of PooledBodyMin
// bytes or more (up to the size it allocates in one piece) from alloc,
// which must return a slice of length n whose contents do not matter, e.g.
// from a pool. The caller owns every frame's body and decides when its
// buffer may be used again.
func (r *Reader) SetBodyAllocator(alloc func(n int) []byte) { r.bodyAlloc = alloc }

// fillReporter notes when a read filled all the room it was given. carry
// holds bytes that were buffered when the buffer grew; they are read first.
type fillReporter struct {
	r      io.Reader
	filled bool // sticky until the Reader grows its buffer
	carry  []byte
}

func (f *fillReporter) Read(p []byte) (int, error) {
	if len(f.carry) > 0 {
		n := copy(p, f.carry)
		f.carry = f.carry[n:]
		return n, nil
	}
	n, err := f.r.Read(p)
	if n > 0 && n == len(p) {
		f.filled = true
	}
	return n, err
}

// growBuffer doubles the read buffer, up to maxReadBufferSize, once a read
// has filled it. Called between frames; bytes still buffered move to the
// new buffer through carry.
func (r *Reader) growBuffer() {
	if !r.src.filled || r.bufSize >= maxReadBufferSize {
		return
	}
	r.src.filled = false
	if n := r.br.Buffered(); n > 0 {
		rest, _ := r.br.Peek(n)
		r.src.carry = append(r.src.carry[:0:0], rest...)
	}
	r.bufSize *= 2
	r.br = bufio.NewReaderSize(&r.src, r.bufSize)
}

// SetVersion sets the negotiated version, which decides header unescaping and
// trimming for the frames read after this call (semantics 4.3).
func (r *Reader) SetVersion(v Version) { r.version = v }

// ReadFrame reads the next client frame. LF, CRLF and NUL octets between
// frames are skipped (heart-beats, `\0\n` endings; semantics 4.1).
//
// It returns io.EOF only when the stream ends cleanly between frames, and
// io.ErrUnexpectedEOF when it ends inside a frame. Malformed input gives a
// *ProtocolError whose Kind is ErrMalformedFrame, ErrFrameTooLarge or
// ErrBadCommand. Other read errors are returned as they come, so
// errors.Is(err, os.ErrDeadlineExceeded) works.
//
// Frame strings and Body do not alias the Reader's buffers.
func (r *Reader) ReadFrame() (*Frame, error) {
	if r.err != nil {
		return nil, r.err
	}
	r.growBuffer()
	if err := r.skipBetweenFrames(); err != nil {
		return nil, err
	}
	f, err := r.readFrame()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		r.err = err
		return nil, err
	}
	return f, nil
}

// skipBetweenFrames discards LF, CRLF and NUL octets up to the first byte of
// a frame. It returns io.EOF if the stream ends there.
func (r *Reader) skipBetweenFrames() error {
	for {
		buf, err := r.buffered()
		if err != nil {
			return err
		}
		i := 0
		for i < len(buf) && (buf[i] == '\n' || buf[i] == 0) {
			i++
		}
		if i > 0 {
			r.discard(i)
			continue
		}
		if buf[0] != '\r' {
			return nil
		}
		pair, err := r.br.Peek(2)
		if len(pair) < 2 {
			if errors.Is(err, io.EOF) {
				// A lone CR, then the end: part of a frame that never came.
				r.err = io.ErrUnexpectedEOF
				return r.err
			}
			return err
		}
		if pair[1] != '\n' {
			return nil // the command line reports the lone CR
		}
		r.discard(2)
	}
}

// buffered returns the buffered bytes, reading more if there are none. The
// slice is valid until the next read.
func (r *Reader) buffered() ([]byte, error) {
	n := r.br.Buffered()
	if n == 0 {
		if _, err := r.br.Peek(1); err != nil {
			return nil, err
		}
		n = r.br.Buffered()
	}
	b, _ := r.br.Peek(n)
	return b, nil
}

// discard drops n bytes that buffered returned.
func (r *Reader) discard(n int) {
	_, _ = r.br.Discard(n) // cannot fail: the bytes are buffered
}

// lineFault is why readLine returned a line that must be rejected.
type lineFault uint8

const (
	lineOK      lineFault = iota
	lineTooLong           // more than limit bytes before the EOL
	lineNUL               // a NUL before the EOL
	lineLoneCR            // a CR not followed by LF (semantics 4.1)
)

// readLine reads one line ending in LF or CRLF and returns it without the
// EOL. Bytes are checked as they arrive, like net/textproto's
// readLineSlice(lim): at most limit+1 bytes of a line are ever held.
//
// The fault is decided by the first offending byte in stream order, so the
// result does not depend on how the input is split into reads. For
// lineTooLong the returned line is a prefix; for lineNUL it is the part
// before the NUL. The slice is valid until the next read.
func (r *Reader) readLine(limit int) ([]byte, lineFault, error) {
	r.line = r.line[:0]
	for {
		buf, err := r.buffered()
		if err != nil {
			return nil, lineOK, err
		}
		lf := bytes.IndexByte(buf, '\n')
		seg := buf
		if lf >= 0 {
			seg = buf[:lf]
		}
		nul := bytes.IndexByte(seg, 0)
		scan := seg
		if nul >= 0 {
			scan = seg[:nul]
		}
		// Too long once byte[limit] is known not to be the CR of a CRLF
		// (it is not a CR, or another byte follows it before the LF).
		if total := len(r.line) + len(scan); total > limit {
			var atLimit byte
			if limit < len(r.line) {
				atLimit = r.line[limit]
			} else {
				atLimit = scan[limit-len(r.line)]
			}
			if atLimit != '\r' || total > limit+1 {
				// Keep enough of the line to quote it in the error.
				r.line = append(r.line, scan[:min(len(scan), quoteLimit+1)]...)
				return r.line, lineTooLong, nil
			}
		}
		if nul >= 0 {
			r.line = append(r.line, scan...)
			return r.line, lineNUL, nil
		}
		if lf < 0 {
			r.line = append(r.line, seg...)
			r.discard(len(buf))
			continue
		}
		line := seg
		if len(r.line) > 0 {
			r.line = append(r.line, seg...)
			line = r.line
		}
		r.discard(lf + 1)
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if bytes.IndexByte(line, '\r') >= 0 {
			return line, lineLoneCR, nil
		}
		return line, lineOK, nil
	}
}

// readFrame reads one frame whose first byte is buffered.
func (r *Reader) readFrame() (*Frame, error) {
	line, fault, err := r.readLine(MaxCommandBytes)
	if err != nil {
		return nil, err
	}
	switch fault {
	case lineTooLong:
		return nil, badCommand(truncated(line, MaxCommandBytes))
	case lineNUL:
		return nil, badCommand(printable(line) + `\x00`)
	case lineLoneCR:
		return nil, malformed("CR not followed by LF in command line " + quoted(line, quoteLimit))
	}
	cmd := clientCommand(line)
	if cmd == "" {
		return nil, badCommand(printable(line))
	}
	f := &Frame{Command: cmd}
	mode := escapingFor(cmd, r.version)
	if f.Headers, err = r.readHeaders(mode); err != nil {
		return nil, err
	}
	receipt, _ := f.Headers.Get("receipt")
	length, counted := int64(0), false
	if cl, ok := f.Headers.Get("content-length"); ok && cmd == CmdSend {
		// semantics 4.4: only SEND honours content-length; checked
		// before any body byte is buffered.
		n, valid := parseContentLength(cl)
		switch {
		case !valid:
			return nil, withReceipt(malformed("invalid content-length '"+truncated([]byte(cl), quoteLimit)+"'"), receipt)
		case n > r.lim.MaxBody:
			return nil, withReceipt(tooLarge("content-length "+cl+" exceeds limits.max_body ("+strconv.FormatInt(r.lim.MaxBody, 10)+" bytes)"), receipt)
		}
		length, counted = n, true
	}
	if counted {
		f.Body, err = r.readCountedBody(length)
	} else {
		f.Body, err = r.readBodyToNUL()
	}
	if err != nil {
		var pe *ProtocolError
		if errors.As(err, &pe) {
			pe.ReceiptID = receipt
		}
		return nil, err
	}
	return f, nil
}

// readHeaders reads header lines up to the empty line. Names and values are
// unescaped into r.hbuf, which becomes one string for the whole frame;
// common names are interned, so a frame costs two allocations for its
// headers however many it has.
func (r *Reader) readHeaders(mode escaping) (Headers, error) {
	if cap(r.hbuf) > retainedHeaderBytes {
		r.hbuf = nil
	}
	r.hbuf, r.spans = r.hbuf[:0], r.spans[:0]
	used := 0 // header bytes so far, without EOLs
	for {
		limit, byBudget := r.lim.MaxLineBytes, false
		if rest := r.lim.MaxHeaderBytes - used; rest < limit {
			limit, byBudget = rest, true
		}
		line, fault, err := r.readLine(limit)
		if err != nil {
			return nil, err
		}
		switch fault {
		case lineTooLong:
			if byBudget {
				return nil, tooLarge("header section longer than limits.max_header_bytes (" + strconv.Itoa(r.lim.MaxHeaderBytes) + " bytes)")
			}
			return nil, tooLarge("header line longer than limits.max_header_line (" + strconv.Itoa(r.lim.MaxLineBytes) + " bytes): " + quoted(line, quoteLimit))
		case lineNUL:
			return nil, malformed(`NUL in header section: "` + truncated(line, quoteLimit) + `\x00"`)
		case lineLoneCR:
			return nil, malformed("CR not followed by LF in header line " + quoted(line, quoteLimit))
		}
		if len(line) == 0 {
			break
		}
		if len(r.spans) == r.lim.MaxHeaders {
			return nil, tooLarge("more than limits.max_headers (" + strconv.Itoa(r.lim.MaxHeaders) + ") header lines")
		}
		used += len(line)
		if err := r.addHeader(line, mode); err != nil {
			return nil, err
		}
	}
	return r.buildHeaders(), nil
}

// addHeader parses one header line (semantics 4.2, 4.3) into r.hbuf.
func (r *Reader) addHeader(line []byte, mode escaping) error {
	colon := bytes.IndexByte(line, ':') // STOMP 1.2: the first colon separates
	switch {
	case colon < 0:
		return malformed("header line without ':' " + quoted(line, quoteLimit))
	case colon == 0:
		return malformed("empty header name in " + quoted(line, quoteLimit))
	}
	start := len(r.hbuf)
	buf, bad, ok := appendUnescaped(r.hbuf, line[:colon], mode)
	if !ok {
		return malformed("invalid escape sequence '" + bad + "' in header '" + truncated(line[:colon], quoteLimit) + "'")
	}
	nameEnd := len(buf)
	value := line[colon+1:]
	if mode == escape10 {
		value = bytes.TrimLeft(value, " ")
	}
	buf, bad, ok = appendUnescaped(buf, value, mode)
	r.hbuf = buf
	if !ok {
		return malformed("invalid escape sequence '" + bad + "' in header '" + truncated(buf[start:nameEnd], quoteLimit) + "'")
	}
	if !utf8.Valid(buf[start:]) {
		return malformed("header not valid UTF-8: " + quoted(line, quoteLimit))
	}
	r.spans = append(r.spans, headerSpan{nameEnd: nameEnd, valueEnd: len(buf)})
	return nil
}

// buildHeaders turns r.hbuf and r.spans into Headers backed by one string.
func (r *Reader) buildHeaders() Headers {
	if len(r.spans) == 0 {
		return nil
	}
	all := string(r.hbuf)
	h := make(Headers, len(r.spans))
	start := 0
	for i, s := range r.spans {
		name := internName(r.hbuf[start:s.nameEnd])
		if name == "" {
			name = all[start:s.nameEnd]
		}
		h[i] = Header{Name: name, Value: all[s.nameEnd:s.valueEnd]}
		start = s.valueEnd
	}
	return h
}

// readCountedBody reads a body of n bytes (already checked against
// limits.max_body) and the NUL that must follow it (semantics 4.4).
func (r *Reader) readCountedBody(n int64) ([]byte, error) {
	var body []byte
	if n <= eagerBodyBytes {
		if r.bodyAlloc != nil && n >= PooledBodyMin {
			body = r.bodyAlloc(int(n)) // every byte is read below
		} else {
			body = make([]byte, n)
		}
		if _, err := io.ReadFull(r.br, body); err != nil {
			return nil, err
		}
	} else {
		body = make([]byte, 0, eagerBodyBytes)
		for int64(len(body)) < n {
			if len(body) == cap(body) {
				grow := min(int64(cap(body)), n-int64(len(body)))
				body = append(body[:cap(body)], make([]byte, grow)...)[:len(body)]
			}
			end := min(int64(cap(body)), n)
			m, err := r.br.Read(body[len(body):end])
			body = body[:len(body)+m]
			if err != nil && int64(len(body)) < n {
				return nil, err
			}
		}
	}
	c, err := r.br.ReadByte()
	if err != nil {
		return nil, err
	}
	if c != 0 {
		return nil, malformed("no NUL after the body of content-length " + strconv.FormatInt(n, 10))
	}
	if n == 0 {
		return nil, nil
	}
	return body, nil
}

// readBodyToNUL reads a body that runs to the first NUL, bounded by
// limits.max_body. A body found in one buffer is allocated once.
func (r *Reader) readBodyToNUL() ([]byte, error) {
	var body []byte
	for {
		buf, err := r.buffered()
		if err != nil {
			return nil, err
		}
		nul := bytes.IndexByte(buf, 0)
		n := nul
		if nul < 0 {
			n = len(buf)
		}
		if int64(len(body))+int64(n) > r.lim.MaxBody {
			return nil, tooLarge("body longer than limits.max_body (" + strconv.FormatInt(r.lim.MaxBody, 10) + " bytes)")
		}
		if nul < 0 {
			body = append(body, buf...)
			r.discard(len(buf))
			continue
		}
		if body == nil && nul > 0 {
			body = make([]byte, nul)
			copy(body, buf)
		} else {
			body = append(body, buf[:nul]...)
		}
		r.discard(nul + 1)
		return body, nil
	}
}

// parseContentLength parses [0-9]+ into an int64 (semantics 4.4).
func parseContentLength(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (1<<63-1-int64(c-'0'))/10 {
			return 0, false // overflow
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// clientCommand returns the interned client command in line, or "" if line
// is not one (semantics 4.1: case-sensitive, NACK in 1.0 too).
func clientCommand(line []byte) string {
	switch string(line) {
	case CmdSend:
		return CmdSend
	case CmdAck:
		return CmdAck
	case CmdNack:
		return CmdNack
	case CmdSubscribe:
		return CmdSubscribe
	case CmdUnsubscribe:
		return CmdUnsubscribe
	case CmdBegin:
		return CmdBegin
	case CmdCommit:
		return CmdCommit
	case CmdAbort:
		return CmdAbort
	case CmdDisconnect:
		return CmdDisconnect
	case CmdConnect:
		return CmdConnect
	case CmdStomp:
		return CmdStomp
	}
	return ""
}

// internName returns a constant string equal to name for the header names
// clients send most, or "".
func internName(name []byte) string {
	switch string(name) {
	case "destination":
		return "destination"
	case "receipt":
		return "receipt"
	case "content-length":
		return "content-length"
	case "content-type":
		return "content-type"
	case "id":
		return "id"
	case "ack":
		return "ack"
	case "subscription":
		return "subscription"
	case "message-id":
		return "message-id"
	case "transaction":
		return "transaction"
	case "persistent":
		return "persistent"
	case "reply-to":
		return "reply-to"
	case "correlation-id":
		return "correlation-id"
	case "priority":
		return "priority"
	case "expires":
		return "expires"
	case "prefetch-count":
		return "prefetch-count"
	case "accept-version":
		return "accept-version"
	case "host":
		return "host"
	case "login":
		return "login"
	case "passcode":
		return "passcode"
	case "heart-beat":
		return "heart-beat"
	}
	return ""
}

func malformed(detail string) *ProtocolError {
	return &ProtocolError{Message: "Malformed frame", Detail: detail + "\n", Kind: ErrMalformedFrame}
}

func tooLarge(detail string) *ProtocolError {
	return &ProtocolError{Message: "Frame too large", Detail: detail + "\n", Kind: ErrFrameTooLarge}
}

// badCommand is rabbitmq_stomp's reply to an unknown command (semantics 4.1);
// cmd is already printable and truncated.
func badCommand(cmd string) *ProtocolError {
	return &ProtocolError{Message: "Bad command", Detail: `Could not interpret command "` + cmd + `"` + "\n", Kind: ErrBadCommand}
}

// withReceipt sets ReceiptID: the frame's headers were read and asked for a
// receipt (semantics 4.5).
func withReceipt(e *ProtocolError, receipt string) *ProtocolError {
	e.ReceiptID = receipt
	return e
}
