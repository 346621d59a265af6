package mapping

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/codec"
	"github.com/stompgate/stompgate/mapping/selector"
)

// This file holds the pure parts of ActiveMQ's STOMP dialect (issue 14):
// topic wildcards, durable subscription and dead-letter queue names,
// `expires`, scheduled delivery through delay queues, and the names ActiveMQ
// gives JMS header fields in selectors. The gateway decides when the
// dialect is on.

// ActiveMQ headers.
const (
	HdrActiveMQSubscriptionName = "activemq.subscriptionName" // SUBSCRIBE, UNSUBSCRIBE
	HdrActiveMQPrefetchSize     = "activemq.prefetchSize"     // SUBSCRIBE
	HdrActiveMQExclusive        = "activemq.exclusive"        // SUBSCRIBE
	HdrClientID                 = "client-id"                 // CONNECT
	HdrSelector                 = "selector"                  // SUBSCRIBE
	HdrExpires                  = "expires"                   // SEND and MESSAGE: absolute epoch ms, 0 = never
	HdrScheduledDelay           = "AMQ_SCHEDULED_DELAY"       // SEND: ms from now
	// HdrScheduledTime is an absolute epoch-ms delivery time. ActiveMQ 5.17
	// has no such header (its scheduler reads AMQ_SCHEDULED_DELAY, _PERIOD,
	// _REPEAT and _CRON); stompgate accepts it as issue 14 asks.
	HdrScheduledTime = "AMQ_SCHEDULED_TIME"
	// HdrDeliveryCount carries the delivery count on a MESSAGE: 1 on first
	// delivery, 1 + redeliveries after. ActiveMQ 5.17's STOMP MESSAGE frames
	// carry only `redelivered:true` (FrameTranslator
	// copyStandardHeadersFromMessageToFrame), no count; JMSXDeliveryCount is
	// the JMS name of the count and what an ActiveMQ selector calls it.
	HdrDeliveryCount = "JMSXDeliveryCount"
)

// ErrTopicWildcard is returned by ActiveMQTopicPattern for a pattern that
// has no AMQP equivalent.
var ErrTopicWildcard = errors.New("topic pattern has no AMQP equivalent")

// ActiveMQTopicPattern turns an ActiveMQ topic name, the part after
// /topic/, into an AMQP topic-exchange binding key. Both use `.` between
// words. ActiveMQ's `*` (one word) is AMQP's `*`; ActiveMQ's `>` (any
// number of trailing words, zero included: `a.>` matches `a`, see
// PrefixDestinationFilter) is AMQP's `#`. Only a whole word is a wildcard
// in either, so `a*b` stays literal. Errors: `>` anywhere but the last word
// (ActiveMQ never matches it there), and a word `#`, which is literal in
// ActiveMQ but a wildcard in AMQP.
func ActiveMQTopicPattern(name string) (string, error) {
	words := strings.Split(name, ".")
	for i, w := range words {
		switch w {
		case ">":
			if i != len(words)-1 {
				return "", ErrTopicWildcard
			}
			words[i] = "#"
		case "#":
			return "", ErrTopicWildcard
		}
	}
	return strings.Join(words, "."), nil
}

// durableQueuePrefix starts the queue of a durable subscription made with
// CONNECT client-id and SUBSCRIBE activemq.subscriptionName. It differs from
// the plugin-style "stomp-subscription-" (DurableSubscriptionName), so the
// two kinds never share a queue.
const durableQueuePrefix = "stomp-durable."

