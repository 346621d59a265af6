package mapping

import (
	"strings"
	"unicode/utf8"

	"github.com/stompgate/stompgate/gateway/codec"
)

// ERROR `message` texts used by this package (semantics.md 5.1, 6, 7, 10).
const (
	msgMissingDestination      = "Missing destination"
	msgInvalidDestination      = "Invalid destination"
	msgUnknownDestination      = "Unknown destination"
	msgInvalidHeader           = "Invalid header"
	msgMissingHeaderDurable    = "Missing Header" // sic, rabbitmq_stomp report_missing_id_header/1
	msgInvalidID               = "Invalid id"
	msgMissingDestinationOrID  = "Missing destination or id"
	msgNoSubscriptionFound     = "No subscription found"
	msgDuplicatedSubscription  = "Duplicated subscription identifier"
	msgMissingAckHeader        = "Missing header"
	bodyMissingIDForDurableSub = "Header 'id' is required for durable subscriptions" // no LF, as the plugin
	tempQueuePrefix            = "/temp-queue/"
)

// validDestinationTypes is the second line of the Unknown destination body
// (routing all_dest_prefixes/0 joined with ", ").
const validDestinationTypes = "Valid destination types are: /temp-queue, /exchange, /topic, /queue, /amq/queue, /reply-queue/."

func protocolError(message, detail string) *codec.ProtocolError {
	return &codec.ProtocolError{Message: message, Detail: detail}
}

// invalidHeader is ERROR `Invalid header` with a body naming the header and
// the refused value. The plugin has no text for these cases (it crashes with
// `Processing error`); the bodies are stompgate's own and end in LF like the
// plugin's.
func invalidHeader(name, value, want string) *codec.ProtocolError {
	return protocolError(msgInvalidHeader, "'"+name+"' must be "+want+", not '"+truncate(value)+"'\n")
}

// MissingDestination is the ERROR for a SEND or SUBSCRIBE without a
// `destination` header (semantics 5.1; processor with_destination/4).
func MissingDestination(command string) error {
	return protocolError(msgMissingDestination, `"`+command+`" must include a 'destination' header`+"\n")
}

// DuplicateSubscription is the ERROR for a SUBSCRIBE whose consumer tag is
// already in use (semantics 6.2). The body has no LF, as the plugin's.
func DuplicateSubscription(consumerTag string) error {
	return protocolError(msgDuplicatedSubscription, "A subscription identified by '"+consumerTag+"' already exists.")
}

// NoSubscriptionFound is the ERROR for an UNSUBSCRIBE that names no current
// subscription (semantics 6.3; processor cancel_subscription/3).
func NoSubscriptionFound(t UnsubscribeTarget) error {
	return protocolError(msgNoSubscriptionFound,
		"UNSUBSCRIBE must refer to an existing subscription.\nSubscription to "+erlangQuote(t.Description())+" not found.\n")
}

// MissingAckID is the ERROR for an ACK or NACK without its ack id header;
// headerName is the version's primary header (semantics 10.1, 10.2 step 1).
func MissingAckID(command, headerName string) error {
	return protocolError(msgMissingAckHeader, `"`+command+`" must include the "`+headerName+`" header`+"\n")
}

// InvalidAckID is the ERROR for an ack id that ParseAckID refuses
// (semantics 10.2 step 1).
func InvalidAckID(command, headerName string) error {
	return protocolError(msgInvalidHeader, `"`+command+`" must include a valid "`+headerName+`" header`+"\n")
}

// maxQuoted bounds how much of a client's value an ERROR body of ours echoes.
const maxQuoted = 128

// truncate shortens v to at most maxQuoted bytes on a rune boundary.
func truncate(v string) string {
	if len(v) <= maxQuoted {
		return v
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return v[:cut] + "..."
}

// erlangQuote renders s the way Erlang's ~p prints a printable string:
// in double quotes, with `"` and `\` escaped.
func erlangQuote(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return `"` + s + `"`
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
