package mapping

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stompgate/stompgate/gateway/codec"
)

const unknownTail = "Valid destination types are: /temp-queue, /exchange, /topic, /queue, /amq/queue, /reply-queue/.\n"

// TestParseDestination has one row per line of the semantics 5.1 tables
// and per case of section 18.
func TestParseDestination(t *testing.T) {
	long := strings.Repeat("q", 256)
	max := strings.Repeat("q", 255)
	tests := []struct {
		dest    string
		command string
		want    Destination
		err     wantError
	}{
		// Grammar table.
		{dest: "name", want: Destination{Kind: DestQueue, Queue: "name"}},
		{dest: "a%2Fb", want: Destination{Kind: DestQueue, Queue: "a/b"}},
		{dest: "/queue/q", want: Destination{Kind: DestQueue, Queue: "q"}},
		{dest: "/queue/a%2Fb", want: Destination{Kind: DestQueue, Queue: "a/b"}},
		{dest: "/queue/a%2fb%25", want: Destination{Kind: DestQueue, Queue: "a%2fb%25"}}, // only %2F unescapes
		{dest: "/amq/queue/q", want: Destination{Kind: DestAmqQueue, Queue: "q"}},
		{dest: "/topic/rk", want: Destination{Kind: DestTopic, RoutingKey: "rk"}},
		{dest: "/topic/a.*.%2F", want: Destination{Kind: DestTopic, RoutingKey: "a.*./"}},
		{dest: "/exchange/x", want: Destination{Kind: DestExchange, Exchange: "x"}},
		{dest: "/exchange/x/rk", want: Destination{Kind: DestExchange, Exchange: "x", RoutingKey: "rk"}},
		{dest: "/exchange/x/", want: Destination{Kind: DestExchange, Exchange: "x"}},
		{dest: "/exchange/x%2Fy/a%2Fb", want: Destination{Kind: DestExchange, Exchange: "x/y", RoutingKey: "a/b"}},
		{dest: "/reply-queue/amq.gen-abc", want: Destination{Kind: DestReplyQueue, Queue: "amq.gen-abc"}},
		{dest: "/reply-queue/a/b%2F", want: Destination{Kind: DestReplyQueue, Queue: "a/b%2F"}}, // verbatim
		{dest: "/temp-queue/t1", command: ReplyTo, want: Destination{Kind: DestTempQueue, Queue: "t1"}},
		{dest: "/queue/" + max, want: Destination{Kind: DestQueue, Queue: max}},

		// Error table.
		{dest: "", err: wantError{"Invalid destination", "Destination cannot be blank"}},
		{dest: "/queue/a/b", err: wantError{"Invalid destination", "'/a/b' is not a valid queue destination\n"}},
		{dest: "/topic/", err: wantError{"Invalid destination", "'/' is not a valid topic destination\n"}},
		{dest: "/exchange//k", err: wantError{"Invalid destination", "'//k' is not a valid exchange destination\n"}},
		{dest: "/temp-queue/t1", command: codec.CmdSend, err: wantError{"Invalid destination", "'/temp-queue/t1' is not a valid destination for 'SEND'\n"}},
		{dest: "/temp-queue/t1", command: codec.CmdSubscribe, err: wantError{"Invalid destination", "'/temp-queue/t1' is not a valid destination for 'SUBSCRIBE'\n"}},
		{dest: "/queue/" + long, err: wantError{"Invalid destination", "'/queue/" + long + "' is too long: AMQP names are limited to 255 bytes\n"}},
		{dest: long, err: wantError{"Invalid destination", "'" + long + "' is too long: AMQP names are limited to 255 bytes\n"}},
		{dest: "/exchange/" + long + "/k", err: wantError{"Invalid destination", "'/exchange/" + long + "/k' is too long: AMQP names are limited to 255 bytes\n"}},
		{dest: "/exchange/x/" + long, err: wantError{"Invalid destination", "'/exchange/x/" + long + "' is too long: AMQP names are limited to 255 bytes\n"}},
		{dest: "/topic/" + long, err: wantError{"Invalid destination", "'/topic/" + long + "' is too long: AMQP names are limited to 255 bytes\n"}},
		{dest: "/reply-queue/" + long, err: wantError{"Invalid destination", "'/reply-queue/" + long + "' is too long: AMQP names are limited to 255 bytes\n"}},
		{dest: "/foo/bar", err: wantError{"Unknown destination", "'/foo/bar' is not a valid destination.\n" + unknownTail}},
		{dest: "a/b", err: wantError{"Unknown destination", "'a/b' is not a valid destination.\n" + unknownTail}},

		// Section 18: known prefix, wrong shape → Invalid, with what follows the prefix.
		{dest: "/queue", err: wantError{"Invalid destination", "'' is not a valid queue destination\n"}},
		{dest: "/queue/", err: wantError{"Invalid destination", "'/' is not a valid queue destination\n"}},
		{dest: "/queue/a/", err: wantError{"Invalid destination", "'/a/' is not a valid queue destination\n"}},
		{dest: "/topic", err: wantError{"Invalid destination", "'' is not a valid topic destination\n"}},
		{dest: "/topic/a/b", err: wantError{"Invalid destination", "'/a/b' is not a valid topic destination\n"}},
		{dest: "/exchange", err: wantError{"Invalid destination", "'' is not a valid exchange destination\n"}},
		{dest: "/exchange/", err: wantError{"Invalid destination", "'/' is not a valid exchange destination\n"}},
		{dest: "/exchange/x/a/b", err: wantError{"Invalid destination", "'/x/a/b' is not a valid exchange destination\n"}},
		{dest: "/amq/queue", err: wantError{"Invalid destination", "'' is not a valid amqqueue destination\n"}},
		{dest: "/amq/queue/a/b", err: wantError{"Invalid destination", "'/a/b' is not a valid amqqueue destination\n"}},
		{dest: "/reply-queue/", err: wantError{"Invalid destination", "'/' is not a valid reply_queue destination\n"}},
		{dest: "/temp-queue", command: ReplyTo, err: wantError{"Invalid destination", "'' is not a valid temp_queue destination\n"}},
		{dest: "/temp-queue/a/b", command: codec.CmdSend, err: wantError{"Invalid destination", "'/a/b' is not a valid temp_queue destination\n"}},
		// Unrecognized prefixes, including near misses.
		{dest: "/reply-queue", err: wantError{"Unknown destination", "'/reply-queue' is not a valid destination.\n" + unknownTail}},
		{dest: "/queues/a", err: wantError{"Unknown destination", "'/queues/a' is not a valid destination.\n" + unknownTail}},
		{dest: "/amq/topic/a", err: wantError{"Unknown destination", "'/amq/topic/a' is not a valid destination.\n" + unknownTail}},
		{dest: "/", err: wantError{"Unknown destination", "'/' is not a valid destination.\n" + unknownTail}},
		{dest: "//queue/a", err: wantError{"Unknown destination", "'//queue/a' is not a valid destination.\n" + unknownTail}},
		{dest: "/Queue/a", err: wantError{"Unknown destination", "'/Queue/a' is not a valid destination.\n" + unknownTail}},
	}
	for _, tt := range tests {
		command := tt.command
		if command == "" {
			command = codec.CmdSend
		}
		got, err := ParseDestination(tt.dest, command)
		call := fmt.Sprintf("ParseDestination(%.60q, %q)", tt.dest, command)
		checkError(t, call, err, tt.err)
		if tt.err != (wantError{}) {
			continue
		}
		tt.want.Raw = tt.dest
		if got != tt.want {
			t.Errorf("%s = %+v; want %+v", call, got, tt.want)
		}
	}
}

