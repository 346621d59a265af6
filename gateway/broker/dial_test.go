package broker

import (
	"reflect"
	"testing"
)

// A resuming session moves on from the broker it lost: the URLs after it
// come first, the lost one last; an unknown or empty address changes
// nothing.
func TestTryOrderPutsTheLostBrokerLast(t *testing.T) {
	urls := []string{"amqp://a:5672/", "amqp://b:5672/", "amqp://c:5672/"}
	tests := []struct {
		avoid string
		want  []string
	}{
		{"", urls},
		{"amqp://x:5672/", urls},
		{"amqp://a:5672/", []string{"amqp://b:5672/", "amqp://c:5672/", "amqp://a:5672/"}},
		{"amqp://b:5672/", []string{"amqp://c:5672/", "amqp://a:5672/", "amqp://b:5672/"}},
		{"amqp://c:5672/", []string{"amqp://a:5672/", "amqp://b:5672/", "amqp://c:5672/"}},
	}
	for _, tt := range tests {
		if got := tryOrder(urls, tt.avoid); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("tryOrder(%q) = %q, want %q", tt.avoid, got, tt.want)
		}
	}
}
