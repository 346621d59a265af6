package mapping

import (
	"fmt"
	"reflect"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/codec"
)

func TestParseBoolHeader(t *testing.T) {
	tests := []struct {
		in        string
		value, ok bool
	}{
		{"true", true, true},
		{"True", true, true},
		{"false", false, true},
		{"False", false, true},
		{"TRUE", false, false},
		{"yes", false, false},
		{"1", false, false},
		{"", false, false},
		{" true", false, false},
	}
	for _, tt := range tests {
		if v, ok := ParseBoolHeader(tt.in); v != tt.value || ok != tt.ok {
			t.Errorf("ParseBoolHeader(%q) = %v, %v; want %v, %v", tt.in, v, ok, tt.value, tt.ok)
		}
	}
}

// TestQueueArguments has one row per header of the semantics 5.3 argument
// table, plus the error and exclusion cases.
func TestQueueArguments(t *testing.T) {
	tests := []struct {
		h    codec.Headers
		want amqp.Table
		err  wantError
	}{
		{h: hdrs("x-dead-letter-exchange", " dlx "), want: amqp.Table{"x-dead-letter-exchange": "dlx"}},
		{h: hdrs("x-dead-letter-routing-key", "dead"), want: amqp.Table{"x-dead-letter-routing-key": "dead"}},
		{h: hdrs("x-queue-type", "quorum\t"), want: amqp.Table{"x-queue-type": "quorum"}},
		{h: hdrs("x-expires", "60000"), want: amqp.Table{"x-expires": int64(60000)}},
		{h: hdrs("x-max-length", " 10 "), want: amqp.Table{"x-max-length": int64(10)}},
		{h: hdrs("x-max-length-bytes", "1048576"), want: amqp.Table{"x-max-length-bytes": int64(1048576)}},
		{h: hdrs("x-max-priority", "9"), want: amqp.Table{"x-max-priority": int64(9)}},
		{h: hdrs("x-message-ttl", "5000"), want: amqp.Table{"x-message-ttl": int64(5000)}},
		{h: hdrs("x-message-ttl", "1", "x-message-ttl", "2"), want: amqp.Table{"x-message-ttl": int64(1)}}, // first wins
		{h: hdrs("x-single-active-consumer", "true", "x-queue-name", "n", "durable", "true"), want: nil},
		{h: nil, want: nil},
		{h: hdrs("x-max-length", "ten"), err: wantError{"Invalid header", "'x-max-length' must be an integer, not 'ten'\n"}},
		{h: hdrs("x-message-ttl", "1.5"), err: wantError{"Invalid header", "'x-message-ttl' must be an integer, not '1.5'\n"}},
		{h: hdrs("x-expires", ""), err: wantError{"Invalid header", "'x-expires' must be an integer, not ''\n"}},
		{h: hdrs("x-max-priority", "99999999999999999999"), err: wantError{"Invalid header", "'x-max-priority' must be an integer, not '99999999999999999999'\n"}},
	}
	for _, tt := range tests {
		got, err := QueueArguments(tt.h)
		call := fmt.Sprintf("QueueArguments(%v)", tt.h)
		checkError(t, call, err, tt.err)
		if err == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s = %#v; want %#v", call, got, tt.want)
		}
	}
}

// TestSendDeclare covers the /queue rows of the semantics 5.3 table for SEND
// and the destinations that declare nothing (5.2).
func TestSendDeclare(t *testing.T) {
	tests := []struct {
		dest string
		h    codec.Headers
		want *QueueDeclare
		err  wantError
	}{
		{dest: "/queue/q", want: &QueueDeclare{Name: "q", Durable: true}},
		{dest: "q", want: &QueueDeclare{Name: "q", Durable: true}},
		{dest: "/queue/q", h: hdrs("durable", "false"), want: &QueueDeclare{Name: "q", Exclusive: true, AutoDelete: true}},
		{dest: "/queue/q", h: hdrs("durable", "False", "auto-delete", "false"), want: &QueueDeclare{Name: "q", Exclusive: true}},
		{dest: "/queue/q", h: hdrs("durable", "false", "exclusive", "false"), want: &QueueDeclare{Name: "q", AutoDelete: true}},
		{dest: "/queue/q", h: hdrs("auto-delete", "true"), want: &QueueDeclare{Name: "q", Durable: true, AutoDelete: true}},
		{dest: "/queue/q", h: hdrs("exclusive", "True"), want: &QueueDeclare{Name: "q", Durable: true, Exclusive: true}},
		{dest: "/queue/q", h: hdrs("durable", "maybe"), want: &QueueDeclare{Name: "q", Durable: true}}, // counts as absent
		// Semantics 16 item 11: persistent on SEND only sets delivery-mode.
		{dest: "/queue/q", h: hdrs("persistent", "false"), want: &QueueDeclare{Name: "q", Durable: true}},
		{dest: "/queue/q", h: hdrs("x-max-length", "5"), want: &QueueDeclare{Name: "q", Durable: true, Args: amqp.Table{"x-max-length": int64(5)}}},
		{dest: "/queue/q", h: hdrs("x-max-length", "x"), err: wantError{"Invalid header", "'x-max-length' must be an integer, not 'x'\n"}},
		{dest: "/amq/queue/q", h: hdrs("x-max-length", "x"), want: nil},
		{dest: "/topic/t", want: nil},
		{dest: "/exchange/x/k", want: nil},
		{dest: "/reply-queue/r", want: nil},
	}
	for _, tt := range tests {
		d, err := ParseDestination(tt.dest, codec.CmdSend)
		if err != nil {
			t.Fatalf("ParseDestination(%q) = %v", tt.dest, err)
		}
		got, err := SendDeclare(d, tt.h)
		call := fmt.Sprintf("SendDeclare(%q, %v)", tt.dest, tt.h)
		checkError(t, call, err, tt.err)
		if err == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s = %+v; want %+v", call, got, tt.want)
		}
	}
}

func TestApplyDefaultQueueType(t *testing.T) {
	tests := []struct {
		name string
		q    *QueueDeclare
		typ  string
		want amqp.Table
	}{
		{"durable shared queue gets the default", &QueueDeclare{Name: "q", Durable: true}, "quorum", amqp.Table{"x-queue-type": "quorum"}},
		{"a header's type wins", &QueueDeclare{Name: "q", Durable: true, Args: amqp.Table{"x-queue-type": "classic"}}, "quorum", amqp.Table{"x-queue-type": "classic"}},
		{"other arguments are kept", &QueueDeclare{Name: "q", Durable: true, Args: amqp.Table{"x-max-length": int64(7)}}, "quorum", amqp.Table{"x-max-length": int64(7), "x-queue-type": "quorum"}},
		{"no default configured", &QueueDeclare{Name: "q", Durable: true}, "", nil},
		{"durable:false queues stay classic", &QueueDeclare{Name: "q", Exclusive: true, AutoDelete: true}, "quorum", nil},
		{"exclusive queues stay classic", &QueueDeclare{Name: "q", Durable: true, Exclusive: true}, "quorum", nil},
		{"auto-delete queues stay classic", &QueueDeclare{Name: "q", Durable: true, AutoDelete: true}, "quorum", nil},
	}
	for _, tt := range tests {
		ApplyDefaultQueueType(tt.q, tt.typ)
		if !reflect.DeepEqual(tt.q.Args, tt.want) {
			t.Errorf("%s: ApplyDefaultQueueType(%q) args = %v, want %v", tt.name, tt.typ, tt.q.Args, tt.want)
		}
	}
	ApplyDefaultQueueType(nil, "quorum") // no panic
}