func TestMissingDestination(t *testing.T) {
	checkError(t, "MissingDestination(SEND)", MissingDestination(codec.CmdSend),
		wantError{"Missing destination", "\"SEND\" must include a 'destination' header\n"})
	checkError(t, "MissingDestination(SUBSCRIBE)", MissingDestination(codec.CmdSubscribe),
		wantError{"Missing destination", "\"SUBSCRIBE\" must include a 'destination' header\n"})
}

// TestTempQueueTagLimit: a temp-queue id is bounded by its consumer tag.
func TestTempQueueTagLimit(t *testing.T) {
	id := strings.Repeat("t", maxShortstr-len("T_/temp-queue/"))
	d, err := ParseDestination("/temp-queue/"+id, ReplyTo)
	if err != nil {
		t.Fatalf("ParseDestination(longest temp queue) = %v", err)
	}
	if tag := TempQueueConsumerTag(d); tag != "T_/temp-queue/"+id {
		t.Errorf("TempQueueConsumerTag = %q", tag)
	}
	_, err = ParseDestination("/temp-queue/"+id+"t", ReplyTo)
	checkError(t, "ParseDestination(temp queue one byte longer)", err,
		wantError{"Invalid destination", "'/temp-queue/" + id + "t' is too long: AMQP names are limited to 255 bytes\n"})
}

