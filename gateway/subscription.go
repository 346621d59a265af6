package gateway

import (
	"fmt"
	"sort"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/auth"
	"github.com/stompgate/stompgate/gateway/broker"
	"github.com/stompgate/stompgate/gateway/codec"
	"github.com/stompgate/stompgate/mapping"
)

// subscription is one SUBSCRIBE (or temp-queue consumer) and its own AMQP
// channel, so prefetch, cumulative acks and delivery tags are per
// subscription (semantics 1). Owned by the session loop; its forwarder
// goroutine, if it has one, only reads deliveries, cancels and closes.
type subscription struct {
	tag   string // consumer tag: T_<id> or Q_<destination>
	id    string // the SUBSCRIBE id (or destination when id-less)
	hasID bool
	dest  mapping.Destination
	ack   mapping.AckMode
	// prefetch is the subscription's basic.qos prefetch count.
	prefetch int
	ch       broker.Channel
	queue    string // the queue consumed
	// deliveries, cancels and closes are amqp091-go's channels for this
	// consumer, read by the loop (direct subscription) or its forwarder.
	deliveries <-chan amqp.Delivery
	cancels    <-chan string
	closes     <-chan *amqp.Error
	// durable is a durable /topic or /exchange subscription.
	durable bool
	temp    bool // a temp-queue reply consumer (semantics 9)
	// plan is the SUBSCRIBE's plan, kept to subscribe again on a resume.
	plan mapping.SubscriptionPlan

	// firstSeq is the first session-wide message number this subscription
	// could use: a smaller number in an ACK belongs to an earlier
	// subscription with the same consumer tag.
	firstSeq uint64
	// outstanding holds the deliveries sent to the client and not yet
	// acked or nacked (client and client-individual only).
	outstanding outstandingList
	// amq: selector, redelivery limit, client-id durable name (activemq.go).
	amq subAMQ
}

// subDelivery is one delivery on its way from a forwarder to the loop, or,
// with closed set, the end of sub's deliveries (after the last of them).
type subDelivery struct {
	sub    *subscription
	d      amqp.Delivery
	closed bool
}

// subEvent is a broker cancel or a channel close of a subscription.
type subEvent struct {
	sub          *subscription
	serverCancel bool        // basic.cancel from the broker
	closeErr     *amqp.Error // channel closed (nil: closed by us)
}

func (s *session) subscribeOptions() mapping.SubscribeOptions {
	return mapping.SubscribeOptions{
		TopicExchange:   s.cfg.STOMP.DefaultTopicExchange,
		DefaultPrefetch: s.cfg.Flow.DefaultPrefetch,
		MaxPrefetch:     s.cfg.Flow.MaxPrefetch,
		RandomName:      randomName,
	}
}

// onSubscribe handles SUBSCRIBE (semantics 6.1, 6.2).
func (s *session) onSubscribe(f *codec.Frame) error {
	destValue, ok := f.Headers.Get("destination")
	if !ok {
		return mapping.MissingDestination(codec.CmdSubscribe)
	}
	dest, err := mapping.ParseDestination(destValue, codec.CmdSubscribe)
	if err != nil {
		return err
	}
	if err := s.allow(auth.VerbSubscribe, destValue); err != nil { // acl.go
		return err
	}
	plan, err := mapping.PlanSubscription(dest, f.Headers, s.subscribeOptions())
	if err != nil {
		return err
	}
	if dest.Kind == mapping.DestQueue {
		mapping.ApplyDefaultQueueType(plan.Declare, s.cfg.STOMP.DefaultQueueType)
	}
	amq, err := s.planActiveMQSubscription(dest, f.Headers, &plan) // activemq.go
	if err != nil {
		return err
	}
	// Semantics 6.2 step 1: limits and duplicates before anything is
	// declared, so no queue is left behind and no RECEIPT goes out.
	if len(s.subs) >= s.cfg.Limits.MaxSubscriptions {
		return protocolError("Too many subscriptions", fmt.Sprintf("The session already has %d subscriptions (limits.max_subscriptions).\n", len(s.subs)))
	}
	if _, dup := s.subs[plan.ConsumerTag]; dup {
		return mapping.DuplicateSubscription(plan.ConsumerTag)
	}
	ch, err := s.broker.Channel()
	if err != nil {
		return s.channelError(err)
	}
	sub := &subscription{
		tag:     plan.ConsumerTag,
		id:      plan.ID,
		hasID:   plan.HasID,
		dest:    dest,
		ack:     plan.Ack,
		ch:      ch,
		queue:   plan.Queue,
		durable: plan.Durable,
		plan:    plan,
		amq:     amq,
	}
	if !plan.HasID {
		sub.id = destValue
	}
	if plan.Declare != nil && !(dest.Kind == mapping.DestQueue && s.activeMQQueueExists(plan.Declare)) { // activemq.go
		if err := s.declareSubscriptionQueue(ch, plan.Declare); err != nil {
			_ = ch.Close()
			return err
		}
		if dest.Kind == mapping.DestQueue {
			s.declared = lazyMap(s.declared)
			s.declared[plan.Declare.Name] = struct{}{}
		}
	}
	if plan.Bind != nil {
		if err := ch.QueueBind(plan.Queue, plan.Bind.RoutingKey, plan.Bind.Exchange, false, nil); err != nil {
			s.cleanUpSubscriptionQueue(plan)
			return err
		}
	}
	if err := s.startConsumer(sub, plan.Prefetch, plan.ConsumeArgs); err != nil {
		s.cleanUpSubscriptionQueue(plan)
		_ = ch.Close()
		return err
	}
	// Semantics 18: the RECEIPT is queued before any delivery of this
	// subscription can reach the writer (deliveries pass through this loop).
	s.sendReceipt(f)
	return nil
}

