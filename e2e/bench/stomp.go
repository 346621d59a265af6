package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// stompSystem reaches the broker through a STOMP server: the in-process
// stompgate or RabbitMQ's rabbitmq_stomp plugin. Destinations are
// /queue/<name> on the default vhost, as guest.
type stompSystem struct {
	name   string
	addr   string
	client string // "raw" (rawstomp.go) or "gostomp"
	// inProcess: the server is a gateway in this process, so each session
	// costs this process two descriptors (client and server side).
	inProcess bool
	// proc is the stompgate process behind addr (nil: in-process or the
	// plugin); its CPU is measured per round.
	proc *gatewayProcess
	// perBrokerConn is how many sessions share one broker connection
	// (stompgate's shared-connection mode); 0: one each.
	perBrokerConn int
}

func (s stompSystem) Name() string { return s.name }

// closeTimeout bounds the wait for a DISCONNECT receipt.
const closeTimeout = 30 * time.Second

// errorCell keeps the first error of a session's background goroutine.
type errorCell struct {
	mu  sync.Mutex
	err error
}

func (e *errorCell) set(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err == nil {
		e.err = err
	}
}

func (e *errorCell) get() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

func (s stompSystem) NewProducer(queue string, sc scenario) (producer, error) {
	if s.client == "gostomp" {
		return newGoStompProducer(s.addr, queue, sc)
	}
	c, err := dialRaw(s.addr)
	if err != nil {
		return nil, err
	}
	p := &rawProducer{c: c, dest: "/queue/" + queue, persistent: sc.Persistent,
		slots: make(chan struct{}, sc.inFlight()), done: make(chan struct{})}
	go p.readLoop()
	return p, nil
}

// rawProducer publishes with the raw client. With receipts, slots holds
// one token per SEND whose RECEIPT has not arrived yet.
type rawProducer struct {
	c          *rawConn
	dest       string
	persistent bool
	slots      chan struct{}
	next       uint64
	done       chan struct{} // closed when readLoop returns
	err        errorCell
}

// readLoop runs in its own goroutine: it frees a slot per RECEIPT and
// returns on the DISCONNECT receipt or an error.
func (p *rawProducer) readLoop() {
	defer close(p.done)
	for {
		if err := p.c.rd.next(); err != nil {
			p.err.set(err)
			return
		}
		switch p.c.rd.command() {
		case "RECEIPT":
			if string(p.c.rd.header("receipt-id")) == disconnectReceipt {
				return
			}
			select {
			case <-p.slots:
			default:
				p.err.set(errors.New("RECEIPT for no outstanding SEND"))
				return
			}
		default:
			p.err.set(p.c.rd.asError())
			return
		}
	}
}

func (p *rawProducer) Send(body []byte) error {
	if !p.persistent {
		return p.c.writeFrame("SEND", body, "destination", p.dest)
	}
	select {
	case p.slots <- struct{}{}:
	case <-p.done:
		return fmt.Errorf("producer session ended: %w", p.err.get())
	}
	p.next++
	return p.c.writeFrame("SEND", body, "destination", p.dest, "persistent", "true",
		"receipt", strconv.FormatUint(p.next, 10))
}

// Close waits for every outstanding RECEIPT, then sends DISCONNECT with a
// receipt and waits for it (STOMP 1.2 graceful disconnect).
func (p *rawProducer) Close() error {
	defer p.c.conn.Close()
	// rabbitmq_stomp answers DISCONNECT without waiting for outstanding
	// publish RECEIPTs (they are lost), so collect them first.
	for wait := time.Now().Add(closeTimeout); len(p.slots) > 0 && time.Now().Before(wait); {
		select {
		case <-p.done:
			return fmt.Errorf("producer session ended: %w", p.err.get())
		case <-time.After(time.Millisecond):
		}
	}
	if err := p.c.disconnect(); err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-time.After(closeTimeout):
		return errors.New("no RECEIPT for DISCONNECT")
	}
	if err := p.err.get(); err != nil {
		return err
	}
	if n := len(p.slots); n > 0 {
		return fmt.Errorf("%d SENDs got no RECEIPT", n)
	}
	return nil
}

func (s stompSystem) NewConsumer(queue string, sc scenario, handle func([]byte)) (consumer, error) {
	if s.client == "gostomp" {
		return newGoStompConsumer(s.addr, queue, sc, handle)
	}
	c, err := dialRaw(s.addr)
	if err != nil {
		return nil, err
	}
	ack := "auto"
	if sc.Persistent {
		ack = "client-individual"
	}
	if err := c.subscribe(queue, ack); err != nil {
		_ = c.conn.Close()
		return nil, err
	}
	rc := &rawConsumer{c: c, ackEach: sc.Persistent, done: make(chan struct{})}
	go rc.readLoop(handle)
	return rc, nil
}

type rawConsumer struct {
	c       *rawConn
	ackEach bool
	done    chan struct{}
	err     errorCell
}

// readLoop runs in its own goroutine: it hands every MESSAGE to handle and
// ACKs it in client-individual mode (STOMP 1.2: ACK id = MESSAGE ack).
func (rc *rawConsumer) readLoop(handle func([]byte)) {
	defer close(rc.done)
	rd := rc.c.rd
	for {
		if err := rd.next(); err != nil {
			rc.err.set(err)
			return
		}
		switch rd.command() {
		case "MESSAGE":
			handle(rd.body)
			if rc.ackEach {
				if err := rc.c.writeFrame("ACK", nil, "id", string(rd.header("ack"))); err != nil {
					rc.err.set(err)
					return
				}
			}
		case "RECEIPT":
			if string(rd.header("receipt-id")) == disconnectReceipt {
				return
			}
		default:
			rc.err.set(rd.asError())
			return
		}
	}
}

