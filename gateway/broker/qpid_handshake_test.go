package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/config"
)

// The handshake of a live Qpid Broker-J 10.1.0, captured byte for byte
// (e2e/testdata/qpid/README.md has how and the SHA-256 of each file), is
// replayed to stompgate's own dialer by a loopback fake that speaks just
// enough AMQP to open a connection. amqp091-go decodes the real bytes, so
// profile detection sees exactly what a Broker-J sends: flat longstr
// server properties and no capabilities table.

// readClientFrame reads one AMQP frame from the client and returns its type,
// channel and payload.
func readClientFrame(r io.Reader) (typ byte, channel uint16, payload []byte, err error) {
	var hdr [7]byte
	if _, err = io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, nil, err
	}
	size := binary.BigEndian.Uint32(hdr[3:])
	if size > 1<<20 {
		return 0, 0, nil, fmt.Errorf("frame of %d bytes", size)
	}
	payload = make([]byte, size+1)
	if _, err = io.ReadFull(r, payload); err != nil {
		return 0, 0, nil, err
	}
	if payload[size] != 0xCE {
		return 0, 0, nil, fmt.Errorf("frame end %#x", payload[size])
	}
	return hdr[0], binary.BigEndian.Uint16(hdr[1:3]), payload[:size], nil
}

// methodFrame is a method frame on channel 0.
func methodFrame(class, method uint16, args []byte) []byte {
	payload := binary.BigEndian.AppendUint16(nil, class)
	payload = binary.BigEndian.AppendUint16(payload, method)
	payload = append(payload, args...)
	f := []byte{1, 0, 0}
	f = binary.BigEndian.AppendUint32(f, uint32(len(payload)))
	f = append(f, payload...)
	return append(f, 0xCE)
}

