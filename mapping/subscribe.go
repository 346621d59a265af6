package mapping

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/codec"
)

// AckMode is a subscription's `ack` header (semantics 6.1).
type AckMode int

// The ack modes. The zero value is the default, auto.
const (
	AckAuto             AckMode = iota // stompgate acks once the MESSAGE is written (10.3)
	AckClient                          // cumulative within the subscription
	AckClientIndividual                // one delivery per ACK
)

// String returns the header value.
func (m AckMode) String() string {
	switch m {
	case AckClient:
		return "client"
	case AckClientIndividual:
		return "client-individual"
	}
	return "auto"
}

// SUBSCRIBE and UNSUBSCRIBE headers (semantics 6.1, 6.3).
const (
	hdrID            = "id"
	hdrDestination   = "destination"
	hdrAck           = "ack"
	hdrPrefetchCount = "prefetch-count"
	hdrStreamOffset  = "x-stream-offset"
)

// Consumer tag prefixes (util internal_tag/1, queue_tag/1).
const (
	tagByID          = "T_"
	tagByDestination = "Q_"
)

// subscriptionQueuePrefix starts every gateway-named subscription queue
// (semantics 5.4, rabbit_guid string/2).
const subscriptionQueuePrefix = "stomp-subscription-"

// SubscribeOptions carries the configuration PlanSubscription needs.
type SubscribeOptions struct {
	TopicExchange   string // stomp.default_topic_exchange
	DefaultPrefetch int    // flow.default_prefetch
	MaxPrefetch     int    // flow.max_prefetch; 0 = no cap
	// RandomName returns the 22-character unpadded base64url of 16 random
	// bytes that names a transient subscription queue. nil uses crypto/rand.
	RandomName func() string
}

// Binding is one queue.bind of a subscription queue (semantics 5.2).
type Binding struct {
	Exchange   string
	RoutingKey string
}

// SubscriptionPlan is everything the gateway does for one SUBSCRIBE, in the
// order of semantics 6.2 step 2: declare, bind, qos, consume.
type SubscriptionPlan struct {
	Destination Destination
	ID          string // the `id` header, if HasID
	HasID       bool
	ConsumerTag string // "T_<id>", or "Q_<destination as sent>" without id
	Ack         AckMode
	Prefetch    int           // basic.qos prefetch-count, global=false
	Queue       string        // queue to consume from
	Declare     *QueueDeclare // nil for /amq/queue and /reply-queue
	Bind        *Binding      // set for /topic and /exchange
	// Durable marks a durable /topic or /exchange subscription, whose queue
	// outlives the session (semantics 5.3, 5.4).
	Durable     bool
	ConsumeArgs amqp.Table // x-stream-offset, or nil
}

// Description is the plugin's name for the subscription in ERROR bodies:
// "id='<id>'" or "destination='<d>'" (util consumer_tag/1).
func (p SubscriptionPlan) Description() string {
	if p.HasID {
		return "id='" + p.ID + "'"
	}
	return "destination='" + p.Destination.Raw + "'"
}

// durableHeader merges `durable` and its alias `persistent` (semantics 5.3):
// durable if either says true, not durable if either says false and none
// true, otherwise absent (util has_durable_header/1).
func durableHeader(h codec.Headers) (durable, ok bool) {
	d, dok := boolHeader(h, hdrDurable)
	p, pok := boolHeader(h, hdrPersistent)
	switch {
	case (dok && d) || (pok && p):
		return true, true
	case dok || pok:
		return false, true
	}
	return false, false
}

