package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/auth"
	"github.com/stompgate/stompgate/gateway/broker"
	"github.com/stompgate/stompgate/gateway/codec"
	"github.com/stompgate/stompgate/mapping"
)

// maxDeclaredCache bounds the per-session cache of declared /queue names;
// when full it is reset (a redeclare is harmless, only slower).
const maxDeclaredCache = 4096

// onSend handles SEND (semantics 7): validate, declare what the
// destination needs, create a temp reply queue if reply-to asks for one,
// then publish (or buffer it in a transaction). The RECEIPT follows the
// broker's confirm (semantics 11).
func (s *session) onSend(f *codec.Frame) error {
	if f.Headers.Value("destination") == tokenDestination {
		return s.renewToken(f) // token.go: nothing is published
	}
	// rabbitmq_stomp checks the headers not allowed on SEND (message-id)
	// before the destination.
	msg, replyTo, err := mapping.PublishingFromSend(f.Headers, s.publishOptions())
	if err != nil {
		return err
	}
	if dropUserID, err := s.checkUserID(f.Headers); err != nil { // acl.go
		return err
	} else if dropUserID {
		msg.UserId = ""
	}
	if err := s.profile.AdaptPublishing(&msg); err != nil {
		return err
	}
	destValue, ok := f.Headers.Get("destination")
	if !ok {
		return mapping.MissingDestination(codec.CmdSend)
	}
	dest, err := mapping.ParseDestination(destValue, codec.CmdSend)
	if err != nil {
		return err
	}
	if err := s.allow(auth.VerbSend, destValue); err != nil { // acl.go
		return err
	}
	var tx *transaction
	if txID, ok := f.Headers.Get("transaction"); ok {
		if tx, err = s.transaction(txID); err != nil {
			return err
		}
	}
	// Semantics 12: declares and temp-queue creation happen at arrival,
	// even inside a transaction; only the publish is deferred.
	decl, err := mapping.SendDeclare(dest, f.Headers)
	if err != nil {
		return err
	}
	mapping.ApplyDefaultQueueType(decl, s.cfg.STOMP.DefaultQueueType)
	if decl != nil && !s.activeMQQueueExists(decl) { // activemq.go
		pub, err := s.publisher()
		if err != nil {
			return err
		}
		if err := s.declareQueue(pub, decl); err != nil {
			return err
		}
	}
	if replyTo.Kind == mapping.DestTempQueue {
		queue, err := s.ensureTempQueue(replyTo.Queue)
		if err != nil {
			return err
		}
		msg.ReplyTo = queue
	}
	msg.Body = f.Body
	exchange, key := dest.PublishTarget(s.cfg.STOMP.DefaultTopicExchange)
	if s.activeMQ() {
		var drop bool
		if exchange, drop, err = s.activeMQSend(f.Headers, &msg, exchange); err != nil { // activemq.go
			return err
		} else if drop {
			s.sendReceipt(f) // issue 14: expired, not published, answered as usual
			return nil
		}
	}
	receipt := f.Headers.Value("receipt")
	if tx != nil {
		return s.bufferAction(tx, txAction{kind: txSend, exchange: exchange, key: key, msg: msg, receipt: receipt}, int64(len(msg.Body)))
	}
	return s.publish(exchange, key, msg, receipt, "")
}

func (s *session) publishOptions() mapping.SendOptions {
	return mapping.SendOptions{FrameMax: s.frameMax}
}

// publisher returns the publisher channel. The first call opens it and
// switches it to confirm mode (semantics 1), with a confirm buffer beyond
// the cap of unconfirmed publishes, so amqp091-go never blocks delivering a
// confirm while the loop is in a broker call. Only called from the session
// loop.
func (s *session) publisher() (broker.Channel, error) {
	if s.pubReady {
		return s.pub, nil
	}
	if s.pub == nil {
		pub, err := s.broker.Channel()
		if err != nil {
			return nil, s.channelError(err)
		}
		s.pub = pub
		s.pubClose = pub.NotifyClose(make(chan *amqp.Error, 1))
		s.pubFlow = pub.NotifyFlow(make(chan bool, 4))
	}
	if s.profile.PublisherConfirms() {
		s.confirms = s.pub.NotifyPublish(make(chan amqp.Confirmation, s.cfg.Flow.MaxUnconfirmed+16))
		if err := s.pub.Confirm(false); err != nil {
			return nil, s.channelError(err)
		}
	} else {
		s.log.Warn("broker has no publisher confirms: SEND receipts follow a synchronous round trip (read by the broker, not necessarily stored)")
	}
	s.pubReady = true
	return s.pub, nil
}

// publish sends one message on the publisher channel and records the
// receipts owed on its confirm. Only called from the session loop.
func (s *session) publish(exchange, key string, msg amqp.Publishing, receipt, commitReceipt string) error {
	if _, err := s.publisher(); err != nil {
		return err
	}
	if !s.profile.PublisherConfirms() {
		return s.publishUnconfirmed(exchange, key, msg, receipt, commitReceipt)
	}
	seq := s.pub.GetNextPublishSeqNo()
	// More client frames are already waiting: hold this publish's socket
	// write so that the next publishes share it; the loop flushes before
	// it waits (flushBrokerWrites).
	held := s.wires != nil && len(s.inbound) > 0
	if held {
		s.heldPublishes++
	}
	if err := s.basicPublish(held, exchange, key, msg); err != nil {
		return s.channelError(err)
	}
	s.unconfirmed++
	s.trackInflight(seq, exchange, key, msg, receipt, commitReceipt)
	s.obs.Published()
	if receipt != "" || commitReceipt != "" {
		s.receipts = append(s.receipts, pendingReceipt{seq: seq, receipt: receipt, commitReceipt: commitReceipt, arrived: time.Now()})
	}
	return nil
}

