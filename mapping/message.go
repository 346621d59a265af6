package mapping

import (
	"slices"
	"strconv"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/codec"
)

// MessageInfo is what the session knows about a delivery beyond the
// delivery itself (semantics 8.1 items 1, 3, 5).
type MessageInfo struct {
	// SubscriptionID is the `subscription` header: the SUBSCRIBE id, or
	// "/temp-queue/<name>" for a temp-queue reply. Sent only if
	// HasSubscription (T_ tags), omitted for id-less subscriptions.
	SubscriptionID  string
	HasSubscription bool
	// MessageID is "<consumer tag>@@<session id>@@<delivery tag>"
	// (AppendMessageID).
	MessageID string
	// AckID is the `ack` header, "" for none: set it to MessageID on 1.2
	// sessions for client and client-individual subscriptions.
	AckID string
}

const (
	valueTrue  = "true"
	valueFalse = "false"
)

// AppendMessageHeaders appends the headers of the MESSAGE for delivery d to
// dst, in the order of semantics 8.1: subscription, destination,
// message-id, redelivered, ack, the headers-table entries, then the set
// properties. It never adds content-length (the codec does). Headers the
// session's version cannot carry are the codec's to leave out (4.3).
//
// Table entries are emitted in byte order of their names: amqp091-go
// decodes tables into maps, so the wire order is gone. Longstr values go
// as is, integers of every width in decimal, other types are left out, and
// so are entries named like a header the gateway sets (semantics 8.1 item 6,
// 16 item 13).
func AppendMessageHeaders(dst codec.Headers, info MessageInfo, d *amqp.Delivery) codec.Headers {
	if info.HasSubscription {
		dst = append(dst, codec.Header{Name: hdrSubscription, Value: info.SubscriptionID})
	}
	dst = append(dst,
		codec.Header{Name: hdrDestination, Value: FormatDestination(d.Exchange, d.RoutingKey)},
		codec.Header{Name: hdrMessageID, Value: info.MessageID},
		codec.Header{Name: hdrRedelivered, Value: formatBool(d.Redelivered)},
	)
	if info.AckID != "" {
		dst = append(dst, codec.Header{Name: hdrAck, Value: info.AckID})
	}
	dst = appendTableHeaders(dst, d.Headers)
	return appendPropertyHeaders(dst, d)
}

func formatBool(b bool) string {
	if b {
		return valueTrue
	}
	return valueFalse
}

// appendTableHeaders appends the convertible entries of table in name order.
func appendTableHeaders(dst codec.Headers, table amqp.Table) codec.Headers {
	if len(table) == 0 {
		return dst
	}
	var stack [32]string
	names := stack[:0]
	for name := range table {
		if name == "" || reservedMessageHeader(name) {
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if v, ok := tableValueString(table[name]); ok {
			dst = append(dst, codec.Header{Name: name, Value: v})
		}
	}
	return dst
}

// reservedMessageHeader reports whether a headers-table entry is shadowed by
// a header the gateway sets: items 1–5 and 7 of semantics 8.1, and
// content-length.
func reservedMessageHeader(name string) bool {
	switch name {
	case hdrSubscription, hdrDestination, hdrMessageID, hdrRedelivered, hdrAck, hdrContentLength:
		return true
	}
	return propertyBit(name) != 0
}

// tableValueString converts a headers-table value as util
// adhoc_convert_headers/2 does, widened to integers of every width.
func tableValueString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case []byte:
		return string(v), true
	case int8:
		return strconv.FormatInt(int64(v), 10), true
	case int16:
		return strconv.FormatInt(int64(v), 10), true
	case int32:
		return strconv.FormatInt(int64(v), 10), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case int:
		return strconv.FormatInt(int64(v), 10), true
	case uint8:
		return strconv.FormatUint(uint64(v), 10), true
	case uint16:
		return strconv.FormatUint(uint64(v), 10), true
	case uint32:
		return strconv.FormatUint(uint64(v), 10), true
	case uint64:
		return strconv.FormatUint(v, 10), true
	case uint:
		return strconv.FormatUint(uint64(v), 10), true
	}
	return "", false
}

