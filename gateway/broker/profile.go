package broker

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/codec"
)

// Profile adapts the AMQP side to what a broker accepts (semantics
// 17). A session picks one right after its AMQP connection opens and
// consults it from the session loop only; profiles are immutable values.
//
// What each profile uses (the README's broker support table mirrors this):
//
//	                      rabbitmq           qpid                          generic
//	publisher confirms    capabilities       qpid.confirmed_publish_…      capabilities
//	                      (default: yes)     or capabilities (default: no)  (default: no)
//	RECEIPT after SEND    confirm            confirm, else round trip      confirm, else round trip
//	basic.nack            yes                yes                           capabilities
//	expiration on SEND    relative ms        absolute epoch ms (now+ttl)   ERROR Invalid header
//	expiration on MESSAGE as stored          remaining ms (≥ 1)            as stored
//	queue arguments       all passed         x-max-priority→x-qpid-        none (x-queue-type
//	                                         priorities, x-queue-type      classic dropped),
//	                                         classic dropped, else ERROR;  else ERROR
//	                                         x-qpid-maximum-delivery-
//	                                         count 1 added
//	temp queue names      broker (amq.gen-…) broker (tmp_<uuid>)           stompgate-temp-…
//	exclusive queues      yes                yes, not durable (qpid.go)    no: auto-delete only
//	back-pressure         connection.blocked channel.flow                  confirm cap + TCP
//
// Channels on a Qpid Broker-J connection also refuse, whatever the
// profile, what Broker-J answers by closing the whole connection (qpid.go),
// and a channel beyond channel-max (Broker-J: 256) is ERROR Too many
// subscriptions (dial.go).
//
// "Round trip" means: without publisher confirms a SEND receipt follows a
// synchronous method on the publisher channel, so the broker has read the
// message but need not have stored it (semantics 17, last paragraph).
type Profile interface {
	// Name is "rabbitmq", "qpid" or "generic".
	Name() string
	// PublisherConfirms reports whether the broker supports confirm.select;
	// without it, SEND receipts follow a synchronous round trip.
	PublisherConfirms() bool
	// ServerNamedQueues reports whether queue.declare with an empty name
	// gets a broker-generated name (temp queues, semantics 9).
	ServerNamedQueues() bool
	// ExclusiveQueues reports whether queues may be declared exclusive;
	// if not, exclusive queues are declared auto-delete only (their
	// consumer still removes them).
	ExclusiveQueues() bool
	// AdaptPublishing rewrites msg for the broker (e.g. Qpid's absolute
	// expiration) or refuses what the broker cannot do.
	AdaptPublishing(msg *amqp.Publishing) error
	// AdaptQueueArgs rewrites queue.declare arguments, or refuses them with
	// ERROR Invalid header before anything is declared.
	AdaptQueueArgs(args amqp.Table) (amqp.Table, error)
	// AdaptDelivery rewrites a delivery's properties for the MESSAGE frame
	// (e.g. Qpid's absolute expiration back to remaining milliseconds).
	AdaptDelivery(d *amqp.Delivery)
}

// Profile names, as in the amqp.profile config key.
const (
	ProfileAuto     = "auto"
	ProfileRabbitMQ = "rabbitmq"
	ProfileQpid     = "qpid"
	ProfileGeneric  = "generic"
)

// Capabilities is what a broker says it supports in the capabilities
// table of connection.start's server properties (RabbitMQ's convention,
// which garagemq follows; Qpid Broker-J sends no such table but
// qpid.confirmed_publish_supported, see ParseCapabilities).
type Capabilities struct {
	PublisherConfirms    bool
	BasicNack            bool
	ConsumerCancelNotify bool
	ConnectionBlocked    bool
}

// ParseCapabilities reads the capabilities of serverProperties; a
// capability the broker does not mention takes its value from defaults.
// Qpid Broker-J announces confirms as the string property
// qpid.confirmed_publish_supported = "true" (Broker-J's
// ConnectionStartProperties), which counts when the table is silent.
func ParseCapabilities(serverProperties amqp.Table, defaults Capabilities) Capabilities {
	caps := defaults
	if v, ok := serverProperties["qpid.confirmed_publish_supported"]; ok {
		caps.PublisherConfirms = truthy(v)
	}
	table, _ := serverProperties["capabilities"].(amqp.Table)
	read := func(name string, dst *bool) {
		if v, ok := table[name]; ok {
			*dst = truthy(v)
		}
	}
	read("publisher_confirms", &caps.PublisherConfirms)
	read("basic.nack", &caps.BasicNack)
	read("consumer_cancel_notify", &caps.ConsumerCancelNotify)
	read("connection.blocked", &caps.ConnectionBlocked)
	return caps
}

