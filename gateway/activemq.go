package gateway

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/broker"
	"github.com/stompgate/stompgate/gateway/codec"
	"github.com/stompgate/stompgate/gateway/config"
	"github.com/stompgate/stompgate/mapping"
	"github.com/stompgate/stompgate/mapping/selector"
)

// This file is the session side of ActiveMQ's STOMP dialect (issue 14, the
// README's "Coming from ActiveMQ"). The pure parts are in mapping
// (activemq.go) and mapping/selector.
//
// What is on without stomp.dialect, because RabbitMQ's plugin gives the
// header no meaning at all (it ignores it on SUBSCRIBE and UNSUBSCRIBE, and
// CONNECT's client-id): selector, activemq.prefetchSize,
// activemq.exclusive, client-id + activemq.subscriptionName,
// max-redeliveries and stomp.max_redeliveries. What needs stomp.dialect:
// activemq, because the plugin passes the header on as an ordinary message
// header or reads the destination differently: SEND's expires,
// AMQ_SCHEDULED_DELAY and AMQ_SCHEDULED_TIME, the wildcard ">" in
// /topic names, and the MESSAGE headers ActiveMQ clients read (expires,
// timestamp in ms, priority, persistent, redelivered only when true).

// hdrMaxRedeliveries is the SUBSCRIBE header that overrides
// stomp.max_redeliveries for one subscription (ActiveMQ sets the limit
// per connection factory; STOMP has no header for it).
const hdrMaxRedeliveries = "max-redeliveries"

// Headers a redelivery republish carries in the AMQP headers table so that
// the next delivery shows the original destination; never shown to
// clients.
const (
	hdrOrigExchange   = "x-stompgate-exchange"
	hdrOrigRoutingKey = "x-stompgate-routing-key"
)

// hdrOriginalDestination is what ActiveMQ's dead-lettered MESSAGE names
// its queue of origin with.
const hdrOriginalDestination = "original-destination"

// confirmWait bounds the wait for the broker's confirm of a redelivery
// republish or a dead-letter publish.
const confirmWait = 30 * time.Second

// amqSession is a session's ActiveMQ-dialect state.
type amqSession struct {
	// clientID is CONNECT's client-id (set in the CONNECT phase).
	clientID string
	// ready holds the delay and dead-letter queues declared and bound in
	// this session (by name).
	ready map[string]struct{}
	// ch is a confirm-mode channel for redelivery republishes and
	// dead-letter publishes, opened on first use; confirms is its
	// NotifyPublish channel. Only used from the session loop, which waits
	// for each confirm before it acks the original.
	ch       broker.Channel
	confirms chan amqp.Confirmation
}

// subAMQ is a subscription's ActiveMQ-dialect state.
type subAMQ struct {
	sel *selector.Selector
	// selHdrs is the selector's view of the MESSAGE headers, kept in the
	// subscription so that matching allocates nothing.
	selHdrs mapping.SelectorHeaders
	// maxRedeliveries is the redelivery limit; 0 means none.
	maxRedeliveries int
	// held keeps the unsettled deliveries (by message number) while a
	// limit is set, for the republish on NACK.
	held map[uint64]amqp.Delivery
	// dlx: the SUBSCRIBE declared the queue with a dead-letter exchange,
	// so a message past the limit is simply rejected to it.
	dlx bool
	// durableName is activemq.subscriptionName of a client-id durable
	// subscription.
	durableName string
}

// activeMQ reports whether stomp.dialect is activemq.
func (s *session) activeMQ() bool { return s.cfg.STOMP.Dialect == config.DialectActiveMQ }