// appendPropertyHeaders appends the set properties in the order of
// semantics 8.1 item 7 (util message_headers/1). amqp091-go cannot tell an
// unset priority from priority 0, nor an empty string from an unset one:
// both are left out.
func appendPropertyHeaders(dst codec.Headers, d *amqp.Delivery) codec.Headers {
	add := func(name, v string) {
		if v != "" {
			dst = append(dst, codec.Header{Name: name, Value: v})
		}
	}
	add(hdrAppID, d.AppId)
	add(hdrUserID, d.UserId)
	add(hdrType, d.Type)
	if !d.Timestamp.IsZero() {
		add(hdrTimestamp, strconv.FormatInt(d.Timestamp.Unix(), 10))
	}
	add(hdrAMQPMessageID, d.MessageId)
	add(hdrExpiration, d.Expiration)
	if d.ReplyTo != "" {
		add(hdrReplyTo, ReplyToForMessage(d.ReplyTo))
	}
	add(hdrCorrelationID, d.CorrelationId)
	if d.Priority > 0 {
		add(hdrPriority, strconv.FormatUint(uint64(d.Priority), 10))
	}
	switch d.DeliveryMode {
	case amqp.Persistent:
		add(hdrPersistent, valueTrue)
	case amqp.Transient:
		add(hdrPersistent, valueFalse) // not the plugin's "1" (semantics 16 item 13)
	}
	add(hdrContentEncoding, d.ContentEncoding)
	add(hdrContentType, d.ContentType)
	return dst
}

// ackIDSeparator separates the parts of a message id (semantics 8.2).
const ackIDSeparator = "@@"

// AppendMessageID appends "<consumerTag>@@<sessionID>@@<deliveryTag>", the
// MESSAGE `message-id` and `ack` value (semantics 8.1 item 3).
func AppendMessageID(dst []byte, consumerTag, sessionID string, deliveryTag uint64) []byte {
	dst = append(dst, consumerTag...)
	dst = append(dst, ackIDSeparator...)
	dst = append(dst, sessionID...)
	dst = append(dst, ackIDSeparator...)
	return strconv.AppendUint(dst, deliveryTag, 10)
}

// ParseAckID splits an ack id from the right (semantics 8.2): the last "@@"
// precedes the decimal delivery tag, the one before it the session id
// (which never contains "@"), and the rest, which may contain "@@", is the
// consumer tag.
func ParseAckID(s string) (consumerTag, sessionID string, deliveryTag uint64, ok bool) {
	i := strings.LastIndex(s, ackIDSeparator)
	if i < 0 {
		return "", "", 0, false
	}
	tag, err := strconv.ParseUint(s[i+len(ackIDSeparator):], 10, 64)
	if err != nil {
		return "", "", 0, false
	}
	rest := s[:i]
	j := strings.LastIndex(rest, ackIDSeparator)
	if j < 0 {
		return "", "", 0, false
	}
	return rest[:j], rest[j+len(ackIDSeparator):], tag, true
}

// AckIDHeader reads the ack id of an ACK or NACK (semantics 10.1): `id` on
// 1.2 sessions, `message-id` on 1.0 and 1.1, each falling back to the
// other. headerName is always the version's primary header, the one the
// plugin's ERROR bodies name (MissingAckID, InvalidAckID).
func AckIDHeader(v codec.Version, h codec.Headers) (value string, present bool, headerName string) {
	primary, fallback := hdrMessageID, hdrID
	if v == codec.Version12 {
		primary, fallback = hdrID, hdrMessageID
	}
	if value, ok := h.Get(primary); ok {
		return value, true, primary
	}
	if value, ok := h.Get(fallback); ok {
		return value, true, primary
	}
	return "", false, primary
}