// basicPublish publishes msg on the publisher channel, its socket write
// held if held. The hold ends even if the publish panics: on a shared
// connection a hold left open would hold other sessions' writes too.
func (s *session) basicPublish(held bool, exchange, key string, msg amqp.Publishing) error {
	if held {
		s.wires.HoldWrites()
		defer s.wires.ReleaseWrites()
	}
	// mandatory=false: unroutable messages are dropped yet confirmed, as
	// with the plugin (semantics 7).
	return s.pub.PublishWithContext(context.Background(), exchange, key, false, false, msg)
}

// maxHeldPublishes bounds how many publishes wait in a held socket write
// (with heldLimit bytes); at the bound the loop flushes even though more
// frames wait, so a steady stream of SENDs still reaches the broker in
// batches of this size.
const maxHeldPublishes = 16

// flushBrokerWrites writes what publishes held back. Only called from the
// session loop: before it waits for anything, when no client frame is
// waiting, or when maxHeldPublishes are held.
func (s *session) flushBrokerWrites() {
	if s.heldPublishes == 0 {
		return
	}
	s.heldPublishes = 0
	s.wires.FlushHeld()
}

// publishUnconfirmed publishes on a broker without publisher confirms
// (semantics 17): a receipt follows a synchronous round trip (basic.qos)
// on the publisher channel, so the broker has read the message, not
// necessarily stored it. Only called from the session loop.
func (s *session) publishUnconfirmed(exchange, key string, msg amqp.Publishing, receipt, commitReceipt string) error {
	arrived := time.Now()
	if err := s.pub.PublishWithContext(context.Background(), exchange, key, false, false, msg); err != nil {
		return s.channelError(err)
	}
	s.obs.Published()
	if receipt == "" && commitReceipt == "" {
		return nil
	}
	if err := s.pub.Qos(0, 0, false); err != nil {
		return s.channelError(err)
	}
	if receipt != "" {
		s.obs.ReceiptLatency(time.Since(arrived))
		s.queueReceipt(receipt)
	}
	if commitReceipt != "" {
		s.queueReceipt(commitReceipt)
	}
	return nil
}

// channelError prefers the broker's close reason over amqp091-go's generic
// "channel/connection is not open": when a publish or declare fails because
// the broker closed the channel, the close notification says why.
func (s *session) channelError(err error) error {
	var ae *amqp.Error
	if errors.As(err, &ae) && ae.Server {
		return ae
	}
	// Refused by the AMQP side before anything was sent (a Broker-J
	// channel's guard, channel-max): no close reason will come.
	var pe *codec.ProtocolError
	if errors.As(err, &pe) {
		return pe
	}
	// amqp091-go marks a channel closed before it sends the close
	// notification, so wait briefly for the broker's reason.
	t := time.NewTimer(closeReasonWait)
	defer t.Stop()
	select {
	case e, ok := <-s.pubClose:
		return brokerCloseError(e, ok)
	case e, ok := <-s.connClose:
		return brokerCloseError(e, ok)
	case <-t.C:
	}
	return err
}

// closeReasonWait bounds how long a failed broker call waits for the close
// notification that explains it.
const closeReasonWait = time.Second

// declareQueue declares decl on ch once per session and name (semantics
// 5.2: SEND and SUBSCRIBE share the cache).
func (s *session) declareQueue(ch broker.Channel, decl *mapping.QueueDeclare) error {
	if _, done := s.declared[decl.Name]; done {
		return nil
	}
	args, err := s.profile.AdaptQueueArgs(decl.Args)
	if err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(decl.Name, decl.Durable, decl.AutoDelete, decl.Exclusive && s.profile.ExclusiveQueues(), false, args); err != nil {
		return s.channelError(err)
	}
	if len(s.declared) >= maxDeclaredCache {
		clear(s.declared)
	}
	s.declared = lazyMap(s.declared)
	s.declared[decl.Name] = struct{}{}
	return nil
}

// ensureTempQueue returns the broker queue behind reply-to /temp-queue/<id>,
// creating it on first use (semantics 9): an exclusive, auto-delete queue,
// named by the broker, consumed on its own channel with tag
// T_/temp-queue/<id> and ack:auto semantics.
func (s *session) ensureTempQueue(id string) (string, error) {
	if q, ok := s.tempQueues[id]; ok {
		return q, nil
	}
	if len(s.subs) >= s.cfg.Limits.MaxSubscriptions {
		return "", protocolError("Too many subscriptions", "The session has reached limits.max_subscriptions subscriptions, temp queues included.\n")
	}
	ch, err := s.broker.Channel()
	if err != nil {
		return "", s.channelError(err)
	}
	// Brokers without server-named queues get a gateway-chosen name
	// (semantics 17, generic).
	name := ""
	if !s.profile.ServerNamedQueues() {
		name = "stompgate-temp-" + randomName()
	}
	q, err := ch.QueueDeclare(name, false, true, s.profile.ExclusiveQueues(), false, nil)
	if err != nil {
		_ = ch.Close()
		return "", s.channelError(err)
	}
	tag := "T_/temp-queue/" + id
	sub := &subscription{
		tag:   tag,
		id:    "/temp-queue/" + id,
		hasID: true,
		ack:   mapping.AckAuto,
		ch:    ch,
		queue: q.Name,
		temp:  true,
	}
	if err := s.startConsumer(sub, s.cfg.Flow.DefaultPrefetch, nil); err != nil {
		_ = ch.Close()
		return "", err
	}
	s.tempQueues = lazyMap(s.tempQueues)
	s.tempQueues[id] = q.Name
	return q.Name, nil
}

// randomName returns 22 characters of base64url from 16 random bytes.
func randomName() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