func (rc *rawConsumer) Err() error { return rc.err.get() }

func (rc *rawConsumer) Close() error {
	defer rc.c.conn.Close()
	if err := rc.c.disconnect(); err != nil {
		return err
	}
	select {
	case <-rc.done:
		return nil
	case <-time.After(closeTimeout):
		return errors.New("no RECEIPT for DISCONNECT")
	}
}

// rawIdle is an idle subscribed session: just the socket, no goroutine and
// no buffers, so in-process memory measures the server side only.
type rawIdle struct{ c *rawConn }

func (i rawIdle) Close() error { return i.c.conn.Close() }

func (s stompSystem) OpenIdle(queue string) (io.Closer, error) {
	c, err := dialRaw(s.addr)
	if err != nil {
		return nil, err
	}
	if err := c.subscribe(queue, "client-individual"); err != nil {
		_ = c.conn.Close()
		return nil, err
	}
	c.rd, c.wbuf = nil, nil
	return rawIdle{c}, nil
}

// go-stomp clients (-stomp-client gostomp).

func dialGoStomp(addr string) (*stomp.Conn, error) {
	return stomp.Dial("tcp", addr,
		stomp.ConnOpt.Login("guest", "guest"),
		stomp.ConnOpt.Host("/"),
		stomp.ConnOpt.HeartBeat(0, 0),
		stomp.ConnOpt.AcceptVersion(stomp.V12),
		stomp.ConnOpt.ReadChannelCapacity(prefetch),
		stomp.ConnOpt.WriteChannelCapacity(receiptWindow),
		stomp.ConnOpt.RcvReceiptTimeout(closeTimeout),
		stomp.ConnOpt.DisconnectReceiptTimeout(closeTimeout),
		stomp.ConnOpt.MsgSendTimeout(closeTimeout))
}

// goStompProducer publishes with go-stomp. go-stomp's Send with a receipt
// holds the connection's lock until the RECEIPT arrives (v3.1.5
// Conn.Send), so one connection never has more than one SEND awaiting its
// RECEIPT: the persistent scenarios use sc.inFlight() connections, each
// with one goroutine and one SEND in flight.
type goStompProducer struct {
	conns      []*stomp.Conn
	dest       string
	persistent bool
	work       chan []byte
	wg         sync.WaitGroup
	err        errorCell
}

func newGoStompProducer(addr, queue string, sc scenario) (producer, error) {
	p := &goStompProducer{dest: "/queue/" + queue, persistent: sc.Persistent}
	n := 1
	if sc.Persistent {
		n = sc.inFlight()
	}
	for range n {
		conn, err := dialGoStomp(addr)
		if err != nil {
			for _, c := range p.conns {
				_ = c.Disconnect()
			}
			return nil, err
		}
		p.conns = append(p.conns, conn)
	}
	if sc.Persistent {
		p.work = make(chan []byte)
		for _, conn := range p.conns {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				for body := range p.work {
					if err := conn.Send(p.dest, "", body, stomp.SendOpt.Header("persistent", "true"), stomp.SendOpt.Receipt); err != nil {
						p.err.set(err)
					}
				}
			}()
		}
	}
	return p, nil
}

func (p *goStompProducer) Send(body []byte) error {
	// go-stomp hands body to its writer goroutine: it needs its own copy.
	own := append([]byte(nil), body...)
	if !p.persistent {
		return p.conns[0].Send(p.dest, "", own)
	}
	if err := p.err.get(); err != nil {
		return err
	}
	p.work <- own
	return nil
}

func (p *goStompProducer) Close() error {
	if p.work != nil {
		close(p.work)
		p.wg.Wait()
	}
	err := p.err.get()
	for _, c := range p.conns {
		err = errors.Join(err, c.Disconnect())
	}
	return err
}

type goStompConsumer struct {
	conn *stomp.Conn
	sub  *stomp.Subscription
	done chan struct{}
	err  errorCell
}

func newGoStompConsumer(addr, queue string, sc scenario, handle func([]byte)) (consumer, error) {
	conn, err := dialGoStomp(addr)
	if err != nil {
		return nil, err
	}
	mode := stomp.AckAuto
	if sc.Persistent {
		mode = stomp.AckClientIndividual
	}
	sub, err := conn.Subscribe("/queue/"+queue, mode, stomp.SubscribeOpt.Header("prefetch-count", strconv.Itoa(prefetch)))
	if err != nil {
		_ = conn.Disconnect()
		return nil, err
	}
	c := &goStompConsumer{conn: conn, sub: sub, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for msg := range sub.C {
			if msg.Err != nil {
				c.err.set(msg.Err)
				return
			}
			handle(msg.Body)
			if sc.Persistent {
				if err := conn.Ack(msg); err != nil {
					c.err.set(err)
					return
				}
			}
		}
	}()
	return c, nil
}

func (c *goStompConsumer) Err() error { return c.err.get() }

func (c *goStompConsumer) Close() error {
	err := c.sub.Unsubscribe()
	if errors.Is(err, stomp.ErrCompletedSubscription) {
		err = nil
	}
	err = errors.Join(err, c.conn.Disconnect())
	<-c.done
	return err
}
