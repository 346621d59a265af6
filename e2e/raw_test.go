//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Raw STOMP over loopback TCP, for what go-stomp cannot say or hides:
// malformed input, header order, exact ERROR frames (style.md practice 13).
// Header values are kept as they are on the wire (no unescaping); the tests
// use no characters that would need escaping.

const (
	frameTimeout      = 5 * time.Second
	disconnectTimeout = 3 * time.Second // gateway: flush + linger of at most 1 s (semantics 14.2)
)

type rawConn struct {
	conn net.Conn
	r    *bufio.Reader
}

// rawFrame is a decoded server frame. Headers keep wire order and repeats.
type rawFrame struct {
	Command string
	Headers [][2]string
	Body    []byte
}

// Get returns the first value of name (STOMP 1.2: first occurrence wins).
func (f *rawFrame) Get(name string) (string, bool) {
	for _, h := range f.Headers {
		if h[0] == name {
			return h[1], true
		}
	}
	return "", false
}

// Names returns the header names in wire order.
func (f *rawFrame) Names() []string {
	out := make([]string, len(f.Headers))
	for i, h := range f.Headers {
		out[i] = h[0]
	}
	return out
}

func (f *rawFrame) String() string {
	var b strings.Builder
	b.WriteString(f.Command)
	for _, h := range f.Headers {
		b.WriteString("\n" + h[0] + ":" + h[1])
	}
	b.WriteString("\n\n" + string(f.Body))
	return strconv.Quote(b.String())
}

// dialRaw opens a TCP connection to addr; it is closed at cleanup.
func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, frameTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawConn{conn: conn, r: bufio.NewReader(conn)}
}

// connectRaw dials addr and completes a CONNECT as guest on vhost "/" with
// the given accept-version ("" sends none, i.e. STOMP 1.0).
func connectRaw(t testing.TB, addr, acceptVersion string) *rawConn {
	t.Helper()
	c := dialRaw(t, addr)
	frame := "CONNECT\nlogin:guest\npasscode:guest\nhost:/\n"
	if acceptVersion != "" {
		frame += "accept-version:" + acceptVersion + "\n"
	}
	send(t, c, frame+"\n\x00")
	expectFrame(t, c, "CONNECTED")
	return c
}

// send writes raw bytes, e.g. send(t, c, "SUBSCRIBE\nid:0\ndestination:/queue/a\n\n\x00").
func send(t testing.TB, c *rawConn, data string) {
	t.Helper()
	if err := c.conn.SetWriteDeadline(time.Now().Add(frameTimeout)); err != nil {
		t.Fatalf("set write deadline: %v", err)
	}
	if _, err := io.WriteString(c.conn, data); err != nil {
		t.Fatalf("write %q: %v", truncate(data), err)
	}
}

// expectFrame reads the next frame (skipping heart-beat EOLs) within
// frameTimeout and fails unless its command is cmd. An unexpected ERROR is
// reported with its headers and body.
func expectFrame(t testing.TB, c *rawConn, cmd string) *rawFrame {
	t.Helper()
	f, err := readFrame(c, frameTimeout)
	if err != nil {
		t.Fatalf("want %s frame, read failed: %v", cmd, err)
	}
	if f.Command != cmd {
		t.Fatalf("want %s frame, got %s", cmd, f)
	}
	return f
}

// expectHeader fails unless the frame's first value of name is want.
func expectHeader(t testing.TB, f *rawFrame, name, want string) {
	t.Helper()
	got, ok := f.Get(name)
	if !ok {
		t.Errorf("%s frame has no %q header, want %q: %s", f.Command, name, want, f)
	} else if got != want {
		t.Errorf("%s header %s = %q, want %q", f.Command, name, got, want)
	}
}