// declareSubscriptionQueue declares a subscription's queue on ch as the
// broker profile allows (a SUBSCRIBE, and a resume subscribing again).
func (s *session) declareSubscriptionQueue(ch broker.Channel, decl *mapping.QueueDeclare) error {
	args, err := s.profile.AdaptQueueArgs(decl.Args)
	if err != nil {
		return err
	}
	_, err = ch.QueueDeclare(decl.Name, decl.Durable, decl.AutoDelete, decl.Exclusive && s.profile.ExclusiveQueues(), false, args)
	return err
}

// cleanUpSubscriptionQueue deletes a subscription queue declared by a
// SUBSCRIBE whose bind or consume failed, on a fresh channel and only if
// unused and empty, so a durable backlog is never destroyed (semantics 6.2).
func (s *session) cleanUpSubscriptionQueue(plan mapping.SubscriptionPlan) {
	if plan.Bind == nil || plan.Declare == nil {
		return
	}
	ch, err := s.broker.Channel()
	if err != nil {
		return
	}
	_, _ = ch.QueueDelete(plan.Queue, true, true, false)
	_ = ch.Close()
}

// startConsumer sets qos, starts basic.consume (no_ack=false always,
// semantics 10.3) and registers sub. The session's first subscription is
// the loop's direct subscription: the loop takes its deliveries from
// amqp091-go itself, without a goroutine or a hand-off. Later ones, while
// it lives, get a forwarder goroutine each.
func (s *session) startConsumer(sub *subscription, prefetch int, args amqp.Table) error {
	if err := sub.ch.Qos(prefetch, 0, false); err != nil {
		return err
	}
	sub.prefetch = prefetch
	sub.cancels = sub.ch.NotifyCancel(make(chan string, 1))
	sub.closes = sub.ch.NotifyClose(make(chan *amqp.Error, 1))
	deliveries, err := sub.ch.Consume(sub.queue, sub.tag, false, false, false, false, args)
	if err != nil {
		return err
	}
	sub.deliveries = deliveries
	sub.firstSeq = s.messageSeq + 1
	if old, ok := s.subs[sub.tag]; ok && old != sub {
		s.carryActiveMQ(old, sub) // activemq.go: a resume keeps selector and limit
	}
	s.subs[sub.tag] = sub
	delete(s.retiredTags, sub.tag)
	if s.direct == nil {
		s.direct = sub
		return nil
	}
	if s.deliveries == nil {
		s.deliveries = make(chan subDelivery, 8)
	}
	s.wg.Add(1)
	go s.forward(sub)
	return nil
}

