package gateway

import (
	"fmt"

	"github.com/stompgate/stompgate/gateway/codec"
	"github.com/stompgate/stompgate/mapping"
)

// onAck handles ACK and NACK (semantics 10).
func (s *session) onAck(f *codec.Frame, nack bool) error {
	command := codec.CmdAck
	if nack {
		command = codec.CmdNack
	}
	value, present, headerName := mapping.AckIDHeader(s.version, f.Headers)
	if !present {
		return mapping.MissingAckID(command, headerName)
	}
	tag, sessionID, seq, ok := mapping.ParseAckID(value)
	if !ok {
		return mapping.InvalidAckID(command, headerName)
	}
	var tx *transaction
	if txID, ok := f.Headers.Get("transaction"); ok {
		var err error
		if tx, err = s.transaction(txID); err != nil {
			return err
		}
	}
	if sessionID != s.id {
		// Semantics 10.2 step 2: the delivery was requeued when its session
		// ended; a stale tag never acknowledges an unrelated message.
		s.log.WithField("id", value).Info("ignoring ACK/NACK of another session's message")
		s.sendReceipt(f)
		return nil
	}
	sub, ok := s.subs[tag]
	if !ok {
		if _, retired := s.retiredTags[tag]; retired {
			s.sendReceipt(f)
			return nil
		}
		return protocolError("Subscription not found", fmt.Sprintf("Message with id \"%s\" has no subscription\n", value))
	}
	if sub.ack == mapping.AckAuto || seq < sub.firstSeq {
		// Semantics 10.2 step 4: already acknowledged by the gateway; or
		// step 3: a message of an earlier subscription with this consumer
		// tag, requeued when it was unsubscribed.
		s.sendReceipt(f)
		return nil
	}
	if _, ok := sub.outstanding.find(seq); !ok {
		return protocolError("precondition_failed", fmt.Sprintf("PRECONDITION_FAILED - unknown delivery tag %d\n", seq))
	}
	requeue := s.cfg.STOMP.DefaultNackRequeue
	if v, ok := mapping.ParseBoolHeader(f.Headers.Value("requeue")); ok {
		requeue = v
	}
	action := txAction{kind: txAck, tag: tag, seq: seq, requeue: requeue}
	if nack {
		action.kind = txNack
	}
	if tx != nil {
		if err := s.bufferAction(tx, action, 0); err != nil {
			return err
		}
		s.sendReceipt(f)
		return nil
	}
	if err := s.settle(sub, action); err != nil {
		return err
	}
	s.sendReceipt(f)
	return nil
}

// settle performs an ACK or NACK on sub's channel: cumulative for
// ack:client, single for client-individual (semantics 10.2 step 6).
func (s *session) settle(sub *subscription, a txAction) error {
	deliveryTag, ok := sub.outstanding.find(a.seq)
	if !ok {
		return nil // settled meanwhile by a cumulative ack
	}
	multiple := sub.ack == mapping.AckClient
	if a.kind == txNack && a.requeue && sub.amq.maxRedeliveries > 0 {
		return s.nackCounted(sub, a.seq, multiple) // activemq.go
	}
	sub.amq.release(a.seq, multiple)
	var err error
	if a.kind == txNack {
		err = sub.ch.Nack(deliveryTag, multiple, a.requeue)
	} else {
		err = sub.ch.Ack(deliveryTag, multiple)
	}
	if err != nil {
		return s.channelError(err)
	}
	if multiple {
		sub.outstanding.removeUpTo(a.seq)
	} else {
		sub.outstanding.remove(a.seq)
	}
	return nil
}
