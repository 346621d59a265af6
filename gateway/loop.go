package gateway

import (
	"errors"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/sirupsen/logrus"

	"github.com/stompgate/stompgate/gateway/codec"
)

// loop is the session loop, the single owner of session state. It processes
// client frames strictly in order (a frame's broker round trips finish
// before the next starts, semantics 1), hands deliveries to the writer,
// matches confirms to receipts, and returns the error that ends the
// session (nil never: a DISCONNECT returns errClientDisconnected).
//
// Flow control (semantics 13): it stops taking client frames while
// flow.max_unconfirmed publishes await confirms or the broker blocks
// publishers, and stops taking deliveries while the writer queue is full.
func (s *session) loop() error {
	for {
		var inbound <-chan inboundItem
		if s.unconfirmed < s.cfg.Flow.MaxUnconfirmed && !s.blocked {
			inbound = s.inbound
		}
		var deliveries <-chan subDelivery
		var direct <-chan amqp.Delivery
		if !s.out.full() {
			deliveries = s.deliveries
			if s.direct != nil {
				direct = s.direct.deliveries
			}
		}
		// Held publishes go out before the loop can block: unless a client
		// frame is ready (inbound is nil, len 0, while reading pauses).
		if s.heldPublishes > 0 && (len(inbound) == 0 || s.heldPublishes >= maxHeldPublishes) {
			s.flushBrokerWrites()
		}
		select {
		case item := <-inbound:
			if item.err != nil {
				return s.readError(item.err)
			}
			s.obs.FrameIn(item.frame.Command)
			if s.trace {
				s.log.WithFields(logrus.Fields{"command": item.frame.Command, "headers": item.frame.Headers, "body_bytes": len(item.frame.Body)}).Trace("frame in")
			}
			if err := s.handleFrameResuming(item.frame); err != nil {
				if !errors.Is(err, errClientDisconnected) {
					s.failedFrame = item.frame
				}
				return err
			}
			s.recycleBody(item.frame) // bodypool.go
		case d, ok := <-direct:
			sub := s.direct
			if !ok {
				s.direct = nil
				if err := s.resumeOr(s.handleSubEvent(sub.endEvent())); err != nil {
					return err
				}
				continue
			}
			s.deliver(subDelivery{sub: sub, d: d})
		case d := <-deliveries:
			if d.closed {
				if err := s.resumeOr(s.handleSubEvent(d.sub.endEvent())); err != nil {
					return err
				}
				continue
			}
			s.deliver(d)
		case c, ok := <-s.confirms:
			if err := s.onConfirm(c, ok); err != nil {
				return err
			}
		case e, ok := <-s.pubClose:
			if err := s.resumeOr(brokerCloseError(e, ok)); err != nil {
				return err
			}
		case e, ok := <-s.connClose:
			if err := s.resumeOr(brokerCloseError(e, ok)); err != nil {
				return err
			}
		case b, ok := <-s.blockedCh:
			if !ok {
				s.blockedCh = nil
				continue
			}
			s.blocked = b.Active
			s.log.WithField("reason", b.Reason).Infof("broker flow control: blocked=%v", b.Active)
		case active, ok := <-s.pubFlow:
			if !ok {
				s.pubFlow = nil
				continue
			}
			s.blocked = !active
		case <-s.out.space:
		case <-s.tok.expired: // token.go
			return s.tokenExpired()
		case <-s.recheck: // acl.go: the rules were reloaded
			if err := s.recheckSubscriptions(); err != nil {
				return err
			}
		case <-s.retryC:
			if err := s.resumeOr(s.republishNacked()); err != nil {
				return err
			}
		case err := <-s.writerErr:
			return err
		case <-s.shutdownCh:
			// Semantics 15: stop reading, wait for confirms, then ERROR.
			if err := s.awaitConfirms(s.cfg.ShutdownTimeout); err != nil {
				return err
			}
			return errShuttingDown
		case <-s.killCh:
			return errKilled
		}
	}
}

// maxFrameResumes bounds how often one client frame is tried again after
// the connection it was using was lost and the session resumed.
const maxFrameResumes = 3

// handleFrameResuming is handleFrame, carried on a new AMQP connection
// when the one it used is lost (amqp.resume_sessions): the frame runs
// again after the resume. A SEND whose publish failed is published then;
// an ACK of a message of the lost connection is ignored, as after any
// resume. Only called from the session loop.
func (s *session) handleFrameResuming(f *codec.Frame) error {
	err := s.handleFrame(f)
	for try := 0; err != nil && try < maxFrameResumes && s.resumable(err); try++ {
		if err = s.resume(err); err != nil {
			return err
		}
		err = s.handleFrame(f)
	}
	return err
}

// resumeOr returns nil when err is nil or when it meant a lost AMQP
// connection and the session resumed on a new one; otherwise the error
// that ends the session. Only called from the session loop.
func (s *session) resumeOr(err error) error {
	if err == nil || !s.resumable(err) {
		return err
	}
	return s.resume(err)
}

// brokerCloseError turns an AMQP close notification into the error that
// ends the session (semantics 14.3). A close the broker sent keeps its code
// and text; a link lost without one is "AMQP connection died".
func brokerCloseError(e *amqp.Error, ok bool) error {
	if !ok || e == nil {
		return errAMQPConnectionDied
	}
	if !e.Server {
		return &connectionDiedError{reason: e.Reason}
	}
	return e
}

