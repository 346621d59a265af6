package mapping

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/codec"
)

// TestPublishingFromSend has one row per line of the semantics 7.1 table
// (SEND → AMQP column) and per error of section 7.
func TestPublishingFromSend(t *testing.T) {
	long := strings.Repeat("v", 256)
	tests := []struct {
		name    string
		h       codec.Headers
		want    amqp.Publishing
		replyTo Destination
		err     wantError
	}{
		{name: "content-type", h: hdrs("content-type", "text/plain"), want: amqp.Publishing{ContentType: "text/plain"}},
		{name: "content-encoding", h: hdrs("content-encoding", "gzip"), want: amqp.Publishing{ContentEncoding: "gzip"}},
		{name: "correlation-id", h: hdrs("correlation-id", "c1"), want: amqp.Publishing{CorrelationId: "c1"}},
		{name: "type", h: hdrs("type", "order"), want: amqp.Publishing{Type: "order"}},
		{name: "app-id", h: hdrs("app-id", "shop"), want: amqp.Publishing{AppId: "shop"}},
		{name: "persistent true", h: hdrs("persistent", "true"), want: amqp.Publishing{DeliveryMode: 2}},
		{name: "persistent True", h: hdrs("persistent", "True"), want: amqp.Publishing{DeliveryMode: 2}},
		{name: "persistent false", h: hdrs("persistent", "false"), want: amqp.Publishing{}},
		{name: "persistent other", h: hdrs("persistent", "yes"), want: amqp.Publishing{}},
		{name: "priority", h: hdrs("priority", "9"), want: amqp.Publishing{Priority: 9}},
		{name: "priority 255", h: hdrs("priority", "255"), want: amqp.Publishing{Priority: 255}},
		{name: "priority 256", h: hdrs("priority", "256"), err: wantError{"Invalid header", "'priority' must be an integer from 0 to 255, not '256'\n"}},
		{name: "priority -1", h: hdrs("priority", "-1"), err: wantError{"Invalid header", "'priority' must be an integer from 0 to 255, not '-1'\n"}},
		{name: "priority high", h: hdrs("priority", "high"), err: wantError{"Invalid header", "'priority' must be an integer from 0 to 255, not 'high'\n"}},
		{name: "reply-to queue verbatim", h: hdrs("reply-to", "/queue/x"), want: amqp.Publishing{ReplyTo: "/queue/x"},
			replyTo: Destination{Kind: DestQueue, Raw: "/queue/x", Queue: "x"}},
		{name: "reply-to bare name", h: hdrs("reply-to", "rq"), want: amqp.Publishing{ReplyTo: "rq"},
			replyTo: Destination{Kind: DestQueue, Raw: "rq", Queue: "rq"}},
		{name: "reply-to temp queue", h: hdrs("reply-to", "/temp-queue/t"), want: amqp.Publishing{ReplyTo: "/temp-queue/t"},
			replyTo: Destination{Kind: DestTempQueue, Raw: "/temp-queue/t", Queue: "t"}},
		{name: "reply-to invalid", h: hdrs("reply-to", "/foo/bar"), err: wantError{"Invalid header", "'reply-to' must be a valid destination, not '/foo/bar'\n"}},
		{name: "reply-to blank", h: hdrs("reply-to", ""), err: wantError{"Invalid header", "'reply-to' must be a valid destination, not ''\n"}},
		{name: "expiration", h: hdrs("expiration", "60000"), want: amqp.Publishing{Expiration: "60000"}},
		{name: "expiration 0", h: hdrs("expiration", "0"), want: amqp.Publishing{Expiration: "0"}},
		{name: "expiration negative", h: hdrs("expiration", "-5"), err: wantError{"Invalid header", "'expiration' must be a non-negative integer (milliseconds), not '-5'\n"}},
		{name: "expiration empty", h: hdrs("expiration", ""), err: wantError{"Invalid header", "'expiration' must be a non-negative integer (milliseconds), not ''\n"}},
		{name: "amqp-message-id", h: hdrs("amqp-message-id", "m1"), want: amqp.Publishing{MessageId: "m1"}},
		{name: "timestamp", h: hdrs("timestamp", "1700000000"), want: amqp.Publishing{Timestamp: time.Unix(1700000000, 0)}},
		{name: "timestamp 0", h: hdrs("timestamp", "0"), want: amqp.Publishing{Timestamp: time.Unix(0, 0)}},
		{name: "timestamp ms string", h: hdrs("timestamp", "now"), err: wantError{"Invalid header", "'timestamp' must be a non-negative integer (seconds), not 'now'\n"}},
		{name: "timestamp negative", h: hdrs("timestamp", "-1"), err: wantError{"Invalid header", "'timestamp' must be a non-negative integer (seconds), not '-1'\n"}},
		{name: "user-id", h: hdrs("user-id", "guest"), want: amqp.Publishing{UserId: "guest"}},
		{name: "other header to table", h: hdrs("x-trace", "abc", "foo", ""), want: amqp.Publishing{Headers: amqp.Table{"x-trace": "abc", "foo": ""}}},
		{name: "declaration headers go to the table", h: hdrs("durable", "true", "x-queue-name", "q", "x-max-length", "5"),
			want: amqp.Publishing{Headers: amqp.Table{"durable": "true", "x-queue-name": "q", "x-max-length": "5"}}},
		{name: "not mapped", h: hdrs("destination", "/queue/a", "receipt", "r1", "transaction", "tx", "content-length", "5"), want: amqp.Publishing{}},
		{name: "repeats: first wins", h: hdrs("foo", "1", "foo", "2", "type", "a", "type", "b", "priority", "1", "priority", "x"),
			want: amqp.Publishing{Headers: amqp.Table{"foo": "1"}, Type: "a", Priority: 1}},
		{name: "message-id refused", h: hdrs("destination", "/queue/a", "message-id", "m"), err: wantError{"Invalid header", "'message-id' is not allowed on 'SEND'.\n"}},
		{name: "message-id refused before other errors", h: hdrs("priority", "x", "message-id", "m"), err: wantError{"Invalid header", "'message-id' is not allowed on 'SEND'.\n"}},
		{name: "shortstr property too long", h: hdrs("content-type", long), err: wantError{"Invalid header", "'content-type' must be at most 255 bytes (an AMQP short string), not '" + truncate(long) + "'\n"}},
		{name: "correlation-id too long", h: hdrs("correlation-id", long), err: wantError{"Invalid header", "'correlation-id' must be at most 255 bytes (an AMQP short string), not '" + truncate(long) + "'\n"}},
		{name: "table key too long", h: hdrs(long, "v"), err: wantError{"Invalid header", "header name '" + truncate(long) + "' is longer than 255 bytes, the limit of an AMQP table key\n"}},
		{name: "long value is fine", h: hdrs("k", long), want: amqp.Publishing{Headers: amqp.Table{"k": long}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, replyTo, err := PublishingFromSend(tt.h, SendOptions{FrameMax: 131072})
			call := fmt.Sprintf("PublishingFromSend(%.200v)", tt.h)
			checkError(t, call, err, tt.err)
			if err != nil {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s =\n %+v\nwant\n %+v", call, got, tt.want)
			}
			if replyTo != tt.replyTo {
				t.Errorf("%s reply-to = %+v; want %+v", call, replyTo, tt.replyTo)
			}
		})
	}
}