// planActiveMQSubscription applies the ActiveMQ headers of a SUBSCRIBE to
// plan, before anything is declared. Only called from the session loop.
func (s *session) planActiveMQSubscription(dest mapping.Destination, h codec.Headers, plan *mapping.SubscriptionPlan) (subAMQ, error) {
	var a subAMQ
	sel, err := mapping.SubscriptionSelector(dest, h)
	if err != nil {
		return a, err
	}
	a.sel = sel
	// prefetch-count wins over ActiveMQ's name for it.
	if _, ok := h.Get("prefetch-count"); !ok {
		if v, ok := h.Get(mapping.HdrActiveMQPrefetchSize); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 {
				return a, protocolError("Invalid header", fmt.Sprintf("Invalid value '%s' for header '%s': expected a non-negative integer\n", v, mapping.HdrActiveMQPrefetchSize))
			}
			if limit := s.cfg.Flow.MaxPrefetch; limit > 0 && (n == 0 || n > limit) {
				n = limit
			}
			plan.Prefetch = n
		}
	}
	if s.activeMQ() && dest.Kind == mapping.DestTopic && plan.Bind != nil {
		key, err := mapping.ActiveMQTopicPattern(plan.Bind.RoutingKey)
		if err != nil {
			return a, protocolError("Invalid destination", fmt.Sprintf("'%s': '>' may only be the last word and '#' is not a wildcard in ActiveMQ topic names\n", dest.Raw))
		}
		plan.Bind.RoutingKey = key
	}
	if name, ok := h.Get(mapping.HdrActiveMQSubscriptionName); ok && name != "" && plan.Bind != nil {
		if s.amq.clientID == "" {
			return a, protocolError("Missing Header", "A durable subscription (activemq.subscriptionName) needs a client-id header on CONNECT\n")
		}
		q := mapping.ActiveMQDurableQueueName(s.amq.clientID, name)
		var args amqp.Table
		if plan.Declare != nil {
			args = plan.Declare.Args
		}
		plan.Queue = q
		plan.Declare = &mapping.QueueDeclare{Name: q, Durable: true, Args: args}
		plan.Durable = true
		a.durableName = name
	}
	if v, _ := mapping.ParseBoolHeader(h.Value(mapping.HdrActiveMQExclusive)); v && plan.Declare != nil {
		args := maps.Clone(plan.Declare.Args)
		if args == nil {
			args = amqp.Table{}
		}
		args["x-single-active-consumer"] = true
		plan.Declare.Args = args
	}
	a.maxRedeliveries = s.cfg.STOMP.MaxRedeliveries
	if v, ok := h.Get(hdrMaxRedeliveries); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return a, protocolError("Invalid header", fmt.Sprintf("Invalid value '%s' for header '%s': expected a non-negative integer (0: no limit)\n", v, hdrMaxRedeliveries))
		}
		a.maxRedeliveries = n
	}
	if plan.Declare != nil {
		_, a.dlx = plan.Declare.Args["x-dead-letter-exchange"]
	}
	return a, nil
}

// carryActiveMQ gives sub, which replaces old on a new AMQP connection
// (resume.go resubscribe), old's selector, redelivery limit and durable
// name; its unsettled deliveries went with the old connection. The
// session's redelivery channel and declared-queue cache belonged to the
// old connection too. Only called from the session loop.
func (s *session) carryActiveMQ(old, sub *subscription) {
	sub.amq = old.amq
	sub.amq.held = nil
	if s.amq.ch != nil {
		_ = s.amq.ch.Close()
		s.amq.ch, s.amq.confirms = nil, nil
	}
	s.amq.ready = nil
}

// restoreRedelivery undoes what a redelivery republish changed in d: the
// exchange and routing key it was first published with, and redelivered.
// Only called from the session loop.
func restoreRedelivery(d *amqp.Delivery) {
	if d.Headers == nil {
		return
	}
	ex, ok := d.Headers[hdrOrigExchange].(string)
	if !ok {
		return
	}
	d.Exchange = ex
	d.RoutingKey, _ = d.Headers[hdrOrigRoutingKey].(string)
	delete(d.Headers, hdrOrigExchange)
	delete(d.Headers, hdrOrigRoutingKey)
	d.Redelivered = true
}

// deliveryCount is how often d has been delivered, this time included:
// the count a redelivery republish wrote, else 1.
func deliveryCount(d *amqp.Delivery) int64 {
	switch v := d.Headers[mapping.HdrDeliveryCount].(type) {
	case int64:
		return v
	case int32:
		return int64(v)
	case int:
		return int64(v)
	}
	return 1
}

// matches reports whether the MESSAGE headers h pass sub's selector. It
// allocates nothing.
func (a *subAMQ) matches(h codec.Headers) bool {
	a.selHdrs.H = h
	ok := a.sel.Match(&a.selHdrs)
	a.selHdrs.H = nil
	return ok
}

// skipDelivery acknowledges a delivery that sub's selector refused: it is
// never sent and never enters the outstanding list, so a later cumulative
// ACK or NACK of the client's does not cover it twice (a multiple ack
// settles only deliveries still unacked). Only called from the session loop.
func (s *session) skipDelivery(sub *subscription, tag uint64) {
	if err := sub.ch.Ack(tag, false); err != nil {
		s.log.WithError(err).WithField("subscription", sub.id).Warn("ack of a delivery the selector skipped failed")
	}
}

// hold keeps d for a redelivery republish while sub has a limit.
func (a *subAMQ) hold(seq uint64, d *amqp.Delivery) {
	if a.maxRedeliveries == 0 {
		return
	}
	if a.held == nil {
		a.held = make(map[uint64]amqp.Delivery)
	}
	a.held[seq] = *d
}

