package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/sirupsen/logrus"

	"github.com/stompgate/stompgate/gateway/broker"
)

// Session resume (amqp.resume_sessions, README "Running more than one").
// When a session's AMQP connection dies (a node killed, a link cut, the
// broker's CONNECTION_FORCED), the session loop does not end the session:
// it dials the amqp.url list again, the lost broker last, opens every
// subscription again under the same consumer tag and STOMP id, and
// publishes again, in order, every message whose confirm had not arrived.
// Their RECEIPTs follow the new confirms, so a RECEIPT still means the
// broker has the message (at-least-once: a message may be stored twice).
//
// The broker requeues what was unacknowledged on the dead connection and
// delivers it again with redelivered:true. A resumed subscription starts a
// new range of message numbers (subscription.firstSeq), so an ACK or NACK
// of a message delivered before the resume is ignored with its RECEIPT, as
// for an earlier subscription with the same id (semantics 10.2 step 3).
//
// What cannot move ends the session with an ERROR: an open transaction (its
// buffered frames may be half applied) and temp queues (their broker-made
// names were handed out in reply-to headers). A resume that has not
// succeeded within amqp.resume_timeout ends the session too. While the loop
// resumes it takes no client frames (TCP pushes back) and the writer goes
// on sending heart-beats.
//
// Everything here runs on the session loop.

// inflightPublish is a publish whose confirm has not arrived, kept with
// amqp.resume_sessions so that a resume can publish it again.
type inflightPublish struct {
	seq           uint64
	exchange, key string
	msg           amqp.Publishing
	receipt       string
	commitReceipt string
	// firstNack is when the broker first nacked it (zero: never).
	firstNack time.Time
}

// nackRetryDelay is the pause before nacked publishes go again. A quorum
// queue nacks what it could not commit while it elects a new leader, which
// takes a few seconds after a node is lost.
const nackRetryDelay = 250 * time.Millisecond

// resumeBackoff bounds the pause between two resume attempts.
const (
	resumeBackoffMin = 50 * time.Millisecond
	resumeBackoffMax = time.Second
)

// resumable reports whether err means that the session's AMQP connection
// is gone, so that a resume can carry the session on: the connection is
// closed and it was lost (no close method from the broker: a reset, missed
// heartbeats) or the broker closed it with CONNECTION_FORCED (a node
// stopping). Errors of a channel on a live connection never are.
func (s *session) resumable(err error) bool {
	if !s.cfg.AMQP.ResumeSessions || s.broker == nil || !s.broker.IsClosed() {
		return false
	}
	if errors.Is(err, errAMQPConnectionDied) {
		return true
	}
	var ae *amqp.Error
	if errors.As(err, &ae) {
		return !ae.Server || ae.Code == amqp.ConnectionForced
	}
	return false
}

