package mapping

import (
	"strings"
)

// DestinationKind says which STOMP destination grammar a destination used
// (semantics 5.1).
type DestinationKind int

// The destination kinds. DestNone is the zero value: no destination.
const (
	DestNone       DestinationKind = iota
	DestQueue                      // /queue/<q>, or a bare name without "/"
	DestAmqQueue                   // /amq/queue/<q>: an existing queue, never declared
	DestTopic                      // /topic/<rk> on the default topic exchange
	DestExchange                   // /exchange/<x>[/<rk>]
	DestReplyQueue                 // /reply-queue/<q>, verbatim
	DestTempQueue                  // /temp-queue/<id>, only in reply-to (semantics 9)
)

// String returns the plugin's name of the kind (as in its ERROR bodies).
func (k DestinationKind) String() string {
	switch k {
	case DestQueue:
		return "queue"
	case DestAmqQueue:
		return "amqqueue"
	case DestTopic:
		return "topic"
	case DestExchange:
		return "exchange"
	case DestReplyQueue:
		return "reply_queue"
	case DestTempQueue:
		return "temp_queue"
	}
	return "none"
}

// Destination is a parsed STOMP destination.
type Destination struct {
	Kind DestinationKind
	// Raw is the destination header as sent (after codec unescaping).
	Raw string
	// Queue is the queue name (DestQueue, DestAmqQueue, DestReplyQueue) or
	// the temp-queue id (DestTempQueue).
	Queue string
	// Exchange is set for DestExchange.
	Exchange string
	// RoutingKey is the topic of DestTopic, or the key of DestExchange ("" if
	// the destination has none).
	RoutingKey string
}

// Commands accepted by ParseDestination besides codec.CmdSend and
// codec.CmdSubscribe.
const (
	// ReplyTo parses a SEND `reply-to` value: the only use that allows
	// /temp-queue/ (semantics 9).
	ReplyTo = "reply-to"
)

// maxShortstr is the AMQP 0-9-1 shortstr limit, which bounds queue, exchange
// and routing-key names, consumer tags, property strings and table keys.
const maxShortstr = 255

// Destination prefixes (routing parse_endpoint/2).
const (
	prefixQueue      = "/queue"
	prefixAmqQueue   = "/amq/queue"
	prefixTopic      = "/topic"
	prefixExchange   = "/exchange"
	prefixTempQueue  = "/temp-queue"
	prefixReplyQueue = "/reply-queue"
)

// ParseDestination parses dest for command: codec.CmdSend,
// codec.CmdSubscribe, or ReplyTo (semantics 5.1 and 18, routing
// parse_endpoint/2). A known prefix with the wrong shape is an Invalid
// destination whose body quotes what follows the prefix; an unrecognized
// prefix is an Unknown destination. The only unescape is "%2F" → "/" in a
// segment; /reply-queue/ names are taken verbatim. Names over 255 bytes are
// refused. A missing header is the caller's to report (MissingDestination).
func ParseDestination(dest, command string) (Destination, error) {
	d := Destination{Raw: dest}
	if dest == "" {
		// processor ensure_endpoint/5: "~s" format, so no LF.
		return d, protocolError(msgInvalidDestination, "Destination cannot be blank")
	}
	if !strings.Contains(dest, "/") {
		d.Kind, d.Queue = DestQueue, unescape(dest)
		return d, checkNames(d)
	}
	var (
		prefix string
		kind   DestinationKind
	)
	switch {
	case hasSegmentPrefix(dest, prefixQueue):
		prefix, kind = prefixQueue, DestQueue
	case hasSegmentPrefix(dest, prefixAmqQueue):
		prefix, kind = prefixAmqQueue, DestAmqQueue
	case hasSegmentPrefix(dest, prefixTopic):
		prefix, kind = prefixTopic, DestTopic
	case hasSegmentPrefix(dest, prefixExchange):
		prefix, kind = prefixExchange, DestExchange
	case hasSegmentPrefix(dest, prefixTempQueue):
		prefix, kind = prefixTempQueue, DestTempQueue
	case strings.HasPrefix(dest, prefixReplyQueue+"/"):
		// "/reply-queue" alone is unknown, as in the plugin, which wants a
		// segment after the prefix; "/reply-queue/" is an invalid one.
		prefix, kind = prefixReplyQueue, DestReplyQueue
	default:
		return d, protocolError(msgUnknownDestination,
			"'"+dest+"' is not a valid destination.\n"+validDestinationTypes+"\n")
	}
	rest := dest[len(prefix):] // "" or starts with "/"
	d.Kind = kind
	invalid := func() (Destination, error) {
		return Destination{Raw: dest}, protocolError(msgInvalidDestination,
			"'"+rest+"' is not a valid "+kind.String()+" destination\n")
	}
	if rest == "" {
		return invalid()
	}
	body := rest[1:]
	switch kind {
	case DestReplyQueue:
		if body == "" {
			return invalid()
		}
		d.Queue = body
	case DestExchange:
		name, key, hasKey := strings.Cut(body, "/")
		if name == "" || (hasKey && strings.Contains(key, "/")) {
			return invalid()
		}
		d.Exchange, d.RoutingKey = unescape(name), unescape(key)
	default: // exactly one non-empty segment
		if body == "" || strings.Contains(body, "/") {
			return invalid()
		}
		if kind == DestTopic {
			d.RoutingKey = unescape(body)
		} else {
			d.Queue = unescape(body)
		}
	}
	if kind == DestTempQueue && command != ReplyTo {
		return Destination{Raw: dest}, protocolError(msgInvalidDestination,
			"'"+dest+"' is not a valid destination for '"+command+"'\n")
	}
	return d, checkNames(d)
}