// TestPublishTarget has one row per line of the semantics 5.2 table.
func TestPublishTarget(t *testing.T) {
	tests := []struct {
		dest             string
		exchange, rk     string
		topicExchangeArg string
	}{
		{"/queue/q", "", "q", "amq.topic"},
		{"q", "", "q", "amq.topic"},
		{"/amq/queue/q", "", "q", "amq.topic"},
		{"/topic/rk", "amq.topic", "rk", "amq.topic"},
		{"/topic/rk", "my.topic", "rk", "my.topic"},
		{"/exchange/x", "x", "", "amq.topic"},
		{"/exchange/x/rk", "x", "rk", "amq.topic"},
		{"/reply-queue/q", "", "q", "amq.topic"},
	}
	for _, tt := range tests {
		d, err := ParseDestination(tt.dest, codec.CmdSend)
		if err != nil {
			t.Fatalf("ParseDestination(%q) = %v", tt.dest, err)
		}
		x, rk := d.PublishTarget(tt.topicExchangeArg)
		if x != tt.exchange || rk != tt.rk {
			t.Errorf("%q.PublishTarget(%q) = %q, %q; want %q, %q", tt.dest, tt.topicExchangeArg, x, rk, tt.exchange, tt.rk)
		}
	}
}

// TestFormatDestination has one row per line of the semantics 8.1 item 2
// table, plus escaping.
func TestFormatDestination(t *testing.T) {
	tests := []struct {
		exchange, rk, want string
	}{
		{"", "rk", "/queue/rk"},
		{"amq.topic", "rk", "/topic/rk"},
		{"x", "", "/exchange/x"},
		{"x", "rk", "/exchange/x/rk"},
		{"", "", "/queue/"},
		{"amq.topic", "", "/topic/"},
		{"my.topic", "a.b", "/exchange/my.topic/a.b"}, // amq.topic literally
		{"", "a/b%c", "/queue/a%2Fb%25c"},
		{"x/y", "k/", "/exchange/x%2Fy/k%2F"},
		{"", "tab\there\x1f\x7f", "/queue/tab%09here%1F\x7f"},
		{"", "caf\u00e9", "/queue/caf%C3%A9"},
		{"", "%2F", "/queue/%252F"},
	}
	for _, tt := range tests {
		if got := FormatDestination(tt.exchange, tt.rk); got != tt.want {
			t.Errorf("FormatDestination(%q, %q) = %q; want %q", tt.exchange, tt.rk, got, tt.want)
		}
	}
}

// TestReplyToForMessage follows semantics 8.3.
func TestReplyToForMessage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"rq", "/reply-queue/rq"},
		{"amq.gen-xyz", "/reply-queue/amq.gen-xyz"},
		{"/queue/x", "/queue/x"},
		{"/topic/x", "/topic/x"},
		{"/exchange/x/y", "/exchange/x/y"},
		{"/amq/queue/x", "/amq/queue/x"},
		{"/reply-queue/x", "/reply-queue/x"},
		{"/queuex", "/queuex"}, // plain prefix match, as the plugin
		{"/reply-queue", "/reply-queue//reply-queue"},
		{"/temp-queue/x", "/reply-queue//temp-queue/x"},
	}
	for _, tt := range tests {
		if got := ReplyToForMessage(tt.in); got != tt.want {
			t.Errorf("ReplyToForMessage(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