// PlanSubscription validates a SUBSCRIBE to d (already parsed with
// ParseDestination(dest, codec.CmdSubscribe)) and plans it (semantics 5.2–5.4,
// 6.1). It checks, in this order: a durable subscription has an `id`
// (ERROR `Missing Header`), the id does not start with /temp-queue/ (ERROR
// `Invalid id`), the consumer tag fits 255 bytes, then `ack`,
// `prefetch-count`, `x-stream-offset`, `x-queue-name` and the queue
// arguments (ERROR `Invalid header`). Duplicate tags and the subscription
// limit are the gateway's checks (6.2 step 1).
func PlanSubscription(d Destination, h codec.Headers, opt SubscribeOptions) (SubscriptionPlan, error) {
	p := SubscriptionPlan{Destination: d}
	durable, durableSet := durableHeader(h)
	p.ID, p.HasID = h.Get(hdrID)
	if durable && !p.HasID {
		// processor validate_frame/3; body without LF, as the plugin's.
		return SubscriptionPlan{}, protocolError(msgMissingHeaderDurable, bodyMissingIDForDurableSub)
	}
	if p.HasID {
		if strings.HasPrefix(p.ID, tempQueuePrefix) {
			// The plugin crashes here; its UNSUBSCRIBE text, adapted.
			return SubscriptionPlan{}, protocolError(msgInvalidID, "SUBSCRIBE 'id' may not start with "+tempQueuePrefix+"\n")
		}
		p.ConsumerTag = tagByID + p.ID
	} else {
		p.ConsumerTag = tagByDestination + d.Raw
	}
	if len(p.ConsumerTag) > maxShortstr {
		return SubscriptionPlan{}, protocolError(msgInvalidHeader,
			"consumer tag '"+truncate(p.ConsumerTag)+"' is longer than 255 bytes: shorten the 'id' (or 'destination') header\n")
	}

	var err error
	if p.Ack, err = ackMode(h); err != nil {
		return SubscriptionPlan{}, err
	}
	if p.Prefetch, err = prefetch(h, opt); err != nil {
		return SubscriptionPlan{}, err
	}
	if p.ConsumeArgs, err = streamOffset(h); err != nil {
		return SubscriptionPlan{}, err
	}

	switch d.Kind {
	case DestQueue:
		queueDurable := true
		if durableSet {
			queueDurable = durable
		}
		p.Queue = d.Queue
		p.Declare, err = queueDeclare(d.Queue, queueDurable, false, h)
	case DestAmqQueue, DestReplyQueue:
		p.Queue = d.Queue
	case DestTopic, DestExchange:
		exchange, key := d.PublishTarget(opt.TopicExchange)
		p.Bind = &Binding{Exchange: exchange, RoutingKey: key}
		p.Durable = durable
		if p.Queue, err = subscriptionQueueName(key, p.ID, durable, h, opt); err != nil {
			return SubscriptionPlan{}, err
		}
		p.Declare, err = queueDeclare(p.Queue, durable, true, h)
	default:
		// ParseDestination refuses every other kind for SUBSCRIBE.
		return SubscriptionPlan{}, protocolError(msgInvalidDestination,
			"'"+d.Raw+"' is not a valid destination for '"+codec.CmdSubscribe+"'\n")
	}
	if err != nil {
		return SubscriptionPlan{}, err
	}
	return p, nil
}

func ackMode(h codec.Headers) (AckMode, error) {
	v, ok := h.Get(hdrAck)
	if !ok {
		return AckAuto, nil
	}
	switch v {
	case "auto":
		return AckAuto, nil
	case "client":
		return AckClient, nil
	case "client-individual":
		return AckClientIndividual, nil
	}
	return AckAuto, invalidHeader(hdrAck, v, "auto, client or client-individual")
}

// prefetch reads `prefetch-count` (semantics 6.1): an integer ≥ 0; 0
// (unlimited) and values above the cap become the cap.
func prefetch(h codec.Headers, opt SubscribeOptions) (int, error) {
	n := opt.DefaultPrefetch
	if v, ok := h.Get(hdrPrefetchCount); ok {
		parsed, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || parsed < 0 {
			return 0, invalidHeader(hdrPrefetchCount, v, "a non-negative integer")
		}
		if parsed > int64(maxInt) {
			parsed = int64(maxInt)
		}
		n = int(parsed)
	}
	if opt.MaxPrefetch > 0 && (n == 0 || n > opt.MaxPrefetch) {
		n = opt.MaxPrefetch
	}
	return n, nil
}

const maxInt = int(^uint(0) >> 1)

// streamOffset maps `x-stream-offset` to the consume argument of semantics
// 6.1 (frame stream_offset_header/2): first/last/next as longstr,
// offset=<int> as long, timestamp=<int> as timestamp.
func streamOffset(h codec.Headers) (amqp.Table, error) {
	v, ok := h.Get(hdrStreamOffset)
	if !ok {
		return nil, nil
	}
	const want = "first, last, next, offset=<integer> or timestamp=<integer>"
	switch v {
	case "first", "last", "next":
		return amqp.Table{hdrStreamOffset: v}, nil
	}
	if n, found := strings.CutPrefix(v, "offset="); found {
		offset, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			return nil, invalidHeader(hdrStreamOffset, v, want)
		}
		return amqp.Table{hdrStreamOffset: offset}, nil
	}
	if n, found := strings.CutPrefix(v, "timestamp="); found {
		// An AMQP timestamp is unsigned seconds.
		secs, err := strconv.ParseInt(n, 10, 64)
		if err != nil || secs < 0 {
			return nil, invalidHeader(hdrStreamOffset, v, want)
		}
		return amqp.Table{hdrStreamOffset: time.Unix(secs, 0)}, nil
	}
	return nil, invalidHeader(hdrStreamOffset, v, want)
}

