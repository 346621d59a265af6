package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/stompgate/stompgate/gateway/codec"
)

// limitedConn is a pool test connection with a channel-max, like Qpid
// Broker-J's 256; its channels report IsClosed.
type limitedConn struct {
	*poolConn
	max int
}

func (c limitedConn) ChannelMax() int { return c.max }

func (c limitedConn) Channel() (Channel, error) {
	if _, err := c.poolConn.Channel(); err != nil {
		return nil, err
	}
	return &countedChannel{}, nil
}

type countedChannel struct {
	Channel
	mu     sync.Mutex
	closed bool
}

func (ch *countedChannel) Close() error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.closed = true
	return nil
}

func (ch *countedChannel) IsClosed() bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.closed
}

// A pooled connection takes a session only while channelsPerNewSession of
// its channels are free; closed channels free room again.
func TestSharedConnectionsKeepChannelHeadroom(t *testing.T) {
	defer goleak.VerifyNone(t)
	b := newPoolBroker()
	dial := NewSharedDialer(func(ctx context.Context, login Login) (Conn, error) {
		c, err := b.dial(ctx, login)
		if err != nil {
			return nil, err
		}
		return limitedConn{c.(*poolConn), 20}, nil
	}, 64)
	login := Login{Login: "u", Passcode: "p", VHost: "/"}
	first := dialN(t, dial, 1, login)[0]
	if got := ChannelMax(first); got != 20 {
		t.Fatalf("ChannelMax of a shared connection = %d, want its pooled connection's 20", got)
	}
	var chans []Channel
	for range 13 {
		ch, err := first.Channel()
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	// 13 taken + 8 > 20: a new session goes to another connection.
	second := dialN(t, dial, 1, login)[0]
	if second.(*sharedConn).pc == first.(*sharedConn).pc {
		t.Fatal("a session joined a pooled connection with 7 of 20 channels free")
	}
	// Two closed: 11 + 8 ≤ 20, the next session may join the first again.
	_ = chans[0].Close()
	_ = chans[1].Close()
	third := dialN(t, dial, 1, login)[0]
	if third.(*sharedConn).pc != first.(*sharedConn).pc {
		t.Error("a session did not join a pooled connection with 9 of 20 channels free")
	}
	for _, c := range []Conn{first, second, third} {
		_ = c.Close()
	}
}

func TestChannelMaxError(t *testing.T) {
	err := channelMaxError(fmt.Errorf("open channel: %w", amqp.ErrChannelMax), 256)
	var pe *codec.ProtocolError
	if !errors.As(err, &pe) || pe.Message != "Too many subscriptions" ||
		pe.Detail != "The broker allows 256 channels per AMQP connection (channel-max) and this one has none left: each subscription and temp queue needs one, plus one for sending.\n" {
		t.Errorf("channelMaxError = %#v", err)
	}
	other := errors.New("connection closed")
	if got := channelMaxError(other, 256); got != other {
		t.Errorf("channelMaxError passed %v as %v", other, got)
	}
}