// hasSegmentPrefix reports whether dest is prefix or starts with prefix + "/".
func hasSegmentPrefix(dest, prefix string) bool {
	return strings.HasPrefix(dest, prefix) && (len(dest) == len(prefix) || dest[len(prefix)] == '/')
}

// checkNames refuses names AMQP cannot carry in a shortstr (semantics 5.1).
// A temp-queue id is no AMQP name, but its consumer tag "T_<raw>" is.
func checkNames(d Destination) error {
	tooLong := len(d.Queue) > maxShortstr || len(d.Exchange) > maxShortstr || len(d.RoutingKey) > maxShortstr
	if d.Kind == DestTempQueue {
		tooLong = len(TempQueueConsumerTag(d)) > maxShortstr
	}
	if tooLong {
		return protocolError(msgInvalidDestination,
			"'"+d.Raw+"' is too long: AMQP names are limited to 255 bytes\n")
	}
	return nil
}

// unescape turns "%2F" (upper-case F only) into "/" (routing unescape/1).
func unescape(s string) string {
	if !strings.Contains(s, "%2F") {
		return s
	}
	return strings.ReplaceAll(s, "%2F", "/")
}

// PublishTarget is the exchange and routing key a SEND to d publishes to
// (semantics 5.2). topicExchange is stomp.default_topic_exchange. A temp
// queue is not a SEND destination; it yields ("", "").
func (d Destination) PublishTarget(topicExchange string) (exchange, routingKey string) {
	switch d.Kind {
	case DestQueue, DestAmqQueue, DestReplyQueue:
		return "", d.Queue
	case DestTopic:
		return topicExchange, d.RoutingKey
	case DestExchange:
		return d.Exchange, d.RoutingKey
	}
	return "", ""
}

// TempQueueConsumerTag is the consumer tag of the temp queue a reply-to
// /temp-queue/<id> creates, "T_/temp-queue/<id>" (semantics 9). It is also
// what its MESSAGE frames carry as `subscription` (minus the "T_").
func TempQueueConsumerTag(d Destination) string {
	return tagByID + d.Raw
}

// FormatDestination is the MESSAGE `destination` for a delivery's exchange
// and routing key (semantics 8.1 item 2, util format_destination/2). The
// exchange is compared with "amq.topic" literally, whatever the configured
// default topic exchange is, as the plugin does.
func FormatDestination(exchange, routingKey string) string {
	var b strings.Builder
	switch {
	case exchange == "":
		b.Grow(len(prefixQueue) + 1 + escapedLen(routingKey))
		b.WriteString(prefixQueue + "/")
		writeEscaped(&b, routingKey)
	case exchange == "amq.topic":
		b.Grow(len(prefixTopic) + 1 + escapedLen(routingKey))
		b.WriteString(prefixTopic + "/")
		writeEscaped(&b, routingKey)
	case routingKey == "":
		b.Grow(len(prefixExchange) + 1 + escapedLen(exchange))
		b.WriteString(prefixExchange + "/")
		writeEscaped(&b, exchange)
	default:
		b.Grow(len(prefixExchange) + 2 + escapedLen(exchange) + escapedLen(routingKey))
		b.WriteString(prefixExchange + "/")
		writeEscaped(&b, exchange)
		b.WriteByte('/')
		writeEscaped(&b, routingKey)
	}
	return b.String()
}

// needsEscape is util escape/1's set: "/", "%", and bytes < 0x20 or > 0x7F.
func needsEscape(c byte) bool {
	return c == '/' || c == '%' || c < 0x20 || c > 0x7F
}

func escapedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			n += 2
		}
	}
	return n
}

const upperHex = "0123456789ABCDEF"

func writeEscaped(b *strings.Builder, s string) {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !needsEscape(c) {
			continue
		}
		b.WriteString(s[start:i])
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&0x0F])
		start = i + 1
	}
	b.WriteString(s[start:])
}

// replyToPrefixes are the values ReplyToForMessage leaves alone (routing
// dest_prefixes/0; plain prefix match, so "/queuex" counts too).
var replyToPrefixes = [...]string{prefixExchange, prefixTopic, prefixQueue, prefixAmqQueue, prefixReplyQueue + "/"}

// ReplyToForMessage is the MESSAGE `reply-to` for an AMQP reply-to property
// (semantics 8.3, util headers_post_process/1): a value without a known
// destination prefix gets "/reply-queue/" prepended.
func ReplyToForMessage(v string) string {
	for _, p := range replyToPrefixes {
		if strings.HasPrefix(v, p) {
			return v
		}
	}
	return prefixReplyQueue + "/" + v
}