// truthy accepts a field-table boolean or Qpid's string "true".
func truthy(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return strings.EqualFold(strings.TrimSpace(b), "true")
	}
	return false
}

// productOf returns connection.start's product (a longstr; some brokers
// send it as bytes).
func productOf(serverProperties amqp.Table) string {
	switch p := serverProperties["product"].(type) {
	case string:
		return p
	case []byte:
		return string(p)
	}
	return ""
}

// detectProfile is amqp.profile auto (semantics 17): product "RabbitMQ" →
// rabbitmq, a product containing "qpid" (any case: Broker-J says "qpid")
// → qpid, anything else → generic.
func detectProfile(serverProperties amqp.Table) string {
	product := productOf(serverProperties)
	switch {
	case strings.EqualFold(product, "RabbitMQ"):
		return ProfileRabbitMQ
	case strings.Contains(strings.ToLower(product), "qpid"):
		return ProfileQpid
	}
	return ProfileGeneric
}

// SelectProfile picks the profile for a connection from the configured
// name ("auto" or empty: from the server properties of connection.start).
// A forced profile still reads the broker's capabilities. Config
// validation only lets known names through; an unknown one is generic,
// the profile that assumes least.
func SelectProfile(configured string, serverProperties amqp.Table) Profile {
	name := strings.ToLower(strings.TrimSpace(configured))
	if name == "" || name == ProfileAuto {
		name = detectProfile(serverProperties)
	}
	switch name {
	case ProfileRabbitMQ:
		return rabbitMQProfile{caps: ParseCapabilities(serverProperties, rabbitMQDefaults)}
	case ProfileQpid:
		return qpidProfile{caps: ParseCapabilities(serverProperties, qpidDefaults), now: time.Now}
	}
	return genericProfile{caps: ParseCapabilities(serverProperties, genericDefaults)}
}

// Capabilities assumed when connection.start does not mention them.
var (
	// RabbitMQ has had all four since 3.3 and always sends the table.
	rabbitMQDefaults = Capabilities{PublisherConfirms: true, BasicNack: true, ConsumerCancelNotify: true, ConnectionBlocked: true}
	// Qpid Broker-J handles basic.nack from clients, has no
	// server-initiated basic.cancel and throttles with channel.flow
	// (semantics 17); confirms come from qpid.confirmed_publish_supported.
	qpidDefaults = Capabilities{BasicNack: true}
	// An unknown broker is assumed to have nothing it does not announce.
	genericDefaults = Capabilities{}
)

// notSupported is ERROR Invalid header for a header the broker of profile
// cannot honour (semantics 17), raised before any declare or publish.
func notSupported(header, profile string) *codec.ProtocolError {
	return &codec.ProtocolError{Message: "Invalid header", Detail: "'" + header + "' is not supported by broker profile " + profile + "\n"}
}

// rabbitMQProfile is the reference: everything passes unchanged.
type rabbitMQProfile struct{ caps Capabilities }

func (rabbitMQProfile) Name() string                                    { return ProfileRabbitMQ }
func (p rabbitMQProfile) PublisherConfirms() bool                       { return p.caps.PublisherConfirms }
func (rabbitMQProfile) ServerNamedQueues() bool                         { return true }
func (rabbitMQProfile) ExclusiveQueues() bool                           { return true }
func (rabbitMQProfile) AdaptPublishing(*amqp.Publishing) error          { return nil }
func (rabbitMQProfile) AdaptQueueArgs(a amqp.Table) (amqp.Table, error) { return a, nil }
func (rabbitMQProfile) AdaptDelivery(*amqp.Delivery)                    {}

// qpidProfile is Qpid Broker-J (semantics 17): absolute expiration, a
// closed set of queue arguments. Back-pressure arrives as channel.flow,
// which the session handles for every profile.
type qpidProfile struct {
	caps Capabilities
	now  func() time.Time
}

func (qpidProfile) Name() string              { return ProfileQpid }
func (p qpidProfile) PublisherConfirms() bool { return p.caps.PublisherConfirms }
func (qpidProfile) ServerNamedQueues() bool   { return true }
func (qpidProfile) ExclusiveQueues() bool     { return true }

// AdaptPublishing turns the relative TTL of the STOMP expiration header
// (ms, validated as digits by mapping) into Broker-J's absolute epoch ms.
func (p qpidProfile) AdaptPublishing(msg *amqp.Publishing) error {
	if msg.Expiration == "" {
		return nil
	}
	ttl, err := strconv.ParseInt(strings.TrimSpace(msg.Expiration), 10, 64)
	if err != nil || ttl < 0 {
		return &codec.ProtocolError{Message: "Invalid header", Detail: "'expiration' must be a non-negative integer (milliseconds) of at most 19 digits, not '" + msg.Expiration + "'\n"}
	}
	now := p.now().UnixMilli()
	abs := now + ttl
	if ttl > math.MaxInt64-now {
		abs = math.MaxInt64
	}
	msg.Expiration = strconv.FormatInt(abs, 10)
	return nil
}