// handleFrame dispatches one client frame. Only called from the session loop.
func (s *session) handleFrame(f *codec.Frame) error {
	switch f.Command {
	case codec.CmdSend:
		return s.onSend(f)
	case codec.CmdSubscribe:
		return s.onSubscribe(f)
	case codec.CmdUnsubscribe:
		return s.onUnsubscribe(f)
	case codec.CmdAck:
		return s.onAck(f, false)
	case codec.CmdNack:
		return s.onAck(f, true)
	case codec.CmdBegin:
		return s.onBegin(f)
	case codec.CmdCommit:
		return s.onCommit(f)
	case codec.CmdAbort:
		return s.onAbort(f)
	case codec.CmdDisconnect:
		return s.onDisconnect(f)
	case codec.CmdConnect, codec.CmdStomp:
		return protocolError("Bad CONNECT", "Already connected\n")
	}
	// The codec only returns client commands.
	return protocolError("Bad command", "Could not interpret command \""+f.Command+"\"\n")
}

// sendReceipt queues a RECEIPT for f if it asked for one.
func (s *session) sendReceipt(f *codec.Frame) {
	if r, ok := f.Headers.Get("receipt"); ok {
		s.queueReceipt(r)
	}
}

func (s *session) queueReceipt(id string) {
	rf := codec.Frame{Command: codec.CmdReceipt, Headers: codec.Headers{{Name: "receipt-id", Value: id}}}
	s.queueFrame(&rf, nil)
}

// queueFrame queues f for the writer, encoded for the session's version.
func (s *session) queueFrame(f *codec.Frame, ack *autoAck) {
	s.obs.FrameOut(f.Command)
	if s.trace {
		s.log.WithFields(logrus.Fields{"command": f.Command, "headers": f.Headers, "body_bytes": len(f.Body)}).Trace("frame out")
	}
	s.out.appendFrame(f, s.version, s.cfg.STOMP.TrailingLF, ack)
}

// onConfirm takes one receive from the confirms channel. A closed one
// (amqp091-go closes it with the channel) is dropped from the selects; the
// close notification says why.
func (s *session) onConfirm(c amqp.Confirmation, ok bool) error {
	if !ok {
		s.confirms = nil
		return nil
	}
	return s.confirm(c)
}

// confirm handles one publisher confirm. amqp091-go delivers them one per
// publish in sequence order, multiple confirms expanded.
func (s *session) confirm(c amqp.Confirmation) error {
	s.unconfirmed--
	p, tracked := s.confirmInflight(c.DeliveryTag)
	var pr pendingReceipt
	if len(s.receipts) > 0 && s.receipts[0].seq == c.DeliveryTag {
		pr = s.receipts[0]
		s.receipts[0] = pendingReceipt{}
		s.receipts = s.receipts[1:]
		if len(s.receipts) == 0 {
			s.receipts = s.receipts[:0:0]
		}
	}
	if !c.Ack {
		if tracked && s.retryNacked(p) {
			return nil
		}
		// Semantics 11: a broker basic.nack ends the session.
		pe := protocolError("Send failed", "the broker did not accept the message\n")
		pe.ReceiptID = pr.receipt
		if pe.ReceiptID == "" {
			pe.ReceiptID = pr.commitReceipt
		}
		return pe
	}
	if pr.receipt != "" {
		s.obs.ReceiptLatency(time.Since(pr.arrived))
		s.queueReceipt(pr.receipt)
	}
	if pr.commitReceipt != "" {
		s.queueReceipt(pr.commitReceipt)
	}
	return nil
}

// awaitConfirms waits until every publish is confirmed, at most timeout,
// sending the receipts that become due. Client frames are not read and
// deliveries not taken meanwhile. Only called from the session loop.
func (s *session) awaitConfirms(timeout time.Duration) error {
	if s.unconfirmed == 0 {
		return nil
	}
	s.flushBrokerWrites()
	t := time.NewTimer(timeout)
	defer t.Stop()
	for s.unconfirmed > 0 {
		select {
		case c, ok := <-s.confirms:
			if err := s.onConfirm(c, ok); err != nil {
				return err
			}
		case e, ok := <-s.pubClose:
			return brokerCloseError(e, ok)
		case e, ok := <-s.connClose:
			return brokerCloseError(e, ok)
		case <-s.retryC:
			if err := s.republishNacked(); err != nil {
				return err
			}
		case err := <-s.writerErr:
			return err
		case <-t.C:
			s.log.WithField("unconfirmed", s.unconfirmed).Warn("gave up waiting for publisher confirms")
			return nil
		case <-s.killCh:
			return errKilled
		}
	}
	return nil
}

// onDisconnect handles DISCONNECT (semantics 15): discard open
// transactions, wait for outstanding confirms (≤ stomp.disconnect_timeout),
// then RECEIPT and close without ERROR.
func (s *session) onDisconnect(f *codec.Frame) error {
	s.txs = nil
	s.txBytes = 0
	if err := s.awaitConfirms(s.cfg.STOMP.DisconnectTimeout); err != nil {
		return err
	}
	s.sendReceipt(f)
	return errClientDisconnected
}