// forward hands sub's deliveries to the session loop and then, on the
// same channel so that it comes after them, their end. It blocks while the
// loop takes no deliveries (writer queue full), so they stay in
// amqp091-go's consumer buffer, bounded by prefetch. Runs in its own
// goroutine, one per subscription other than the direct one.
func (s *session) forward(sub *subscription) {
	defer s.wg.Done()
	defer s.recoverGoroutine("forwarder")
	for {
		select {
		case d, ok := <-sub.deliveries:
			if !ok {
				select {
				case s.deliveries <- subDelivery{sub: sub, closed: true}:
				case <-s.done:
				}
				return
			}
			select {
			case s.deliveries <- subDelivery{sub: sub, d: d}:
			case <-s.done:
				return
			}
		case <-s.done:
			return
		}
	}
}

// endEvent says why sub's delivery channel was closed. amqp091-go sends a
// broker's basic.cancel to NotifyCancel, and a channel's close error to
// NotifyClose, before it closes the consumer's delivery channel; a channel
// closed by us sends neither. Called once the delivery channel is closed.
func (sub *subscription) endEvent() subEvent {
	ev := subEvent{sub: sub}
	select {
	case e, ok := <-sub.closes:
		if ok {
			ev.closeErr = e
		}
	default:
	}
	if ev.closeErr == nil {
		select {
		case _, ok := <-sub.cancels:
			ev.serverCancel = ok
		default:
		}
	}
	return ev
}

// handleSubEvent ends the session when the broker cancels an active
// subscription or closes its channel (semantics 6.4). Events of
// subscriptions already ended by the client are ignored.
func (s *session) handleSubEvent(ev subEvent) error {
	if s.subs[ev.sub.tag] != ev.sub {
		return nil
	}
	if ev.serverCancel {
		return &serverCancelError{subscription: ev.sub.id}
	}
	if ev.closeErr != nil {
		return brokerCloseError(ev.closeErr, true)
	}
	return nil
}

// serverCancelError: the broker canceled a subscription (semantics 6.4).
type serverCancelError struct{ subscription string }

func (e *serverCancelError) Error() string {
	return "server canceled subscription " + e.subscription
}

// deliver turns one delivery into a MESSAGE frame (semantics 8) and queues
// it. Only called from the session loop.
func (s *session) deliver(sd subDelivery) {
	sub := sd.sub
	if s.subs[sub.tag] != sub {
		// Unsubscribed meanwhile: its channel is closed and the delivery
		// requeued by the broker.
		return
	}
	d := &sd.d
	if int64(len(d.Body)) > s.cfg.Limits.MaxBody {
		// Semantics 8.4: not forwarded; a dead-letter exchange can catch it.
		_ = sub.ch.Reject(d.DeliveryTag, false)
		s.log.WithFields(map[string]any{"subscription": sub.id, "bytes": len(d.Body)}).Warn("delivery larger than limits.max_body rejected")
		return
	}
	s.profile.AdaptDelivery(d)
	restoreRedelivery(d) // activemq.go: a counted redelivery's own destination
	// Message numbers are session-wide, not AMQP delivery tags: a new
	// channel (a re-subscription with the same id) restarts its tags at 1,
	// and message-ids must stay unique in a session (STOMP 1.2).
	s.messageSeq++
	seq := s.messageSeq
	s.msgIDBuf = mapping.AppendMessageID(s.msgIDBuf[:0], sub.tag, s.id, seq)
	msgID := string(s.msgIDBuf)
	info := mapping.MessageInfo{
		SubscriptionID:  sub.id,
		HasSubscription: sub.hasID,
		MessageID:       msgID,
	}
	if sub.ack != mapping.AckAuto && s.version == codec.Version12 {
		info.AckID = msgID
	}
	s.hdrBuf = mapping.AppendMessageHeaders(s.hdrBuf[:0], info, d)
	if s.activeMQ() {
		s.hdrBuf = activeMQMessageHeaders(s.hdrBuf, d)
	}
	if sub.amq.sel != nil && !sub.amq.matches(s.hdrBuf) {
		// Issue 14: not sent, acknowledged at once (activemq.go).
		s.skipDelivery(sub, d.DeliveryTag)
		clear(s.hdrBuf)
		return
	}
	var ack *autoAck
	if sub.ack == mapping.AckAuto {
		ack = &autoAck{ch: sub.ch, tag: d.DeliveryTag, deferrable: sub.prefetch >= autoAckMinPrefetch}
	} else {
		sub.outstanding.add(seq, d.DeliveryTag)
		sub.amq.hold(seq, d)
	}
	frame := codec.Frame{Command: codec.CmdMessage, Headers: s.hdrBuf, Body: d.Body}
	s.obs.Delivered()
	s.queueFrame(&frame, ack)
	clear(s.hdrBuf)
}

