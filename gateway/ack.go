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
	tag, sessionID, deliveryTag, ok := mapping.ParseAckID(value)
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
	if sub.ack == mapping.AckAuto {
		// Semantics 10.2 step 4: already acknowledged by the gateway.
		s.sendReceipt(f)
		return nil
	}
	if !sub.outstanding.contains(deliveryTag) {
		return protocolError("precondition_failed", fmt.Sprintf("PRECONDITION_FAILED - unknown delivery tag %d\n", deliveryTag))
	}
	requeue := s.cfg.STOMP.DefaultNackRequeue
	if v, ok := mapping.ParseBoolHeader(f.Headers.Value("requeue")); ok {
		requeue = v
	}
	action := txAction{kind: txAck, tag: tag, deliveryTag: deliveryTag, requeue: requeue}
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
	multiple := sub.ack == mapping.AckClient
	var err error
	if a.kind == txNack {
		err = sub.ch.Nack(a.deliveryTag, multiple, a.requeue)
	} else {
		err = sub.ch.Ack(a.deliveryTag, multiple)
	}
	if err != nil {
		return err
	}
	if multiple {
		sub.outstanding.removeUpTo(a.deliveryTag)
	} else {
		sub.outstanding.remove(a.deliveryTag)
	}
	return nil
}
