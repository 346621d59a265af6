//go:build e2e

package e2e

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// faultProxy is a TCP proxy of the tests' own between stompgate and
// RabbitMQ, on 127.0.0.1:0, that injects the broker failures of issue 4:
//
//   - Pass: forward bytes both ways (the default).
//   - Stall: stop forwarding in both directions without closing anything,
//     on existing and new links, as a partitioned or frozen broker does;
//     only heart-beats can tell (semantics 14.3). Bytes read while stalled
//     are held, not dropped, and go on when the proxy passes again.
//   - Refuse: reset every new connection at once (existing links go on).
//   - Cut: close every existing link, both sides.
//
// The proxy's goroutines (accept loop, two pumps per link) all end at
// cleanup, before goleak looks.
type faultProxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu      sync.Mutex // guards the fields below
	mode    proxyMode
	changed chan struct{} // closed and replaced whenever mode changes
	links   map[*proxyLink]struct{}

	accepted atomic.Int64 // connections accepted, refused ones included
	wg       sync.WaitGroup
}

type proxyMode int

const (
	proxyPass proxyMode = iota
	proxyStall
	proxyRefuse
)

// proxyLink is one proxied connection: the client (stompgate) side and
// the broker side. close is idempotent and ends both pumps.
type proxyLink struct {
	client, broker net.Conn
	once           sync.Once
	done           chan struct{}
}

func (l *proxyLink) close() {
	l.once.Do(func() {
		close(l.done)
		_ = l.client.Close()
		_ = l.broker.Close()
	})
}

// newFaultProxy listens on 127.0.0.1:0 and forwards to target (host:port).
func newFaultProxy(t testing.TB, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fault proxy listen: %v", err)
	}
	p := &faultProxy{t: t, ln: ln, target: target, changed: make(chan struct{}), links: map[*proxyLink]struct{}{}}
	p.wg.Add(1)
	go p.acceptLoop()
	t.Cleanup(p.close)
	return p
}

// URL is an amqp:// URL that reaches the broker through the proxy.
func (p *faultProxy) URL() string { return "amqp://" + p.ln.Addr().String() + "/" }

// Accepted is the number of connections the proxy accepted so far.
func (p *faultProxy) Accepted() int64 { return p.accepted.Load() }

// Links is the number of live links.
func (p *faultProxy) Links() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

func (p *faultProxy) setMode(m proxyMode) {
	p.mu.Lock()
	p.mode = m
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// Pass forwards again, releasing held bytes.
func (p *faultProxy) Pass() { p.setMode(proxyPass) }

// Stall stops forwarding without closing.
func (p *faultProxy) Stall() { p.setMode(proxyStall) }

// Refuse resets new connections.
func (p *faultProxy) Refuse() { p.setMode(proxyRefuse) }

// Cut closes every existing link and returns how many there were.
func (p *faultProxy) Cut() int {
	p.mu.Lock()
	links := make([]*proxyLink, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.close()
	}
	return len(links)
}

func (p *faultProxy) close() {
	_ = p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *faultProxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // listener closed at cleanup
		}
		p.accepted.Add(1)
		p.mu.Lock()
		mode := p.mode
		p.mu.Unlock()
		if mode == proxyRefuse {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // RST, like a closed port
			}
			_ = c.Close()
			continue
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			p.t.Logf("fault proxy: dial %s: %v", p.target, err)
			_ = c.Close()
			continue
		}
		l := &proxyLink{client: c, broker: b, done: make(chan struct{})}
		p.mu.Lock()
		p.links[l] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pump(l, b, c)
		go p.pump(l, c, b)
	}
}

// pump copies src to dst. Before passing anything on (bytes or the end of
// the stream) it waits while the proxy is stalled, so a stall hides
// everything, a close from either side included.
func (p *faultProxy) pump(l *proxyLink, dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		l.close()
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if !p.waitFlowing(l) {
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				p.t.Logf("fault proxy: read: %v", err)
			}
			return
		}
	}
}

// waitFlowing blocks while the proxy is stalled; false: the link was cut.
func (p *faultProxy) waitFlowing(l *proxyLink) bool {
	for {
		p.mu.Lock()
		mode, changed := p.mode, p.changed
		p.mu.Unlock()
		select {
		case <-l.done:
			return false
		default:
		}
		if mode != proxyStall {
			return true
		}
		select {
		case <-changed:
		case <-l.done:
			return false
		}
	}
}