// onUnsubscribe handles UNSUBSCRIBE (semantics 6.3).
func (s *session) onUnsubscribe(f *codec.Frame) error {
	if handled, err := s.activeMQUnsubscribe(f); handled { // activemq.go
		return err
	}
	target, err := mapping.PlanUnsubscribe(f.Headers)
	if err != nil {
		return err
	}
	sub, ok := s.subs[target.ConsumerTag]
	if !ok || sub.temp {
		return mapping.NoSubscriptionFound(target)
	}
	if err := sub.ch.Cancel(sub.tag, false); err != nil {
		return err
	}
	// Only durable /topic subscriptions are deleted; durable /exchange ones
	// never are (rabbitmq_stomp maybe_delete_durable_sub/3).
	if target.DeleteDurable && sub.dest.Kind == mapping.DestTopic {
		if _, err := sub.ch.QueueDelete(sub.queue, false, false, false); err != nil {
			return err
		}
	}
	s.retire(sub)
	s.sendReceipt(f)
	return nil
}

// retire forgets sub and closes its channel, so unacked messages return to
// the queue at once. MESSAGEs of sub already queued for the client are
// written first and, for ack:auto, acknowledged, so they are neither
// requeued nor acked on a closed channel (a connection error). The wait is
// bounded by flow.write_timeout, after which the writer ends the session
// as a slow consumer anyway.
func (s *session) retire(sub *subscription) {
	delete(s.subs, sub.tag)
	if s.direct == sub {
		s.direct = nil
	}
	if len(s.retiredTags) >= maxDeclaredCache {
		clear(s.retiredTags)
	}
	s.retiredTags = lazyMap(s.retiredTags)
	s.retiredTags[sub.tag] = struct{}{}
	if sub.ack == mapping.AckAuto {
		t := time.NewTimer(s.cfg.Flow.WriteTimeout)
		select {
		case <-s.out.barrier():
		case <-t.C:
		case <-s.killCh:
		}
		t.Stop()
		s.out.ackQ.flush()
	}
	_ = sub.ch.Close()
}

// outstandingList holds a subscription's deliveries sent to the client and
// not yet acked or nacked, ascending in both message number and delivery
// tag. Acks usually come oldest first, so removal from the front is O(1).
type outstandingList struct {
	entries []outstanding
	head    int
}

// outstanding is one unsettled delivery: seq is the session-wide message
// number in its message-id, tag the AMQP delivery tag on the
// subscription's channel.
type outstanding struct {
	seq, tag uint64
}

func (l *outstandingList) add(seq, tag uint64) {
	l.entries = append(l.entries, outstanding{seq: seq, tag: tag})
}

func (l *outstandingList) live() []outstanding { return l.entries[l.head:] }

// find returns the delivery tag of message number seq.
func (l *outstandingList) find(seq uint64) (tag uint64, ok bool) {
	live := l.live()
	i := sort.Search(len(live), func(i int) bool { return live[i].seq >= seq })
	if i < len(live) && live[i].seq == seq {
		return live[i].tag, true
	}
	return 0, false
}

// removeUpTo removes every entry with a number ≤ seq (cumulative ack).
func (l *outstandingList) removeUpTo(seq uint64) {
	live := l.live()
	i := sort.Search(len(live), func(i int) bool { return live[i].seq > seq })
	l.head += i
	l.compact()
}

// remove removes message number seq.
func (l *outstandingList) remove(seq uint64) {
	live := l.live()
	i := sort.Search(len(live), func(i int) bool { return live[i].seq >= seq })
	if i >= len(live) || live[i].seq != seq {
		return
	}
	if i == 0 {
		l.head++
	} else {
		copy(live[i:], live[i+1:])
		l.entries = l.entries[:len(l.entries)-1]
	}
	l.compact()
}

func (l *outstandingList) compact() {
	if l.head == len(l.entries) {
		l.entries, l.head = l.entries[:0], 0
		return
	}
	if l.head > 64 && l.head > len(l.entries)/2 {
		n := copy(l.entries, l.entries[l.head:])
		l.entries, l.head = l.entries[:n], 0
	}
}