// TestPublishingFromSendFrameMax checks the size estimate against the
// content header frame amqp091-go writes: exactly frame_max fits, one byte
// more does not.
func TestPublishingFromSendFrameMax(t *testing.T) {
	h := hdrs("content-type", "text/plain", "persistent", "true", "priority", "3",
		"timestamp", "1", "reply-to", "/queue/r", "k", strings.Repeat("v", 1000))
	pub, _, err := PublishingFromSend(h, SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// 8 frame overhead + 14 fixed + content-type 1+10 + delivery-mode 1 +
	// priority 1 + reply-to 1+8 + timestamp 8 + table 4+(1+1+1+4+1000).
	const want = 8 + 14 + 11 + 1 + 1 + 9 + 8 + 4 + 1007
	if got := contentHeaderSize(&pub, false); got != want {
		t.Fatalf("contentHeaderSize = %d; want %d", got, want)
	}
	if _, _, err := PublishingFromSend(h, SendOptions{FrameMax: want}); err != nil {
		t.Errorf("PublishingFromSend(frame_max %d) = %v; want it to fit", want, err)
	}
	_, _, err = PublishingFromSend(h, SendOptions{FrameMax: want - 1})
	checkError(t, "PublishingFromSend(frame_max too small)", err, wantError{"Invalid header",
		fmt.Sprintf("the headers of this SEND need %d bytes as AMQP properties, more than one AMQP frame (%d bytes)\n", want, want-1)})
}

// TestPublishingFromSendTempReplyToEstimate: a /temp-queue/ reply-to is
// counted at the size of the queue name that replaces it.
func TestPublishingFromSendTempReplyToEstimate(t *testing.T) {
	pub, replyTo, err := PublishingFromSend(hdrs("reply-to", "/temp-queue/a"), SendOptions{})
	if err != nil || replyTo.Kind != DestTempQueue {
		t.Fatalf("PublishingFromSend = %+v, %v", replyTo, err)
	}
	if got, want := contentHeaderSize(&pub, true), 8+14+1+tempQueueNameEstimate; got != want {
		t.Errorf("contentHeaderSize(temp reply-to) = %d; want %d", got, want)
	}
}
