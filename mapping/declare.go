package mapping

import (
	"strconv"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/codec"
)

// QueueDeclare holds the parameters of one queue.declare (semantics 5.3).
type QueueDeclare struct {
	Name       string
	Durable    bool
	Exclusive  bool
	AutoDelete bool
	Args       amqp.Table // nil when the frame has no queue-argument headers
}

// Declaration headers (semantics 5.3; util build_params/2).
const (
	hdrDurable    = "durable"
	hdrPersistent = "persistent" // alias of durable on SUBSCRIBE/UNSUBSCRIBE only
	hdrAutoDelete = "auto-delete"
	hdrExclusive  = "exclusive"
	hdrQueueName  = "x-queue-name"
)

// ParseBoolHeader reads a STOMP boolean: "true"/"True" and "false"/"False"
// (util string_to_boolean/1; some Python clients send True/False). Any
// other value has ok = false and counts as absent.
func ParseBoolHeader(v string) (value, ok bool) {
	switch v {
	case "true", "True":
		return true, true
	case "false", "False":
		return false, true
	}
	return false, false
}

// boolHeader is ParseBoolHeader of the first header called name.
func boolHeader(h codec.Headers, name string) (value, ok bool) {
	v, present := h.Get(name)
	if !present {
		return false, false
	}
	return ParseBoolHeader(v)
}

// queueArgument is one header that becomes a queue.declare argument.
type queueArgument struct {
	name    string
	integer bool // AMQP long (int64); otherwise longstr
}

// queueArguments is the table of semantics 5.3 (util build_arguments/1).
var queueArguments = [...]queueArgument{
	{"x-dead-letter-exchange", false},
	{"x-dead-letter-routing-key", false},
	{"x-expires", true},
	{"x-max-length", true},
	{"x-max-length-bytes", true},
	{"x-max-priority", true},
	{"x-message-ttl", true},
	{"x-queue-type", false},
}

// QueueArguments builds the queue.declare arguments from the headers of
// semantics 5.3: values whitespace-stripped, longstr as string, long as
// int64. A non-integer where one is required is ERROR `Invalid header`.
// Other x-* headers are not arguments. The result is nil if there are none.
func QueueArguments(h codec.Headers) (amqp.Table, error) {
	var args amqp.Table
	for _, a := range queueArguments {
		raw, ok := h.Get(a.name)
		if !ok {
			continue
		}
		v := strings.TrimSpace(raw)
		if args == nil {
			args = amqp.Table{}
		}
		if !a.integer {
			args[a.name] = v
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, invalidHeader(a.name, raw, "an integer")
		}
		args[a.name] = n
	}
	return args, nil
}

// SendDeclare is the queue.declare a SEND to d triggers, or nil: only
// /queue/<q> and bare names declare (semantics 5.2). The queue is durable and
// neither exclusive nor auto-delete unless `durable:false` (then exclusive
// and auto-delete), then explicit `exclusive`/`auto-delete` headers apply.
// `persistent` is not an alias here: on SEND it only sets delivery-mode
// (semantics 16 item 11). The gateway declares each name once per session.
func SendDeclare(d Destination, h codec.Headers) (*QueueDeclare, error) {
	if d.Kind != DestQueue {
		return nil, nil
	}
	durable := true
	if v, ok := boolHeader(h, hdrDurable); ok {
		durable = v
	}
	return queueDeclare(d.Queue, durable, false, h)
}

// queueDeclare applies semantics 5.3's order (routing queue_declare_method/3):
// kind defaults; if not durable, exclusive and auto-delete; for a
// /topic or /exchange subscription queue, auto-delete; then the explicit
// `exclusive` and `auto-delete` headers.
func queueDeclare(name string, durable, subscriptionQueue bool, h codec.Headers) (*QueueDeclare, error) {
	args, err := QueueArguments(h)
	if err != nil {
		return nil, err
	}
	q := &QueueDeclare{Name: name, Durable: durable, Args: args}
	if !durable {
		q.Exclusive, q.AutoDelete = true, true
	}
	if subscriptionQueue {
		// Transient subscription queues are exclusive, durable ones stay
		// shareable (semantics 5.3, 16 item 7); both auto-delete.
		q.Exclusive, q.AutoDelete = !durable, true
	}
	if v, ok := boolHeader(h, hdrExclusive); ok {
		q.Exclusive = v
	}
	if v, ok := boolHeader(h, hdrAutoDelete); ok {
		q.AutoDelete = v
	}
	return q, nil
}

// ApplyDefaultQueueType sets x-queue-type to typ (stomp.default_queue_type)
// on q when the frame named no type and q can have one: quorum queues are
// durable and never exclusive or auto-delete, so other queues keep the
// broker's default. A nil q or an empty typ changes nothing.
func ApplyDefaultQueueType(q *QueueDeclare, typ string) {
	if q == nil || typ == "" || !q.Durable || q.Exclusive || q.AutoDelete {
		return
	}
	if _, set := q.Args["x-queue-type"]; set {
		return
	}
	if q.Args == nil {
		q.Args = amqp.Table{}
	}
	q.Args["x-queue-type"] = typ
}
