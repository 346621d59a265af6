package broker

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Shared-connection mode (amqp.shared_connections): sessions of the same
// user, passcode and vhost share a small pool of AMQP connections, each
// session opening its own channels on one of them, so many STOMP sessions
// do not mean as many broker connections.
//
// Every CONNECT is still authenticated by the broker: the pool dials a
// connection with the client's credentials for each CONNECT, as in the
// default mode. If an existing pooled connection of the same user, passcode
// and vhost has room, the session attaches to it and the fresh connection
// is closed; otherwise the fresh connection joins the pool.
//
// What changes for a session (README "Shared connections"): connection-level
// events (a broker alarm, connection.close, a lost link) reach every session
// on that connection, each of which ends with the ERROR; exclusive queues
// are exclusive to the shared connection, not to one session; the AMQP
// connection_name names the pool, not a session.

// connPool groups pooled connections by credentials and vhost. Safe for
// concurrent use by the sessions' goroutines that dial.
type connPool struct {
	dial    Dialer // dials and authenticates one real connection
	perConn int    // sessions per pooled connection
	// dialSlots bounds concurrent authentication dials, so a burst of
	// CONNECTs does not open hundreds of broker connections at once.
	dialSlots  chan struct{}
	mu         sync.Mutex // guards groups
	groups     map[poolKey][]*pooledConn
	closeAsync func(Conn) // closes a redundant authentication connection, then frees its dial slot
}

// poolKey identifies who may share a connection. The passcode is kept only
// as a hash, so a changed password never reuses an old connection.
type poolKey struct {
	login, vhost string
	passcode     [sha256.Size]byte
}

// pooledConn is one real AMQP connection shared by up to perConn sessions.
// Its watcher goroutine fans the connection's close and blocked
// notifications out to the attached sessions (amqp091-go cannot unregister
// a Notify channel, so sessions never register on the real connection).
type pooledConn struct {
	pool *connPool
	key  poolKey
	real Conn

	mu       sync.Mutex // guards the fields below
	sessions map[*sharedConn]struct{}
	closed   bool
	closeErr *amqp.Error
	blocked  *amqp.Blocking // the last blocked notification, for late joiners
}

// sharedConn is one session's view of a pooled connection: it implements
// Conn. Channels it opens are closed when the session closes it.
type sharedConn struct {
	pc *pooledConn

	mu       sync.Mutex // guards the fields below
	channels []Channel
	closeCh  chan *amqp.Error
	blockCh  chan amqp.Blocking
}

// MaxConcurrentAuthDials bounds the authentication dials in flight.
const MaxConcurrentAuthDials = 32

func NewSharedDialer(dial Dialer, perConn int) Dialer {
	pool := &connPool{
		dial:      dial,
		perConn:   perConn,
		dialSlots: make(chan struct{}, MaxConcurrentAuthDials),
		groups:    make(map[poolKey][]*pooledConn),
	}
	pool.closeAsync = func(c Conn) {
		go func() {
			_ = c.Close()
			<-pool.dialSlots
		}()
	}
	return pool.dialShared
}

// dialShared authenticates the session's CONNECT with a fresh connection,
// then attaches the session to a pooled connection with room, or pools the
// fresh one.
func (p *connPool) dialShared(ctx context.Context, login Login) (Conn, error) {
	select {
	case p.dialSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, ctx.Err())
	}
	login.ConnectionName = "stompgate shared " + login.Login + "@" + login.VHost
	fresh, err := p.dial(ctx, login)
	if err != nil {
		<-p.dialSlots
		return nil, err
	}
	key := poolKey{login: login.Login, vhost: login.VHost, passcode: sha256.Sum256([]byte(login.Passcode))}

	p.mu.Lock()
	for _, pc := range p.groups[key] {
		if sc := pc.attach(p.perConn); sc != nil {
			p.mu.Unlock()
			// The slot is released once the redundant connection is closed.
			p.closeAsync(fresh)
			return sc, nil
		}
	}
	pc := &pooledConn{pool: p, key: key, real: fresh, sessions: make(map[*sharedConn]struct{})}
	sc := pc.attach(p.perConn)
	p.groups[key] = append(p.groups[key], pc)
	p.mu.Unlock()
	<-p.dialSlots

	closes := fresh.NotifyClose(make(chan *amqp.Error, 1))
	blocks := fresh.NotifyBlocked(make(chan amqp.Blocking, 16))
	go pc.watch(closes, blocks)
	return sc, nil
}

// attach adds a session if the connection is open and has room. Called
// with the pool's lock held.
func (pc *pooledConn) attach(perConn int) *sharedConn {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.closed || len(pc.sessions) >= perConn {
		return nil
	}
	// A broker with a small channel-max (Qpid Broker-J: 256) fills a
	// connection's channels before its session count: a newcomer goes to
	// another connection unless channelsPerNewSession are still free.
	if limit := ChannelMax(pc.real); limit > 0 && pc.channelsInUse()+channelsPerNewSession > limit {
		return nil
	}
	sc := &sharedConn{pc: pc}
	pc.sessions[sc] = struct{}{}
	return sc
}

// channelsPerNewSession is the channel headroom a pooled connection must
// have left to take another session: its publisher channel and a few
// subscriptions. A session that opens more than what is left gets ERROR
// "Too many subscriptions" naming channel-max (channelMaxError).
const channelsPerNewSession = 8

