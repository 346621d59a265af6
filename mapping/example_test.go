package mapping_test

import (
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/codec"
	"github.com/stompgate/stompgate/mapping"
)

// A durable topic subscription: the queue name is the one rabbitmq_stomp
// would have used, so subscriptions survive a switch to stompgate.
func ExamplePlanSubscription() {
	h := codec.Headers{
		{Name: "destination", Value: "/topic/orders.eu"},
		{Name: "id", Value: "billing-1"},
		{Name: "durable", Value: "true"},
		{Name: "ack", Value: "client-individual"},
	}
	d, err := mapping.ParseDestination(h.Value("destination"), codec.CmdSubscribe)
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := mapping.PlanSubscription(d, h, mapping.SubscribeOptions{TopicExchange: "amq.topic", DefaultPrefetch: 1000, MaxPrefetch: 10000})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("tag:", p.ConsumerTag, "ack:", p.Ack, "prefetch:", p.Prefetch)
	fmt.Printf("declare: %s durable=%v exclusive=%v auto-delete=%v\n", p.Declare.Name, p.Declare.Durable, p.Declare.Exclusive, p.Declare.AutoDelete)
	fmt.Printf("bind: %s -> %q\n", p.Bind.Exchange, p.Bind.RoutingKey)
	// Output:
	// tag: T_billing-1 ack: client-individual prefetch: 1000
	// declare: stomp-subscription-ZcZqX455OG-UXv3OfAFdNg durable=true exclusive=false auto-delete=true
	// bind: amq.topic -> "orders.eu"
}

// Destination errors carry the plugin's ERROR texts.
func ExampleParseDestination() {
	for _, dest := range []string{"/exchange/logs/app%2Fweb", "/queue/a/b", "/foo/bar"} {
		d, err := mapping.ParseDestination(dest, codec.CmdSend)
		var pe *codec.ProtocolError
		if errors.As(err, &pe) {
			fmt.Printf("%s: %s: %q\n", dest, pe.Message, pe.Detail)
			continue
		}
		x, rk := d.PublishTarget("amq.topic")
		fmt.Printf("%s: publish to %q with key %q\n", dest, x, rk)
	}
	// Output:
	// /exchange/logs/app%2Fweb: publish to "logs" with key "app/web"
	// /queue/a/b: Invalid destination: "'/a/b' is not a valid queue destination\n"
	// /foo/bar: Unknown destination: "'/foo/bar' is not a valid destination.\nValid destination types are: /temp-queue, /exchange, /topic, /queue, /amq/queue, /reply-queue/.\n"
}

// The MESSAGE headers for a delivery, in the order of semantics 8.1.
func ExampleAppendMessageHeaders() {
	d := &amqp.Delivery{
		Exchange: "", RoutingKey: "orders", DeliveryTag: 7, Redelivered: false,
		Headers:     amqp.Table{"retries": int32(2)},
		ContentType: "application/json", DeliveryMode: amqp.Persistent, ReplyTo: "amq.gen-x",
	}
	id := string(mapping.AppendMessageID(nil, "T_0", "session-abc", d.DeliveryTag))
	for _, h := range mapping.AppendMessageHeaders(nil, mapping.MessageInfo{
		SubscriptionID: "0", HasSubscription: true, MessageID: id, AckID: id,
	}, d) {
		fmt.Printf("%s:%s\n", h.Name, h.Value)
	}
	// Output:
	// subscription:0
	// destination:/queue/orders
	// message-id:T_0@@session-abc@@7
	// redelivered:false
	// ack:T_0@@session-abc@@7
	// retries:2
	// reply-to:/reply-queue/amq.gen-x
	// persistent:true
	// content-type:application/json
}