// resume moves the session to a new AMQP connection after cause, or
// returns the error that ends the session.
func (s *session) resume(cause error) error {
	start := time.Now()
	log := s.log.WithField("cause", cause.Error())
	if len(s.txs) > 0 {
		s.obs.SessionResumed(0, false)
		return protocolError("Transaction aborted", "The AMQP connection was lost while a transaction was open; its frames were not applied. The session cannot be resumed.\n")
	}
	if len(s.tempQueues) > 0 {
		s.obs.SessionResumed(0, false)
		return protocolError("Session not resumed", "The AMQP connection was lost; temp queues cannot move to another broker connection.\n")
	}
	// Confirms that arrived before the connection died are real: take them
	// first, so only what the broker never confirmed is published again.
	if err := s.collectConfirms(); err != nil {
		return err
	}
	lost := broker.BrokerURL(s.broker)
	_ = s.broker.Close()
	s.obs.BrokerConnection("closed")
	log.WithFields(logrus.Fields{"broker": lost, "unconfirmed": len(s.inflight), "subscriptions": len(s.subs)}).Warn("AMQP connection lost; resuming the session")

	deadline := start.Add(s.cfg.AMQP.ResumeTimeout)
	backoff := resumeBackoffMin
	var err error
	for attempt := 1; ; attempt++ {
		if err = s.resumeOnce(lost, deadline); err == nil {
			d := time.Since(start)
			s.obs.SessionResumed(d, true)
			log.WithFields(logrus.Fields{"attempts": attempt, "duration": d.Round(time.Millisecond).String(), "broker": broker.BrokerURL(s.broker)}).Info("session resumed")
			return nil
		}
		log.WithError(err).WithField("attempt", attempt).Info("resume attempt failed")
		// Every error is worth another try until the deadline, refusals
		// too: these credentials were accepted at CONNECT, and a node that
		// is starting or rejoining its cluster can refuse them for a while.
		wait := min(backoff, time.Until(deadline))
		if wait <= 0 {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.killCh:
			t.Stop()
			return errKilled
		case <-s.shutdownCh:
			t.Stop()
			return errShuttingDown
		case werr := <-s.writerErr:
			t.Stop()
			return werr
		}
		backoff = min(2*backoff, resumeBackoffMax)
	}
	s.obs.SessionResumed(time.Since(start), false)
	return protocolError("Session not resumed", fmt.Sprintf("The AMQP connection was lost (%v) and the session could not be resumed within amqp.resume_timeout (%v): %v\n", cause, s.cfg.AMQP.ResumeTimeout, err))
}