// channelsInUse counts the open channels of pc's sessions, forgetting
// the closed ones. Called with pc.mu held (lock order: pc.mu, then sc.mu).
func (pc *pooledConn) channelsInUse() int {
	n := 0
	for sc := range pc.sessions {
		sc.mu.Lock()
		open := sc.channels[:0]
		for _, ch := range sc.channels {
			if c, ok := ch.(interface{ IsClosed() bool }); ok && c.IsClosed() {
				continue
			}
			open = append(open, ch)
		}
		clear(sc.channels[len(open):])
		sc.channels = open
		n += len(open)
		sc.mu.Unlock()
	}
	return n
}

// watch fans out the real connection's notifications until it closes.
// Runs in its own goroutine, one per pooled connection.
func (pc *pooledConn) watch(closes <-chan *amqp.Error, blocks <-chan amqp.Blocking) {
	for {
		select {
		case b, ok := <-blocks:
			if !ok {
				blocks = nil
				continue
			}
			pc.mu.Lock()
			pc.blocked = &b
			for sc := range pc.sessions {
				sc.notifyBlocked(b)
			}
			pc.mu.Unlock()
		case e, ok := <-closes:
			if !ok {
				e = nil
			}
			pc.pool.forget(pc)
			pc.mu.Lock()
			pc.closed, pc.closeErr = true, e
			for sc := range pc.sessions {
				sc.notifyClosed(e)
			}
			pc.mu.Unlock()
			return
		}
	}
}

// forget removes pc from the pool so that no new session attaches to it.
func (p *connPool) forget(pc *pooledConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	group := p.groups[pc.key]
	for i, other := range group {
		if other == pc {
			group = append(group[:i], group[i+1:]...)
			break
		}
	}
	if len(group) == 0 {
		delete(p.groups, pc.key)
	} else {
		p.groups[pc.key] = group
	}
}

// detach removes a session; the last one out closes the real connection.
func (pc *pooledConn) detach(sc *sharedConn) {
	pc.pool.mu.Lock()
	pc.mu.Lock()
	delete(pc.sessions, sc)
	last := len(pc.sessions) == 0 && !pc.closed
	if last {
		pc.closed = true
	}
	pc.mu.Unlock()
	pc.pool.mu.Unlock()
	if last {
		pc.pool.forget(pc)
		_ = pc.real.Close()
	}
}

func (sc *sharedConn) Channel() (Channel, error) {
	ch, err := sc.pc.real.Channel()
	if err != nil {
		return nil, err
	}
	sc.mu.Lock()
	sc.channels = append(sc.channels, ch)
	sc.mu.Unlock()
	return ch, nil
}

// NotifyClose registers the session's close receiver. A connection that
// already closed is reported at once.
func (sc *sharedConn) NotifyClose(receiver chan *amqp.Error) chan *amqp.Error {
	sc.pc.mu.Lock()
	defer sc.pc.mu.Unlock()
	sc.mu.Lock()
	sc.closeCh = receiver
	sc.mu.Unlock()
	if sc.pc.closed && sc.pc.closeErr != nil {
		sc.notifyClosed(sc.pc.closeErr)
	}
	return receiver
}

// NotifyBlocked registers the session's blocked receiver; a connection
// that is blocked now reports it at once.
func (sc *sharedConn) NotifyBlocked(receiver chan amqp.Blocking) chan amqp.Blocking {
	sc.pc.mu.Lock()
	defer sc.pc.mu.Unlock()
	sc.mu.Lock()
	sc.blockCh = receiver
	sc.mu.Unlock()
	if b := sc.pc.blocked; b != nil && b.Active {
		sc.notifyBlocked(*b)
	}
	return receiver
}

// notifyClosed and notifyBlocked never block the watcher: the session's
// receivers are buffered and it drains them; a full close receiver already
// holds a close, and a full blocked receiver drops the oldest state.
func (sc *sharedConn) notifyClosed(e *amqp.Error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.closeCh == nil {
		return
	}
	select {
	case sc.closeCh <- e:
	default:
	}
}

func (sc *sharedConn) notifyBlocked(b amqp.Blocking) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.blockCh == nil {
		return
	}
	for {
		select {
		case sc.blockCh <- b:
			return
		default:
		}
		select {
		case <-sc.blockCh:
		default:
		}
	}
}

// WriteHolder of the pooled connection, nil if it has none: sessions on
// one connection share its held bytes, and any of their loops flushes them.
func (sc *sharedConn) WriteHolder() WriteHolder {
	wh, _ := sc.pc.real.(WriteHolder)
	return wh
}

func (sc *sharedConn) FrameMax() int                { return sc.pc.real.FrameMax() }
func (sc *sharedConn) IsClosed() bool               { return sc.pc.real.IsClosed() }
func (sc *sharedConn) BrokerURL() string            { return BrokerURL(sc.pc.real) }
func (sc *sharedConn) ServerProperties() amqp.Table { return sc.pc.real.ServerProperties() }

// Close closes the session's channels (its consumers are cancelled, its
// unacked deliveries requeued) and detaches it from the pooled connection.
func (sc *sharedConn) Close() error {
	sc.mu.Lock()
	channels := slices.Clone(sc.channels)
	sc.closeCh, sc.blockCh = nil, nil
	sc.mu.Unlock()
	// The channels stay counted (channelsInUse) until they are closed, so
	// no newcomer attaches for channels that are still taken.
	for _, ch := range channels {
		_ = ch.Close()
	}
	sc.mu.Lock()
	sc.channels = nil
	sc.mu.Unlock()
	sc.pc.detach(sc)
	return nil
}
