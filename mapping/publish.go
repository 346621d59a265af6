package mapping

import (
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/codec"
)

// Headers mapped to basic properties, both directions (semantics 7.1).
const (
	hdrContentType     = "content-type"
	hdrContentEncoding = "content-encoding"
	hdrCorrelationID   = "correlation-id"
	hdrType            = "type"
	hdrAppID           = "app-id"
	hdrUserID          = "user-id"
	hdrAMQPMessageID   = "amqp-message-id"
	hdrReplyTo         = "reply-to"
	hdrExpiration      = "expiration"
	hdrPriority        = "priority"
	hdrTimestamp       = "timestamp"
	hdrMessageID       = "message-id"
	hdrReceipt         = "receipt"
	hdrTransaction     = "transaction"
	hdrContentLength   = "content-length"
	hdrSubscription    = "subscription"
	hdrRedelivered     = "redelivered"
)

// Sizes of an AMQP content header frame around its property list (AMQP
// 0-9-1 4.2.3, 4.2.6.1): frame header 7 + frame end 1; class-id 2, weight 2,
// body size 8, property flags 2.
const (
	frameOverhead         = 8
	contentHeaderFixed    = 14
	tempQueueNameEstimate = 64 // amq.gen-… or stompgate-temp-… replaces /temp-queue/<id>
)

// SendOptions carries what PublishingFromSend needs from the session.
type SendOptions struct {
	// FrameMax is the negotiated AMQP frame_max; properties and headers
	// table must fit one content header frame. 0 disables the check.
	FrameMax int
}

// PublishingFromSend maps the headers of a SEND to basic.publish properties
// and headers table (semantics 7, 7.1). The body is the caller's to set.
//
// `message-id` is refused first (processor without_headers/5). The
// returned replyTo is the parsed `reply-to` (Kind DestNone if absent); for a
// /temp-queue/ the gateway creates the temp queue and replaces
// Publishing.ReplyTo with its name (semantics 9); any other value is passed
// verbatim. Table values are longstr, first occurrence of a name wins, and
// `destination`, `receipt`, `transaction`, `content-length` and the mapped
// property headers are left out.
func PublishingFromSend(h codec.Headers, opt SendOptions) (pub amqp.Publishing, replyTo Destination, err error) {
	if _, ok := h.Get(hdrMessageID); ok {
		return amqp.Publishing{}, Destination{}, protocolError(msgInvalidHeader, "'message-id' is not allowed on 'SEND'.\n")
	}
	var seen propertySet
	for _, hd := range h {
		name, v := hd.Name, hd.Value
		bit := propertyBit(name)
		if bit == 0 {
			if excludedFromSendTable(name) {
				continue
			}
			if len(name) > maxShortstr {
				return amqp.Publishing{}, Destination{}, protocolError(msgInvalidHeader,
					"header name '"+truncate(name)+"' is longer than 255 bytes, the limit of an AMQP table key\n")
			}
			if _, dup := pub.Headers[name]; dup {
				continue // STOMP 1.2: repeated header, first value wins
			}
			if pub.Headers == nil {
				pub.Headers = amqp.Table{}
			}
			pub.Headers[name] = v
			continue
		}
		if seen&bit != 0 {
			continue // first value wins
		}
		seen |= bit
		if bit&shortstrProperties != 0 && len(v) > maxShortstr {
			return amqp.Publishing{}, Destination{}, invalidHeader(name, v, "at most 255 bytes (an AMQP short string)")
		}
		switch name {
		case hdrContentType:
			pub.ContentType = v
		case hdrContentEncoding:
			pub.ContentEncoding = v
		case hdrCorrelationID:
			pub.CorrelationId = v
		case hdrType:
			pub.Type = v
		case hdrAppID:
			pub.AppId = v
		case hdrUserID:
			pub.UserId = v
		case hdrAMQPMessageID:
			pub.MessageId = v
		case hdrPersistent:
			// Only delivery-mode; no effect on declarations (semantics 16 item 11).
			if persistent, _ := ParseBoolHeader(v); persistent {
				pub.DeliveryMode = amqp.Persistent
			}
		case hdrPriority:
			n, perr := strconv.ParseUint(strings.TrimSpace(v), 10, 8)
			if perr != nil {
				return amqp.Publishing{}, Destination{}, invalidHeader(name, v, "an integer from 0 to 255")
			}
			pub.Priority = uint8(n)
		case hdrExpiration:
			if !isDigits(v) {
				return amqp.Publishing{}, Destination{}, invalidHeader(name, v, "a non-negative integer (milliseconds)")
			}
			pub.Expiration = v
		case hdrTimestamp:
			n, perr := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if perr != nil || n < 0 {
				return amqp.Publishing{}, Destination{}, invalidHeader(name, v, "a non-negative integer (seconds)")
			}
			pub.Timestamp = time.Unix(n, 0)
		case hdrReplyTo:
			d, derr := ParseDestination(v, ReplyTo)
			if derr != nil {
				return amqp.Publishing{}, Destination{}, invalidHeader(name, v, "a valid destination")
			}
			replyTo = d
			pub.ReplyTo = v
		}
	}
	if opt.FrameMax > 0 {
		if size := contentHeaderSize(&pub, replyTo.Kind == DestTempQueue); size > opt.FrameMax {
			return amqp.Publishing{}, Destination{}, protocolError(msgInvalidHeader,
				"the headers of this SEND need "+strconv.Itoa(size)+" bytes as AMQP properties, more than one AMQP frame ("+strconv.Itoa(opt.FrameMax)+" bytes)\n")
		}
	}
	return pub, replyTo, nil
}