// collectConfirms handles the confirms already buffered from the lost
// publisher channel, up to its close.
func (s *session) collectConfirms() error {
	for s.confirms != nil {
		select {
		case c, ok := <-s.confirms:
			if err := s.onConfirm(c, ok); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

// resumeOnce makes one attempt: dial, subscribe again, publish again. On
// an error the new connection is closed and the session keeps what the
// next attempt needs (s.inflight).
func (s *session) resumeOnce(lost string, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	login := s.login
	login.Avoid = lost
	conn, err := s.dial(ctx, login)
	if err != nil {
		s.observeDialError(err)
		return err
	}
	s.useBroker(conn)
	s.pub, s.pubReady, s.confirms, s.pubClose, s.pubFlow = nil, false, nil, nil, nil
	// The ActiveMQ dialect's redelivery channel and the delay queues it
	// declared belong to the lost connection too (activemq.go).
	s.amq.ch, s.amq.confirms, s.amq.ready = nil, nil, nil
	s.blocked, s.unconfirmed, s.heldPublishes = false, 0, 0
	s.declared = nil
	s.receipts = nil
	if err := s.resubscribeAll(); err != nil {
		_ = conn.Close()
		s.obs.BrokerConnection("closed")
		return err
	}
	pending := append(s.nacked, s.inflight...)
	s.nacked, s.retryC, s.inflight = nil, nil, nil
	if err := s.republish(pending); err != nil {
		// Whatever is not yet confirmed goes again next time.
		_ = conn.Close()
		s.obs.BrokerConnection("closed")
		return err
	}
	return nil
}

// resubscribeAll opens every subscription again, in the order they were
// made, so the first is again the loop's direct one.
func (s *session) resubscribeAll() error {
	subs := make([]*subscription, 0, len(s.subs))
	for _, sub := range s.subs {
		subs = append(subs, sub)
	}
	slices.SortFunc(subs, func(a, b *subscription) int { return cmp.Compare(a.firstSeq, b.firstSeq) })
	s.direct = nil
	for _, old := range subs {
		if err := s.resubscribe(old); err != nil {
			return fmt.Errorf("subscribe %q again: %w", old.id, err)
		}
	}
	return nil
}

// resubscribe declares, binds and consumes old's queue again on a new
// channel, under the same consumer tag and id. A transient /topic queue
// (exclusive, gone with the old connection) is declared again under its
// name; messages published while it did not exist are not in it.
func (s *session) resubscribe(old *subscription) error {
	ch, err := s.broker.Channel()
	if err != nil {
		return err
	}
	plan := old.plan
	if plan.Declare != nil {
		if err := s.declareSubscriptionQueue(ch, plan.Declare); err != nil {
			_ = ch.Close()
			return err
		}
	}
	if plan.Bind != nil {
		if err := ch.QueueBind(old.queue, plan.Bind.RoutingKey, plan.Bind.Exchange, false, nil); err != nil {
			_ = ch.Close()
			return err
		}
	}
	sub := &subscription{
		tag:     old.tag,
		id:      old.id,
		hasID:   old.hasID,
		dest:    old.dest,
		ack:     old.ack,
		ch:      ch,
		queue:   old.queue,
		durable: old.durable,
		plan:    plan,
	}
	if err := s.startConsumer(sub, old.prefetch, plan.ConsumeArgs); err != nil {
		_ = ch.Close()
		return err
	}
	return nil
}

// trackInflight records a confirmed-mode publish for a later resume.
func (s *session) trackInflight(seq uint64, exchange, key string, msg amqp.Publishing, receipt, commitReceipt string) {
	if !s.cfg.AMQP.ResumeSessions {
		return
	}
	s.inflight = append(s.inflight, inflightPublish{seq: seq, exchange: exchange, key: key, msg: msg, receipt: receipt, commitReceipt: commitReceipt})
}

// confirmInflight takes the publish that confirm seq settles out of the
// inflight list. Confirms come in publish order (amqp091-go expands
// multiple ones).
func (s *session) confirmInflight(seq uint64) (inflightPublish, bool) {
	if len(s.inflight) == 0 || s.inflight[0].seq != seq {
		return inflightPublish{}, false
	}
	p := s.inflight[0]
	s.inflight[0] = inflightPublish{}
	s.inflight = s.inflight[1:]
	if len(s.inflight) == 0 {
		s.inflight = nil
	}
	return p, true
}

// retryNacked schedules a nacked publish to go again (amqp.resume_sessions:
// a broker failing over nacks what it could not store; semantics 11 would
// end the session). It stays unconfirmed, so flow control and DISCONNECT
// wait for it, and its RECEIPT follows the confirm of the retry. It reports
// false, and the nack ends the session as usual, once the message has been
// nacked for longer than amqp.resume_timeout.
func (s *session) retryNacked(p inflightPublish) bool {
	now := time.Now()
	if p.firstNack.IsZero() {
		p.firstNack = now
	} else if now.Sub(p.firstNack) > s.cfg.AMQP.ResumeTimeout {
		return false
	}
	s.nacked = append(s.nacked, p)
	s.unconfirmed++
	if s.retryC == nil {
		s.retryC = time.After(nackRetryDelay)
	}
	return true
}

// republishNacked publishes the nacked messages again on a new publisher
// channel, with every other unconfirmed one: RabbitMQ 3.10 keeps nacking a
// channel whose first publish to a quorum queue met no leader, while a new
// channel works. Confirms the old channel still owed are lost with it, so
// those messages go again too (at-least-once).
func (s *session) republishNacked() error {
	pending := append(s.nacked, s.inflight...)
	s.nacked, s.retryC, s.inflight, s.receipts = nil, nil, nil, nil
	s.unconfirmed = 0 // every unconfirmed publish is in pending
	old := s.pub
	s.pub, s.pubReady, s.confirms, s.pubClose, s.pubFlow = nil, false, nil, nil, nil
	if old != nil {
		_ = old.Close()
	}
	return s.republish(pending)
}

// republish publishes pending in order; on an error the rest stays in
// s.inflight for a resume. Only called from the session loop.
func (s *session) republish(pending []inflightPublish) error {
	for i, p := range pending {
		if err := s.publish(p.exchange, p.key, p.msg, p.receipt, p.commitReceipt); err != nil {
			s.inflight = append(s.inflight, pending[i:]...)
			return err
		}
		s.inflight[len(s.inflight)-1].firstNack = p.firstNack
	}
	s.flushBrokerWrites()
	return nil
}