// QpidMaxDeliveryCount is the x-qpid-maximum-delivery-count of every
// queue stompgate declares on Broker-J. Broker-J requeues a message that
// is nacked or rejected with requeue=false unless the queue has a maximum
// delivery count (a reject loops, a nack leaves the message stuck and
// hidden); with 1, NACK requeue:false discards the message as RabbitMQ
// does without a dead-letter exchange. Neither a requeue=true nack nor a
// closed channel counts towards it (e2e/testdata/qpid/FINDINGS.md).
const QpidMaxDeliveryCount = 1

// AdaptQueueArgs keeps what Broker-J understands: x-max-priority becomes
// x-qpid-priorities, x-queue-type classic is dropped (every Broker-J queue
// is one), anything else is refused, naming the first argument in sorted
// order so the ERROR is deterministic. Broker-J closes the whole AMQP
// connection (542) on an argument it does not know, so nothing else may
// reach it. Every declared queue gets x-qpid-maximum-delivery-count
// (QpidMaxDeliveryCount).
func (qpidProfile) AdaptQueueArgs(args amqp.Table) (amqp.Table, error) {
	out := amqp.Table{"x-qpid-maximum-delivery-count": int64(QpidMaxDeliveryCount)}
	for _, name := range sortedKeys(args) {
		v := args[name]
		switch {
		case name == "x-max-priority":
			out["x-qpid-priorities"] = v
		case isClassicQueueType(name, v):
		default:
			return nil, notSupported(argumentLabel(name, v), ProfileQpid)
		}
	}
	return out, nil
}

// AdaptDelivery shows Broker-J's absolute expiration as the milliseconds
// left, at least 1 so a MESSAGE never claims it has already expired.
// "0" (a Qpid JMS producer's "never expires") is dropped; a value that is
// not a number is left alone.
func (p qpidProfile) AdaptDelivery(d *amqp.Delivery) {
	if d.Expiration == "" {
		return
	}
	abs, err := strconv.ParseInt(d.Expiration, 10, 64)
	if err != nil {
		return
	}
	if abs == 0 {
		d.Expiration = ""
		return
	}
	d.Expiration = strconv.FormatInt(max(abs-p.now().UnixMilli(), 1), 10)
}

// genericProfile is a minimal AMQP 0-9-1 broker such as garagemq
// (semantics 17): no server-named queues, no TTLs, no queue arguments;
// confirms and nack only as announced. Back-pressure comes from the
// confirm cap (flow.max_unconfirmed) and TCP.
type genericProfile struct{ caps Capabilities }

func (genericProfile) Name() string              { return ProfileGeneric }
func (p genericProfile) PublisherConfirms() bool { return p.caps.PublisherConfirms }
func (genericProfile) ServerNamedQueues() bool   { return false }

// ExclusiveQueues is false: garagemq (0.0~git20200204, Debian bookworm)
// deadlocks its whole virtual host when a connection closes, gracefully
// or not, while an exclusive queue still has a consumer (Queue.Delete →
// cancelConsumers → RemoveConsumer re-takes the queue lock; found with the
// e2e suite, reproduced with plain amqp091-go). Subscription and temp
// queues have random names and always a consumer, so auto-delete alone
// removes them as exclusive would; a client's exclusive:true is not
// enforced under this profile.
func (genericProfile) ExclusiveQueues() bool { return false }

// AdaptPublishing refuses a per-message TTL: garagemq, for one, stores
// the expiration property and never expires the message.
func (genericProfile) AdaptPublishing(msg *amqp.Publishing) error {
	if msg.Expiration != "" {
		return notSupported("expiration", ProfileGeneric)
	}
	return nil
}

// AdaptQueueArgs refuses every queue argument (such brokers ignore them
// silently) except x-queue-type classic, which asks for nothing.
func (genericProfile) AdaptQueueArgs(args amqp.Table) (amqp.Table, error) {
	for _, name := range sortedKeys(args) {
		if !isClassicQueueType(name, args[name]) {
			return nil, notSupported(argumentLabel(name, args[name]), ProfileGeneric)
		}
	}
	return nil, nil
}

func (genericProfile) AdaptDelivery(*amqp.Delivery) {}

func isClassicQueueType(name string, v any) bool {
	s, ok := v.(string)
	return name == "x-queue-type" && ok && s == "classic"
}

// argumentLabel names a refused argument in an ERROR body; x-queue-type
// shows its value, since only some values are refused.
func argumentLabel(name string, v any) string {
	if s, ok := v.(string); ok && name == "x-queue-type" {
		return name + ": " + s
	}
	return name
}

func sortedKeys(t amqp.Table) []string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