// release forgets held deliveries settled by an ACK or NACK of seq (all up
// to seq when multiple).
func (a *subAMQ) release(seq uint64, multiple bool) {
	if len(a.held) == 0 {
		return
	}
	if !multiple {
		delete(a.held, seq)
		return
	}
	for k := range a.held {
		if k <= seq {
			delete(a.held, k)
		}
	}
}

// activeMQMessageHeaders rewrites the MESSAGE headers h of delivery d as
// ActiveMQ 5.17 sends them (e2e/testdata/activemq/README.md): expires
// always (0 when none), priority always (4 by default), timestamp in epoch
// ms, persistent and redelivered only when true, no AMQP expiration.
// Only with stomp.dialect: activemq.
func activeMQMessageHeaders(h codec.Headers, d *amqp.Delivery) codec.Headers {
	out := h[:0]
	hasExpires := false
	for _, hd := range h {
		switch hd.Name {
		case "redelivered", "persistent":
			if hd.Value != "true" {
				continue
			}
		case "expiration", "timestamp", "priority":
			continue
		case mapping.HdrExpires:
			hasExpires = true
		default:
			// RabbitMQ's dead-lettering marks (a delay queue's, here).
			if strings.HasPrefix(hd.Name, "x-first-death-") || strings.HasPrefix(hd.Name, "x-last-death-") {
				continue
			}
		}
		out = append(out, hd)
	}
	if !hasExpires {
		out = append(out, codec.Header{Name: mapping.HdrExpires, Value: "0"})
	}
	prio := "4"
	if d.Priority > 0 {
		prio = strconv.FormatUint(uint64(d.Priority), 10)
	}
	out = append(out, codec.Header{Name: "priority", Value: prio})
	if !d.Timestamp.IsZero() {
		out = append(out, codec.Header{Name: "timestamp", Value: strconv.FormatInt(d.Timestamp.UnixMilli(), 10)})
	}
	return out
}

// activeMQSend applies SEND's ActiveMQ headers to msg, published to
// exchange: expires becomes a per-message TTL, AMQ_SCHEDULED_DELAY or
// AMQ_SCHEDULED_TIME a delay queue. It returns the exchange to publish to
// (the delay exchange when held back), and drop when the message has
// expired (before its delivery time): it is not published, but its SEND is
// answered as usual. Only called from the session loop.
func (s *session) activeMQSend(h codec.Headers, msg *amqp.Publishing, exchange string) (target string, drop bool, err error) {
	now := time.Now()
	exp, drop, err := mapping.ExpiresTTL(h, now)
	if err != nil || drop {
		return "", drop, err
	}
	delay, err := mapping.ScheduledDelay(h, now)
	if err != nil {
		return "", false, err
	}
	delete(msg.Headers, mapping.HdrScheduledDelay)
	delete(msg.Headers, mapping.HdrScheduledTime)
	if msg.Timestamp.IsZero() {
		msg.Timestamp = now
	}
	if exp != "" {
		msg.Expiration = exp
	}
	if delay <= 0 {
		return exchange, false, nil
	}
	bucket, err := mapping.DelayBucket(delay, s.cfg.STOMP.MaxScheduledDelay)
	if err != nil {
		return "", false, protocolError("Invalid header", fmt.Sprintf("A scheduled delay of %v is above stomp.max_scheduled_delay (%v)\n", delay, s.cfg.STOMP.MaxScheduledDelay))
	}
	if msg.Expiration != "" {
		// Dead-lettering drops a message's expiration; one that expires
		// before its delivery time is never delivered.
		if ttl, _ := strconv.ParseInt(msg.Expiration, 10, 64); ttl <= bucket.Milliseconds() {
			return "", true, nil
		}
		msg.Expiration = ""
	}
	plan := mapping.PlanDelay(exchange, bucket)
	if err := s.declareDelay(plan); err != nil {
		return "", false, err
	}
	return plan.Exchange, false, nil
}

// passiveDeclarer is the part of *amqp.Channel that checks that a queue
// exists.
type passiveDeclarer interface {
	QueueDeclarePassive(name string, durable, autoDelete, exclusive, noWait bool, args amqp.Table) (amqp.Queue, error)
}

