package gateway

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// errPreconnectLimit: more than limits.max_preconnect_bytes arrived before
// CONNECTED was sent.
var errPreconnectLimit = errors.New("too many bytes before CONNECT")

// errLingerDone: the linger after an ERROR ran out of time or bytes.
var errLingerDone = errors.New("linger finished")

// inboundConn is the io.Reader under a session's codec.Reader. Before each
// Read it refreshes the read deadline, so the deadline measures silence:
// any inbound byte (a frame or a heart-beat EOL) restarts it. While the
// session does not read on purpose (flow control) nobody calls Read and the
// timer is paused, as semantics 3 requires.
//
// Before CONNECTED it enforces limits.max_preconnect_bytes and the
// absolute connect deadline; after an ERROR, the linger deadline and byte
// budget (semantics 14.2). idle and connectDeadline are used by one
// goroutine at a time (the session goroutine during CONNECT, then the
// reader goroutine; the go statement orders the two); budget and
// lingerUntil are atomics because the session sets them while the reader
// goroutine reads.
type inboundConn struct {
	conn net.Conn

	// idle is the silence allowed between reads; 0: none.
	idle time.Duration
	// connectDeadline, when set, is a hard deadline (CONNECT phase).
	connectDeadline time.Time
	// budget is the number of bytes still allowed; <0: unlimited.
	budget atomic.Int64
	// lingerUntil, when non-zero, is the hard deadline of the linger
	// (unix nanoseconds).
	lingerUntil atomic.Int64
}

func (c *inboundConn) Read(p []byte) (int, error) {
	lingering := false
	if until := c.lingerUntil.Load(); until != 0 {
		lingering = true
		_ = c.conn.SetReadDeadline(time.Unix(0, until))
	} else if !c.connectDeadline.IsZero() {
		_ = c.conn.SetReadDeadline(c.connectDeadline)
	} else if c.idle > 0 {
		_ = c.conn.SetReadDeadline(time.Now().Add(c.idle))
	}
	budget := c.budget.Load()
	if budget >= 0 {
		if budget == 0 {
			if lingering {
				return 0, errLingerDone
			}
			return 0, errPreconnectLimit
		}
		if int64(len(p)) > budget {
			p = p[:budget]
		}
	}
	n, err := c.conn.Read(p)
	if budget >= 0 {
		c.budget.Add(-int64(n))
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		switch {
		case lingering:
			return n, errLingerDone
		case !c.connectDeadline.IsZero():
			return n, errConnectTimeout
		}
		return n, errHeartbeatTimeout
	}
	return n, err
}

// connected switches from the CONNECT phase to the session phase.
func (c *inboundConn) connected(idle time.Duration) {
	c.connectDeadline = time.Time{}
	c.budget.Store(-1)
	c.idle = idle
	if idle == 0 {
		_ = c.conn.SetReadDeadline(time.Time{})
	}
}

// linger bounds all further reading by deadline and budget bytes.
func (c *inboundConn) linger(deadline time.Time, budget int64) {
	c.budget.Store(budget)
	c.lingerUntil.Store(deadline.UnixNano())
	_ = c.conn.SetReadDeadline(deadline)
}