// replayBrokerJ serves one connection: the protocol header, then the
// captured connection.start, the client's start-ok, the captured
// connection.tune, tune-ok and connection.open, an open-ok, and close-ok
// to the client's close. It reports the first deviation on errs.
func replayBrokerJ(t *testing.T, ln net.Listener, start, tune []byte, errs chan<- error) {
	conn, err := ln.Accept()
	if err != nil {
		errs <- err
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	header := make([]byte, 8)
	if _, err := io.ReadFull(conn, header); err != nil || !bytes.Equal(header, []byte("AMQP\x00\x00\x09\x01")) {
		errs <- fmt.Errorf("protocol header %q, %v", header, err)
		return
	}
	expect := func(class, method uint16) error {
		typ, ch, p, err := readClientFrame(conn)
		if err != nil {
			return err
		}
		if typ != 1 || ch != 0 || len(p) < 4 || binary.BigEndian.Uint16(p) != class || binary.BigEndian.Uint16(p[2:]) != method {
			return fmt.Errorf("got frame type %d channel %d payload % x, want method %d.%d", typ, ch, p[:min(len(p), 8)], class, method)
		}
		return nil
	}
	steps := []func() error{
		func() error { _, err := conn.Write(start); return err },
		func() error { return expect(10, 11) }, // start-ok
		func() error { _, err := conn.Write(tune); return err },
		func() error { return expect(10, 31) }, // tune-ok
		func() error { return expect(10, 40) }, // open
		func() error { _, err := conn.Write(methodFrame(10, 41, []byte{0})); return err },
		func() error { return expect(10, 50) }, // close
		func() error { _, err := conn.Write(methodFrame(10, 51, nil)); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			errs <- fmt.Errorf("step %d: %w", i, err)
			return
		}
	}
	errs <- nil
}

func TestQpidBrokerJCapturedHandshake(t *testing.T) {
	start, err := os.ReadFile(filepath.Join("testdata", "connection-start.bin"))
	if err != nil {
		t.Fatal(err)
	}
	tune, err := os.ReadFile(filepath.Join("testdata", "connection-tune.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if len(start) != 428 || len(tune) != 20 {
		t.Fatalf("captures are %d and %d bytes, want 428 and 20 (e2e/testdata/qpid/README.md)", len(start), len(tune))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errs := make(chan error, 1)
	go replayBrokerJ(t, ln, start, tune, errs)

	cfg := config.DefaultConfig().AMQP
	url := "amqp://" + ln.Addr().String() + "/"
	conn, err := dialAMQP(context.Background(), cfg, "test", nil, url, Login{Login: "guest", Passcode: "guest", VHost: "/"})
	if err != nil {
		t.Fatalf("dial the replayed Broker-J: %v", err)
	}
	props := conn.ServerProperties()
	// What amqp091-go made of the real bytes: flat strings only, the
	// table the profile tests use.
	if !reflect.DeepEqual(props, qpidBrokerJStart) {
		t.Errorf("decoded server properties %#v,\nwant %#v", props, qpidBrokerJStart)
	}

	p := SelectProfile("auto", props)
	if p.Name() != ProfileQpid {
		t.Errorf("auto profile %q, want qpid", p.Name())
	}
	if !p.PublisherConfirms() {
		t.Error("qpid.confirmed_publish_supported=\"true\" did not turn on publisher confirms")
	}
	if want := (Capabilities{PublisherConfirms: true, BasicNack: true}); profileCaps(t, p) != want {
		t.Errorf("capabilities %+v, want %+v", profileCaps(t, p), want)
	}
	real := conn.(amqpConn)
	if got := real.Config.ChannelMax; got != 256 {
		t.Errorf("negotiated channel-max %d, want Broker-J's 256", got)
	}
	if got := ChannelMax(conn); got != 256 {
		t.Errorf("ChannelMax(conn) = %d, want 256", got)
	}
	// Broker-J offers 262136; amqp091-go's own default frame size is lower
	// and the smaller one wins.
	if got := conn.FrameMax(); got != 131072 {
		t.Errorf("negotiated frame-max %d, want 131072 (amqp091-go's default, below Broker-J's 262136)", got)
	}
	if err := conn.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := <-errs; err != nil {
		t.Errorf("fake Broker-J: %v", err)
	}
}

// Broker-J refuses a login with connection.close 530 "Authentication
// failed" and an unknown vhost with 404 (FINDINGS "Login", "Vhost");
// RabbitMQ uses 403 and 530 "access to vhost … refused".
func TestClassifyDialErrorBrokerJ(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"Broker-J bad login", &amqp.Error{Code: 530, Reason: "Authentication failed"}, ErrAccessRefused},
		{"Broker-J unknown vhost", &amqp.Error{Code: 404, Reason: "Unknown virtual host: 'nosuch'"}, ErrVHostRefused},
		{"RabbitMQ bad login", amqp.ErrCredentials, ErrAccessRefused},
		{"RabbitMQ 403 login", &amqp.Error{Code: 403, Reason: "ACCESS_REFUSED - Login was refused"}, ErrAccessRefused},
		{"RabbitMQ vhost", &amqp.Error{Code: 530, Reason: "NOT_ALLOWED - vhost nosuch not found"}, ErrVHostRefused},
		{"amqp091-go vhost", amqp.ErrVhost, ErrVHostRefused},
		{"Broker-J dropped the socket", &amqp.Error{Code: 501, Reason: "EOF"}, ErrUnreachable},
		{"refused TCP", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), ErrUnreachable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ClassifyDialError(tc.err); !errors.Is(got, tc.want) {
				t.Errorf("ClassifyDialError(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// A Broker-J channel refuses, before sending anything, what Broker-J
// answers by closing the whole connection (FINDINGS "Queue declare
// arguments", "Exclusive queues", "Exchanges", "Message expiration").
func TestBrokerJChannelRefusals(t *testing.T) {
	ch := brokerJChannel{} // a nil *amqp.Channel: reaching it would panic
	if _, err := ch.QueueDeclare("q", true, false, true, false, nil); err == nil {
		t.Error("exclusive durable queue declared")
	} else {
		expectInvalidHeader(t, err, "'exclusive' queues must not be durable on broker profile qpid: queue 'q' (Qpid Broker-J would close the AMQP connection)\n")
	}
	if _, err := ch.QueueDeclare("q", false, true, false, false, amqp.Table{"x-message-ttl": int64(5)}); err == nil {
		t.Error("x-message-ttl sent to Broker-J")
	}
	for _, tc := range []struct {
		name, kind string
		args       amqp.Table
	}{
		{"amq.topic", "direct", nil},
		{"amq.headers", "headers", nil},
		{"amq.stompgate-new", "fanout", nil},
		{"mine", "fanout", amqp.Table{"alternate-exchange": "x"}},
	} {
		if err := ch.ExchangeDeclare(tc.name, tc.kind, true, false, false, false, tc.args); err == nil {
			t.Errorf("exchange.declare %s %s %v sent to Broker-J", tc.name, tc.kind, tc.args)
		}
	}
	for _, exp := range []string{"abc", "-1", "1.5", " 1"} {
		err := ch.PublishWithContext(context.Background(), "", "q", false, false, amqp.Publishing{Expiration: exp})
		if err == nil {
			t.Errorf("expiration %q sent to Broker-J", exp)
		}
	}
	if !isBrokerJ(qpidBrokerJStart) || isBrokerJ(rabbitMQ310Start) || isBrokerJ(garageMQStart) {
		t.Error("isBrokerJ misreads the captured server properties")
	}
}