// propertySet has one bit per header that maps to a basic property.
type propertySet uint16

const (
	propContentType propertySet = 1 << iota
	propContentEncoding
	propCorrelationID
	propType
	propAppID
	propUserID
	propAMQPMessageID
	propReplyTo
	propExpiration
	propPersistent
	propPriority
	propTimestamp

	shortstrProperties = propContentType | propContentEncoding | propCorrelationID | propType |
		propAppID | propUserID | propAMQPMessageID | propReplyTo | propExpiration
)

// propertyBit is the bit of a property header, or 0 for any other header.
func propertyBit(name string) propertySet {
	switch name {
	case hdrContentType:
		return propContentType
	case hdrContentEncoding:
		return propContentEncoding
	case hdrCorrelationID:
		return propCorrelationID
	case hdrType:
		return propType
	case hdrAppID:
		return propAppID
	case hdrUserID:
		return propUserID
	case hdrAMQPMessageID:
		return propAMQPMessageID
	case hdrReplyTo:
		return propReplyTo
	case hdrExpiration:
		return propExpiration
	case hdrPersistent:
		return propPersistent
	case hdrPriority:
		return propPriority
	case hdrTimestamp:
		return propTimestamp
	}
	return 0
}

// excludedFromSendTable lists the non-property headers that never reach the
// AMQP headers table (semantics 7.1; 16 item 13 for the last three).
func excludedFromSendTable(name string) bool {
	switch name {
	case hdrDestination, hdrReceipt, hdrTransaction, hdrContentLength:
		return true
	}
	return false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// contentHeaderSize is the size of the content header frame amqp091-go
// writes for pub (its headerFrame.write): fixed fields, then each property
// that is set. tempReplyTo accounts for the queue name that will replace a
// /temp-queue/ reply-to.
func contentHeaderSize(pub *amqp.Publishing, tempReplyTo bool) int {
	n := frameOverhead + contentHeaderFixed
	shortstr := func(s string) {
		if s != "" {
			n += 1 + len(s)
		}
	}
	shortstr(pub.ContentType)
	shortstr(pub.ContentEncoding)
	shortstr(pub.CorrelationId)
	if tempReplyTo {
		n += 1 + max(len(pub.ReplyTo), tempQueueNameEstimate)
	} else {
		shortstr(pub.ReplyTo)
	}
	shortstr(pub.Expiration)
	shortstr(pub.MessageId)
	shortstr(pub.Type)
	shortstr(pub.UserId)
	shortstr(pub.AppId)
	if pub.DeliveryMode > 0 {
		n++
	}
	if pub.Priority > 0 {
		n++
	}
	if !pub.Timestamp.IsZero() {
		n += 8
	}
	if len(pub.Headers) > 0 {
		n += 4 // longstr length of the table
		for k, v := range pub.Headers {
			s, _ := v.(string) // PublishingFromSend only stores strings
			n += 1 + len(k) + 1 + 4 + len(s)
		}
	}
	return n
}