// activeMQQueueExists reports, with stomp.dialect: activemq, whether the
// /queue queue decl already exists, checked with a passive declare on a
// scratch channel (a refused one closes only that channel). The gateway
// then uses it as it is, as ActiveMQ does: its queues are just names, and
// its activemq.exclusive is a consumer's property, so a SEND or a plain
// SUBSCRIBE must not fail on a queue declared with
// x-single-active-consumer (inequivalent arguments). Only called from the
// session loop.
func (s *session) activeMQQueueExists(decl *mapping.QueueDeclare) bool {
	if !s.activeMQ() || decl == nil {
		return false
	}
	if _, done := s.declared[decl.Name]; done {
		return true
	}
	ch, err := s.broker.Channel()
	if err != nil {
		return false
	}
	defer func() { _ = ch.Close() }()
	pd, ok := ch.(passiveDeclarer)
	if !ok {
		return false
	}
	if _, err := pd.QueueDeclarePassive(decl.Name, decl.Durable, decl.AutoDelete, false, false, nil); err != nil {
		return false
	}
	if len(s.declared) >= maxDeclaredCache {
		clear(s.declared)
	}
	s.declared = lazyMap(s.declared)
	s.declared[decl.Name] = struct{}{}
	return true
}

// exchangeDeclarer is the part of *amqp.Channel the delay queues need
// beyond broker.Channel.
type exchangeDeclarer interface {
	ExchangeDeclare(name, kind string, durable, autoDelete, internal, noWait bool, args amqp.Table) error
}

// declareDelay declares plan's fanout exchange and delay queue and binds
// them, once per session. Only called from the session loop.
func (s *session) declareDelay(plan mapping.DelayPlan) error {
	if _, ok := s.amq.ready[plan.Exchange]; ok {
		return nil
	}
	pub, err := s.publisher()
	if err != nil {
		return err
	}
	ed, ok := pub.(exchangeDeclarer)
	if !ok {
		return protocolError("Invalid header", "Scheduled delivery needs exchange declarations, which this broker connection does not offer\n")
	}
	if err := ed.ExchangeDeclare(plan.Exchange, "fanout", true, false, false, false, nil); err != nil {
		return s.channelError(err)
	}
	if err := s.declareQueue(pub, &plan.Queue); err != nil {
		return err
	}
	if err := pub.QueueBind(plan.Queue.Name, plan.Binding.RoutingKey, plan.Binding.Exchange, false, nil); err != nil {
		return s.channelError(err)
	}
	s.amq.ready = lazyMap(s.amq.ready)
	s.amq.ready[plan.Exchange] = struct{}{}
	return nil
}

// activeMQUnsubscribe handles an UNSUBSCRIBE carrying
// activemq.subscriptionName: it ends the session's subscription with that
// id if there is one and deletes the client-id durable subscription's
// queue. handled is false for an UNSUBSCRIBE without the header. Only
// called from the session loop.
func (s *session) activeMQUnsubscribe(f *codec.Frame) (handled bool, err error) {
	name, ok := f.Headers.Get(mapping.HdrActiveMQSubscriptionName)
	if !ok || name == "" {
		return false, nil
	}
	if s.amq.clientID == "" {
		return true, protocolError("Missing Header", "Removing a durable subscription (activemq.subscriptionName) needs a client-id header on CONNECT\n")
	}
	target, err := mapping.PlanUnsubscribe(f.Headers)
	if err != nil {
		return true, err
	}
	if sub, ok := s.subs[target.ConsumerTag]; ok && !sub.temp {
		if err := sub.ch.Cancel(sub.tag, false); err != nil {
			return true, err
		}
		s.retire(sub)
	}
	ch, err := s.broker.Channel()
	if err != nil {
		return true, s.channelError(err)
	}
	defer func() { _ = ch.Close() }()
	if _, err := ch.QueueDelete(mapping.ActiveMQDurableQueueName(s.amq.clientID, name), false, false, false); err != nil {
		return true, err
	}
	s.sendReceipt(f)
	return true, nil
}

// nackCounted is a NACK with requeue on a subscription with a redelivery
// limit (all deliveries up to seq when multiple). RabbitMQ's classic
// queues count no redeliveries, so the gateway does: each message is
// published again to the end of the subscription's queue (through the
// default exchange) with JMSXDeliveryCount one higher and its original
// exchange and routing key, and, once the broker has confirmed that, the
// original is acked. A message delivered more than 1 + limit times goes to
// its queue's dead-letter exchange (if this SUBSCRIBE declared one), else
// to DLQ.<queue>. Only called from the session loop.
func (s *session) nackCounted(sub *subscription, seq uint64, multiple bool) error {
	var seqs []uint64
	if multiple {
		for _, o := range sub.outstanding.live() {
			if o.seq <= seq {
				seqs = append(seqs, o.seq)
			}
		}
	} else {
		seqs = []uint64{seq}
	}
	for _, n := range seqs {
		tag, ok := sub.outstanding.find(n)
		if !ok {
			continue
		}
		d, held := sub.amq.held[n]
		var err error
		switch {
		case !held:
			err = sub.ch.Nack(tag, false, true)
		case deliveryCount(&d) > int64(sub.amq.maxRedeliveries):
			err = s.deadLetter(sub, tag, &d)
		default:
			err = s.redeliverCounted(sub, tag, &d)
		}
		if err != nil {
			return err
		}
		sub.outstanding.remove(n)
		delete(sub.amq.held, n)
	}
	return nil
}