// ActiveMQDurableQueueName names the queue of the durable subscription that
// ActiveMQ keys as clientID:subscriptionName:
// "stomp-durable.<client-id>.<subscriptionName>", with `%` and `.` in the
// client id percent-encoded so that the first unencoded `.` separates the
// two and distinct pairs never share a name. It depends only on the two
// strings, so a reconnect finds the same queue. A name over 255 bytes
// (AMQP shortstr) is cut at a UTF-8 boundary and ends in "~" and 32 hex
// digits of SHA-256 over both parts; such names are exactly 255 bytes.
// Both parts must be non-empty; the caller reports a missing one.
func ActiveMQDurableQueueName(clientID, subscriptionName string) string {
	var b strings.Builder
	b.WriteString(durableQueuePrefix)
	for i := 0; i < len(clientID); i++ {
		switch c := clientID[i]; c {
		case '%':
			b.WriteString("%25")
		case '.':
			b.WriteString("%2E")
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('.')
	b.WriteString(subscriptionName)
	return fitShortstr(b.String(), clientID+"\x00"+subscriptionName)
}

// hashSuffixLen is "~" and 32 hex digits.
const hashSuffixLen = 33

// fitShortstr returns name if it fits an AMQP shortstr, else its longest
// UTF-8-clean prefix that leaves room for "~" + 32 hex digits of
// SHA-256(key).
func fitShortstr(name, key string) string {
	if len(name) <= maxShortstr {
		return name
	}
	cut := maxShortstr - hashSuffixLen
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	sum := sha256.Sum256([]byte(key))
	var b strings.Builder
	b.Grow(maxShortstr)
	b.WriteString(name[:cut])
	b.WriteByte('~')
	b.WriteString(hex.EncodeToString(sum[:16]))
	for b.Len() < maxShortstr { // pad a cut moved back by a multi-byte rune
		b.WriteByte('~')
	}
	return b.String()
}

// ActiveMQDeadLetterQueue names the dead-letter queue of queue as ActiveMQ
// configured with an individualDeadLetterStrategy queuePrefix="DLQ." does
// (the prefix of ActiveMQ's documentation example; the broker's own
// defaults are one shared "ActiveMQ.DLQ", or "ActiveMQ.DLQ.Queue.<queue>"
// with the strategy's default prefix). Too long names are cut and hashed
// as in ActiveMQDurableQueueName.
func ActiveMQDeadLetterQueue(queue string) string {
	return fitShortstr("DLQ."+queue, queue)
}

// ExpiresTTL turns ActiveMQ's `expires` header (absolute epoch ms; "0" or
// absent means never) into an AMQP per-message `expiration` (relative ms)
// at time now. drop is true when the message has already expired: it must
// not be published, but its SEND is answered as usual (issue 14). A value
// that is not a non-negative integer is ERROR `Invalid header`.
func ExpiresTTL(h codec.Headers, now time.Time) (expiration string, drop bool, err error) {
	v, ok := h.Get(HdrExpires)
	if !ok {
		return "", false, nil
	}
	at, err := strconv.ParseInt(v, 10, 64)
	if err != nil || at < 0 {
		return "", false, invalidHeader(HdrExpires, v, "a time in milliseconds since the epoch")
	}
	if at == 0 {
		return "", false, nil
	}
	ttl := at - now.UnixMilli()
	if ttl <= 0 {
		return "", true, nil
	}
	return strconv.FormatInt(ttl, 10), false, nil
}

// ScheduledDelay reads AMQ_SCHEDULED_DELAY (ms from now) or, without it,
// AMQ_SCHEDULED_TIME (absolute epoch ms) and returns how long to hold the
// message back; 0 means publish now (also for a time in the past). A value
// that is not an integer, or a negative delay, is ERROR `Invalid header`.
func ScheduledDelay(h codec.Headers, now time.Time) (time.Duration, error) {
	if v, ok := h.Get(HdrScheduledDelay); ok {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 || ms > maxDelayMillis {
			return 0, invalidHeader(HdrScheduledDelay, v, "a delay in milliseconds")
		}
		return time.Duration(ms) * time.Millisecond, nil
	}
	if v, ok := h.Get(HdrScheduledTime); ok {
		at, err := strconv.ParseInt(v, 10, 64)
		if err != nil || at < 0 {
			return 0, invalidHeader(HdrScheduledTime, v, "a time in milliseconds since the epoch")
		}
		ms := at - now.UnixMilli()
		if ms <= 0 {
			return 0, nil
		}
		if ms > maxDelayMillis {
			return 0, invalidHeader(HdrScheduledTime, v, "a time in milliseconds since the epoch")
		}
		return time.Duration(ms) * time.Millisecond, nil
	}
	return 0, nil
}

// maxDelayMillis keeps a delay inside time.Duration (about 292 years).
const maxDelayMillis = int64(1<<63-1) / int64(time.Millisecond)

// Delay buckets.
//
// Scheduled delivery uses RabbitMQ's own TTL and dead-lettering: a message
// waits in a delay queue whose x-message-ttl is the bucket, then is
// dead-lettered to its target exchange. RabbitMQ expires messages only at
// the head of a queue, so a per-message expiration in a shared FIFO would
// let a long-delayed message at the head hold back shorter ones behind it.
// A queue whose messages all have the same TTL (the queue's x-message-ttl)
// and enter in time order expires them in order, each on time. Hence one
// queue per bucket and the delay is rounded UP to its bucket: delivery is
// never earlier than asked.
//
// The grid: multiples of 250 ms up to 10 s (40 buckets), then each bucket
// is ceil(previous × 1.05) ms. Lateness from rounding is below 250 ms up to
// 10 s and below 5.01 % of the delay after, inside the budget of
// max(10 %, 1 s) with room for the broker's own latency. From 10 s to the
// default maximum of 7 days there are 226 geometric buckets, 266 in all;
// DelayBucketCount gives the number for any maximum.
const (
	DefaultMaxDelay   = 7 * 24 * time.Hour
	delayStep         = 250 * time.Millisecond
	delayLinearLimit  = 10 * time.Second
	delayRatioPercent = 105
)

// ErrDelayTooLong is returned by DelayBucket for a delay above the maximum.
var ErrDelayTooLong = errors.New("scheduled delay above the maximum")

// nextBucket is the bucket after b (ms) on the geometric part of the grid.
func nextBucket(b int64) int64 {
	return (b*delayRatioPercent + 99) / 100
}

// DelayBucket is the smallest bucket >= delay. A delay <= 0 is bucket 0
// (publish now). A delay above maxDelay (DefaultMaxDelay when 0) is
// ErrDelayTooLong; the largest bucket may exceed maxDelay by up to 5 %.
func DelayBucket(delay, maxDelay time.Duration) (time.Duration, error) {
	if maxDelay <= 0 {
		maxDelay = DefaultMaxDelay
	}
	switch {
	case delay <= 0:
		return 0, nil
	case delay > maxDelay:
		return 0, ErrDelayTooLong
	case delay <= delayLinearLimit:
		return (delay + delayStep - 1) / delayStep * delayStep, nil
	}
	ms := (delay + time.Millisecond - 1).Milliseconds()
	b := delayLinearLimit.Milliseconds()
	for b < ms {
		b = nextBucket(b)
	}
	return time.Duration(b) * time.Millisecond, nil
}

// DelayBucketCount is the number of distinct buckets DelayBucket can return
// for delays up to maxDelay (DefaultMaxDelay when 0), so the number of
// delay queues per target exchange.
func DelayBucketCount(maxDelay time.Duration) int {
	if maxDelay <= 0 {
		maxDelay = DefaultMaxDelay
	}
	if maxDelay <= delayLinearLimit {
		return int((maxDelay + delayStep - 1) / delayStep)
	}
	n := int(delayLinearLimit / delayStep)
	ms := (maxDelay + time.Millisecond - 1).Milliseconds()
	for b := delayLinearLimit.Milliseconds(); b < ms; n++ {
		b = nextBucket(b)
	}
	return n
}

// delayPrefix starts every delay queue and exchange name.
const delayPrefix = "stompgate.delay."

// DelayPlan is where a delayed message goes: publish it to Exchange with
// the target routing key, unchanged. Exchange is a fanout bound to Queue,
// so the message keeps its routing key while it waits; when the queue's TTL
// expires it, RabbitMQ dead-letters it to the target exchange with that
// same routing key (no x-dead-letter-routing-key is set). Publishing to the
// queue through the default exchange would not do: the routing key would
// be the delay queue's name.
type DelayPlan struct {
	Bucket   time.Duration
	Exchange string // declare: fanout, durable, not auto-delete
	Queue    QueueDeclare
	Binding  Binding // Queue bound to Exchange with an empty key
}

// PlanDelay is the delay queue for messages to targetExchange ("" is the
// default exchange) held back by bucket (from DelayBucket). Queue and
// exchange share the name "stompgate.delay.<exchange>.<bucket ms>", with
// "amq.default" for the default exchange (no client can declare an amq.*
// exchange, so the name is unambiguous); over 255 bytes it is cut and
// hashed. The queue is durable with x-message-ttl = bucket and
// x-dead-letter-exchange = targetExchange, classic (quorum queues in 3.10
// dead-letter at most once too, but cost more for short-lived messages).
//
// Gotchas for the gateway: strip the message's own `expiration` before the
// delay queue (on dead-lettering RabbitMQ drops it anyway, and a shorter
// one would dead-letter the message early); drop a message whose `expires`
// falls before its delivery time; and publish with mandatory and confirms
// as usual, since dead-lettering to an unroutable key loses the message.
func PlanDelay(targetExchange string, bucket time.Duration) DelayPlan {
	ex := targetExchange
	if ex == "" {
		ex = "amq.default"
	}
	ms := bucket.Milliseconds()
	name := fitShortstr(delayPrefix+ex+"."+strconv.FormatInt(ms, 10), targetExchange+"\x00"+strconv.FormatInt(ms, 10))
	return DelayPlan{
		Bucket:   bucket,
		Exchange: name,
		Queue: QueueDeclare{
			Name:    name,
			Durable: true,
			Args: amqp.Table{
				"x-message-ttl":          ms,
				"x-dead-letter-exchange": targetExchange,
				"x-queue-type":           "classic",
			},
		},
		Binding: Binding{Exchange: name},
	}
}

// msgInvalidSelector is the ERROR `message` for every refused selector.
const msgInvalidSelector = "Invalid selector"

// SubscriptionSelector reads a SUBSCRIBE's `selector` header for
// destination d. Without the header (or with an empty one) it returns nil.
// Only /topic and /exchange subscriptions may carry one: each has a queue
// of its own, where the gateway acknowledges and drops a delivery that does
// not match. On any other destination it is ERROR `Invalid selector`, since
// a shared queue cannot skip messages without taking them from other
// consumers; it is never silently ignored. A parse error is ERROR `Invalid
// selector` whose body is the *selector.SyntaxError text with the position.
func SubscriptionSelector(d Destination, h codec.Headers) (*selector.Selector, error) {
	src, ok := h.Get(HdrSelector)
	if !ok || strings.TrimSpace(src) == "" {
		return nil, nil
	}
	if d.Kind != DestTopic && d.Kind != DestExchange {
		return nil, protocolError(msgInvalidSelector, "Selectors are supported on /topic and /exchange subscriptions only, not on "+d.Kind.String()+" destinations: a shared queue cannot skip messages without taking them from other consumers\n")
	}
	sel, err := selector.Parse(src)
	if err != nil {
		return nil, protocolError(msgInvalidSelector, err.Error()+"\n")
	}
	return sel, nil
}

// SelectorHeaders is a selector.Getter over a MESSAGE's headers that sees
// them as ActiveMQ's selectors see a STOMP message (checked against
// ActiveMQ 5.17.2). Use a pointer: a *SelectorHeaders converts to the
// interface without allocating.
//
// The headers ActiveMQ turns into JMS header fields are not properties
// there, so a selector naming them directly gets NULL: destination,
// expires, timestamp, priority, type, persistent, subscription,
// redelivered, receipt, message-id, correlation-id, reply-to, user-id
// (`type = 'x'` never matches on ActiveMQ; `JMSType = 'x'` does). The JMS
// names read them instead:
//
//	JMSDestination    destination
//	JMSPriority       priority (4 when absent, JMS's default)
//	JMSCorrelationID  correlation-id
//	JMSType           type
//	JMSTimestamp      timestamp
//	JMSExpiration     expires (0 when absent)
//	JMSMessageID      message-id
//	JMSDeliveryMode   PERSISTENT if persistent:true, else NON_PERSISTENT
//	JMSRedelivered    true if redelivered:true, else false
//	JMSXDeliveryCount JMSXDeliveryCount (1 when absent)
//
// Every other name is looked up verbatim.
type SelectorHeaders struct {
	H codec.Headers
}

// Get returns the value a selector identifier names.
func (s *SelectorHeaders) Get(name string) (string, bool) {
	switch name {
	case hdrDestination, HdrExpires, hdrTimestamp, hdrPriority, hdrType, hdrPersistent,
		hdrSubscription, hdrRedelivered, hdrReceipt, hdrMessageID, hdrCorrelationID,
		hdrReplyTo, hdrUserID:
		return "", false
	case "JMSDestination":
		return s.H.Get(hdrDestination)
	case "JMSPriority":
		return s.getOr(hdrPriority, "4")
	case "JMSCorrelationID":
		return s.H.Get(hdrCorrelationID)
	case "JMSType":
		return s.H.Get(hdrType)
	case "JMSTimestamp":
		return s.H.Get(hdrTimestamp)
	case "JMSExpiration":
		return s.getOr(HdrExpires, "0")
	case "JMSMessageID":
		return s.H.Get(hdrMessageID)
	case "JMSDeliveryMode":
		if v, _ := s.H.Get(hdrPersistent); v == valueTrue {
			return "PERSISTENT", true
		}
		return "NON_PERSISTENT", true
	case "JMSRedelivered":
		if v, _ := s.H.Get(hdrRedelivered); v == valueTrue {
			return valueTrue, true
		}
		return valueFalse, true
	case HdrDeliveryCount:
		return s.getOr(HdrDeliveryCount, "1")
	}
	return s.H.Get(name)
}

func (s *SelectorHeaders) getOr(name, def string) (string, bool) {
	if v, ok := s.H.Get(name); ok {
		return v, true
	}
	return def, true
}