// expectDisconnect reads until EOF (or reset) and fails if the server sends
// another frame or keeps the socket open longer than disconnectTimeout.
func expectDisconnect(t testing.TB, c *rawConn) {
	t.Helper()
	deadline := time.Now().Add(disconnectTimeout)
	for {
		f, err := readFrame(c, time.Until(deadline))
		if err == nil {
			t.Fatalf("want the connection closed, got another frame %s", f)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err) {
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("connection still open %v after the last frame", disconnectTimeout)
		}
		t.Fatalf("want EOF, got %v", err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "connection reset")
}

// readFrame decodes one server frame: command, headers, then a body of
// content-length octets followed by NUL, or up to the first NUL.
func readFrame(c *rawConn, timeout time.Duration) (*rawFrame, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	var cmd string
	for {
		line, err := readLine(c.r)
		if err != nil {
			return nil, err
		}
		line = strings.TrimLeft(line, "\x00") // a trailing NUL LF of an earlier frame
		if line != "" {
			cmd = line
			break
		}
	}
	f := &rawFrame{Command: cmd}
	length := -1
	for {
		line, err := readLine(c.r)
		if err != nil {
			return nil, unexpected(err)
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, errors.New("server sent a header line without ':': " + strconv.Quote(line))
		}
		f.Headers = append(f.Headers, [2]string{name, value})
		if name == "content-length" && length < 0 {
			n, err := strconv.Atoi(value)
			if err != nil {
				return nil, errors.New("server sent a bad content-length: " + strconv.Quote(value))
			}
			length = n
		}
	}
	if length >= 0 {
		body := make([]byte, length+1)
		if _, err := io.ReadFull(c.r, body); err != nil {
			return nil, unexpected(err)
		}
		if body[length] != 0 {
			return nil, errors.New("no NUL after the content-length body")
		}
		f.Body = body[:length]
		return f, nil
	}
	body, err := c.r.ReadBytes(0)
	if err != nil {
		return nil, unexpected(err)
	}
	f.Body = bytes.TrimSuffix(body, []byte{0})
	return f, nil
}

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// expectFrames reads len(cmds) frames in any order and returns them by
// command; each command must appear exactly once.
func expectFrames(t testing.TB, c *rawConn, cmds ...string) map[string]*rawFrame {
	t.Helper()
	want := make(map[string]bool, len(cmds))
	for _, cmd := range cmds {
		want[cmd] = true
	}
	got := make(map[string]*rawFrame, len(cmds))
	for range cmds {
		f, err := readFrame(c, frameTimeout)
		if err != nil {
			t.Fatalf("want frames %v, got %d of them, then: %v", cmds, len(got), err)
		}
		if !want[f.Command] || got[f.Command] != nil {
			t.Fatalf("want frames %v, got unexpected %s", cmds, f)
		}
		got[f.Command] = f
	}
	return got
}

// expectError reads an ERROR frame and checks semantics 14.1: headers
// message, content-type:text/plain, version:1.0,1.1,1.2, then receipt-id
// when the failing frame asked for a receipt (the gateway only: the plugin
// never sends it, semantics 16 #6), then content-length. wantBody, when not
// empty, must match byte for byte (the plugin's texts, trailing LF included).
func expectError(t testing.TB, c *rawConn, message, receiptID, wantBody string) *rawFrame {
	t.Helper()
	f := expectFrame(t, c, "ERROR")
	expectHeader(t, f, "message", message)
	expectHeader(t, f, "content-type", "text/plain")
	expectHeader(t, f, "version", "1.0,1.1,1.2")
	want := []string{"message", "content-type", "version"}
	if receiptID != "" && !relaxed(t, "the plugin's ERROR never carries receipt-id (semantics 16 #6)") {
		expectHeader(t, f, "receipt-id", receiptID)
		want = append(want, "receipt-id")
	}
	if len(f.Body) > 0 {
		want = append(want, "content-length")
	}
	if got := f.Names(); strings.Join(got, ",") != strings.Join(want, ",") && !external() {
		t.Errorf("ERROR headers %v, want %v (semantics 14.1)", got, want)
	}
	if wantBody != "" && string(f.Body) != wantBody {
		t.Errorf("ERROR body %q, want %q", f.Body, wantBody)
	}
	return f
}
