package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// rawConn is a minimal STOMP 1.2 client: one write call per frame (as
// amqp091-go does one flush per publish), a reusable frame buffer and a
// frame reader that reuses its buffers. It exists so that the client's own
// cost, which shares the machine's cores with the gateway and the broker,
// stays close to amqp091-go's; go-stomp allocates several objects and runs
// two goroutine hand-offs per frame (select it with -stomp-client gostomp).
type rawConn struct {
	conn net.Conn
	rd   *frameReader

	writeMu sync.Mutex // guards wbuf and writes to conn
	wbuf    []byte
}

func dialRaw(addr string) (*rawConn, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c := &rawConn{conn: conn, rd: newFrameReader(conn)}
	connect := "CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\nheart-beat:0,0\n\n\x00"
	if _, err := io.WriteString(conn, connect); err != nil {
		_ = conn.Close()
		return nil, err
	}
	if err := c.rd.next(); err != nil {
		_ = conn.Close()
		return nil, err
	}
	if c.rd.command() != "CONNECTED" {
		err := c.rd.asError()
		_ = conn.Close()
		return nil, err
	}
	return c, nil
}

// writeFrame writes one frame: command, headers (name, value pairs, already
// escaped), content-length when body is non-nil, body and NUL.
func (c *rawConn) writeFrame(command string, body []byte, headers ...string) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	b := append(c.wbuf[:0], command...)
	b = append(b, '\n')
	for i := 0; i+1 < len(headers); i += 2 {
		b = append(b, headers[i]...)
		b = append(b, ':')
		b = append(b, headers[i+1]...)
		b = append(b, '\n')
	}
	if body != nil {
		b = append(b, "content-length:"...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	b = append(b, body...)
	b = append(b, 0)
	c.wbuf = b
	_, err := c.conn.Write(b)
	return err
}

// subscribe sends SUBSCRIBE with a receipt and waits for the RECEIPT. It
// must run before any reader goroutine starts.
func (c *rawConn) subscribe(queue, ack string) error {
	err := c.writeFrame("SUBSCRIBE", nil, "id", "0", "destination", "/queue/"+queue,
		"ack", ack, "prefetch-count", strconv.Itoa(prefetch), "receipt", "sub")
	if err != nil {
		return err
	}
	if err := c.rd.next(); err != nil {
		return err
	}
	if c.rd.command() != "RECEIPT" {
		return c.rd.asError()
	}
	return nil
}

// disconnect sends DISCONNECT with receipt "disc"; the caller's reader
// goroutine watches for its RECEIPT before closing the socket.
func (c *rawConn) disconnect() error {
	return c.writeFrame("DISCONNECT", nil, "receipt", disconnectReceipt)
}

const disconnectReceipt = "disc"

// frameReader reads frames into reused buffers. Only the last frame read is
// valid.
type frameReader struct {
	br   *bufio.Reader
	cmd  []byte
	hdrs []byte // header lines, each ending in '\n', as received
	body []byte
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{br: bufio.NewReaderSize(r, 64<<10)}
}

func (r *frameReader) command() string { return string(r.cmd) }

// header returns the raw (still escaped) value of the first header called
// name, or nil.
func (r *frameReader) header(name string) []byte {
	rest := r.hdrs
	for len(rest) > 0 {
		nl := bytes.IndexByte(rest, '\n')
		line := rest[:nl]
		rest = rest[nl+1:]
		if len(line) > len(name) && line[len(name)] == ':' && string(line[:len(name)]) == name {
			return line[len(name)+1:]
		}
	}
	return nil
}

// asError describes an unexpected frame, typically ERROR.
func (r *frameReader) asError() error {
	return fmt.Errorf("unexpected %s frame: message=%q body=%q", r.cmd, r.header("message"), r.body)
}

func (r *frameReader) next() error {
	// Heart-beat EOLs and the trailing LF some servers send after NUL.
	for {
		b, err := r.br.ReadByte()
		if err != nil {
			return err
		}
		if b != '\n' && b != '\r' {
			_ = r.br.UnreadByte()
			break
		}
	}
	line, err := r.readLine()
	if err != nil {
		return err
	}
	r.cmd = append(r.cmd[:0], line...)
	r.hdrs = r.hdrs[:0]
	length := -1
	for {
		line, err := r.readLine()
		if err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("content-length:")); ok && length < 0 {
			if length, err = strconv.Atoi(string(v)); err != nil {
				return fmt.Errorf("bad content-length %q", v)
			}
		}
		r.hdrs = append(r.hdrs, line...)
		r.hdrs = append(r.hdrs, '\n')
	}
	if length >= 0 {
		if cap(r.body) < length+1 {
			r.body = make([]byte, length+1)
		}
		r.body = r.body[:length+1]
		if _, err := io.ReadFull(r.br, r.body); err != nil {
			return err
		}
		if r.body[length] != 0 {
			return errors.New("frame body not followed by NUL")
		}
		r.body = r.body[:length]
		return nil
	}
	r.body = r.body[:0]
	for {
		chunk, err := r.br.ReadSlice(0)
		r.body = append(r.body, chunk...)
		if err == nil {
			r.body = r.body[:len(r.body)-1]
			return nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}

// readLine returns one line without its EOL; valid until the next read.
func (r *frameReader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}