// redeliverCounted puts d back on sub's queue with its delivery count raised,
// then acks the original.
func (s *session) redeliverCounted(sub *subscription, tag uint64, d *amqp.Delivery) error {
	msg := publishingOf(d)
	msg.Headers[mapping.HdrDeliveryCount] = deliveryCount(d) + 1
	msg.Headers[hdrOrigExchange] = d.Exchange
	msg.Headers[hdrOrigRoutingKey] = d.RoutingKey
	if err := s.publishConfirmed("", sub.queue, msg); err != nil {
		return err
	}
	if err := sub.ch.Ack(tag, false); err != nil {
		return s.channelError(err)
	}
	return nil
}

// deadLetter moves d, past its redelivery limit, to the queue's
// dead-letter exchange or to DLQ.<queue>.
func (s *session) deadLetter(sub *subscription, tag uint64, d *amqp.Delivery) error {
	s.log.WithFields(map[string]any{"subscription": sub.id, "queue": sub.queue, "deliveries": deliveryCount(d)}).Info("message past its redelivery limit dead-lettered")
	if sub.amq.dlx {
		if err := sub.ch.Nack(tag, false, false); err != nil {
			return s.channelError(err)
		}
		return nil
	}
	dlq := mapping.ActiveMQDeadLetterQueue(sub.queue)
	if _, ok := s.amq.ready[dlq]; !ok {
		pub, err := s.publisher()
		if err != nil {
			return err
		}
		if _, err := pub.QueueDeclare(dlq, true, false, false, false, nil); err != nil {
			return s.channelError(err)
		}
		s.amq.ready = lazyMap(s.amq.ready)
		s.amq.ready[dlq] = struct{}{}
	}
	msg := publishingOf(d)
	msg.Headers[hdrOriginalDestination] = mapping.FormatDestination(d.Exchange, d.RoutingKey)
	if err := s.publishConfirmed("", dlq, msg); err != nil {
		return err
	}
	if err := sub.ch.Ack(tag, false); err != nil {
		return s.channelError(err)
	}
	return nil
}

// publishingOf is d as a publishing, with a headers table of its own.
func publishingOf(d *amqp.Delivery) amqp.Publishing {
	h := maps.Clone(d.Headers)
	if h == nil {
		h = amqp.Table{}
	}
	return amqp.Publishing{
		Headers:         h,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    d.DeliveryMode,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		ReplyTo:         d.ReplyTo,
		Expiration:      d.Expiration,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		UserId:          d.UserId,
		AppId:           d.AppId,
		Body:            d.Body,
	}
}

// errRedeliveryNotConfirmed: the broker did not confirm a republish.
var errRedeliveryNotConfirmed = errors.New("redelivery republish not confirmed by the broker")

// publishConfirmed publishes msg on the session's redelivery channel and
// waits for the broker's confirm (at most confirmWait). A failed channel is
// dropped, so the next call opens a new one. Only called from the session
// loop.
func (s *session) publishConfirmed(exchange, key string, msg amqp.Publishing) error {
	if s.amq.ch == nil {
		ch, err := s.broker.Channel()
		if err != nil {
			return s.channelError(err)
		}
		confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 4))
		if err := ch.Confirm(false); err != nil {
			_ = ch.Close()
			return s.channelError(err)
		}
		s.amq.ch, s.amq.confirms = ch, confirms
	}
	fail := func(err error) error {
		_ = s.amq.ch.Close()
		s.amq.ch, s.amq.confirms = nil, nil
		return err
	}
	if err := s.amq.ch.PublishWithContext(context.Background(), exchange, key, false, false, msg); err != nil {
		return fail(s.channelError(err))
	}
	t := time.NewTimer(confirmWait)
	defer t.Stop()
	select {
	case c, ok := <-s.amq.confirms:
		if !ok || !c.Ack {
			return fail(errRedeliveryNotConfirmed)
		}
		return nil
	case e, ok := <-s.connClose:
		return fail(brokerCloseError(e, ok))
	case <-t.C:
		return fail(errRedeliveryNotConfirmed)
	case <-s.killCh:
		return fail(errKilled)
	}
}