// subscriptionQueueName names the queue of a /topic or /exchange
// subscription (semantics 5.4): x-queue-name verbatim, else the durable
// recipe, else a random name.
func subscriptionQueueName(routingKey, id string, durable bool, h codec.Headers, opt SubscribeOptions) (string, error) {
	if name, ok := h.Get(hdrQueueName); ok && name != "" {
		if len(name) > maxShortstr {
			return "", invalidHeader(hdrQueueName, name, "a queue name of at most 255 bytes")
		}
		return name, nil
	}
	if durable {
		return DurableSubscriptionName(routingKey, id), nil
	}
	if opt.RandomName != nil {
		return subscriptionQueuePrefix + opt.RandomName(), nil
	}
	return subscriptionQueuePrefix + randomName(), nil
}

// randomName is the unpadded base64url of 16 bytes from crypto/rand.
func randomName() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand docs)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// DurableSubscriptionName is the queue name of a durable subscription with
// routing key routingKey and subscription id id, computed exactly as
// rabbitmq_stomp does so that queues it created are found again (semantics
// 5.4): "stomp-subscription-" + base64url_nopad(md5(term_to_binary({rk, id},
// [{minor_version,1}]))). The exchange is not part of the name.
func DurableSubscriptionName(routingKey, id string) string {
	var buf [128]byte
	t := append(buf[:0], 0x83, 0x68, 0x02) // VERSION_MAGIC, SMALL_TUPLE_EXT, arity 2
	t = appendErlangString(t, routingKey)
	t = appendErlangString(t, id)
	sum := md5.Sum(t)
	return subscriptionQueuePrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

// appendErlangString appends the external term format of an Erlang string
// (a list of bytes): NIL_EXT, STRING_EXT, or for more than 65535 bytes a
// LIST_EXT of SMALL_INTEGER_EXT.
func appendErlangString(dst []byte, s string) []byte {
	switch {
	case len(s) == 0:
		return append(dst, 0x6A)
	case len(s) <= 0xFFFF:
		dst = append(dst, 0x6B)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
		return append(dst, s...)
	}
	dst = append(dst, 0x6C)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	for i := 0; i < len(s); i++ {
		dst = append(dst, 0x61, s[i])
	}
	return append(dst, 0x6A)
}

// UnsubscribeTarget is the subscription an UNSUBSCRIBE names (semantics 6.3).
type UnsubscribeTarget struct {
	ConsumerTag string
	ID          string // the `id` header, if HasID
	HasID       bool
	Destination string // the `destination` header, used when there is no id
	// DeleteDurable is set by `durable:true`/`persistent:true` (with an id):
	// if the subscription is a /topic one, its queue is deleted after the
	// cancel. Durable /exchange subscriptions are never deleted.
	DeleteDurable bool
}

// Description is "id='<id>'" or "destination='<d>'", as in the plugin's
// ERROR bodies.
func (t UnsubscribeTarget) Description() string {
	if t.HasID {
		return "id='" + t.ID + "'"
	}
	return "destination='" + t.Destination + "'"
}

// PlanUnsubscribe finds the consumer tag an UNSUBSCRIBE refers to: "T_<id>"
// by `id`, else "Q_<destination>" (semantics 6.3). Errors, in the plugin's
// order: `durable`/`persistent:true` without id (`Missing Header`, processor
// validate_frame/3), an id starting with /temp-queue/ (`Invalid id`),
// neither header (`Missing destination or id`). An unknown tag is the
// gateway's to report with NoSubscriptionFound.
func PlanUnsubscribe(h codec.Headers) (UnsubscribeTarget, error) {
	var t UnsubscribeTarget
	durable, _ := durableHeader(h)
	t.ID, t.HasID = h.Get(hdrID)
	if durable && !t.HasID {
		return UnsubscribeTarget{}, protocolError(msgMissingHeaderDurable, bodyMissingIDForDurableSub)
	}
	if t.HasID {
		if strings.HasPrefix(t.ID, tempQueuePrefix) {
			return UnsubscribeTarget{}, protocolError(msgInvalidID, "UNSUBSCRIBE 'id' may not start with "+tempQueuePrefix+"\n")
		}
		t.ConsumerTag = tagByID + t.ID
		t.DeleteDurable = durable
		return t, nil
	}
	dest, ok := h.Get(hdrDestination)
	if !ok {
		// processor cancel_subscription/3: a literal body without LF.
		return UnsubscribeTarget{}, protocolError(msgMissingDestinationOrID, "UNSUBSCRIBE must include a 'destination' or 'id' header")
	}
	t.Destination = dest
	t.ConsumerTag = tagByDestination + dest
	return t, nil
}
