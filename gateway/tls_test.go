package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/stompgate/stompgate/gateway/config"
	"github.com/stompgate/stompgate/gateway/internal/testpki"
	"github.com/stompgate/stompgate/gateway/internal/wstest"
)

// startTLSServer runs a Server with the TLS and WSS listeners whose broker
// is unreachable, so every CONNECT ends with ERROR "Bad CONNECT".
func startTLSServer(t *testing.T, pki *testpki.PKI, verifyClient bool) (*Server, *recordingObserver) {
	t.Helper()
	return startWSServer(t, func(c *config.Config) {
		c.TLS.Listen = "127.0.0.1:0"
		c.TLS.CertFile, c.TLS.KeyFile = pki.ServerCert, pki.ServerKey
		c.TLS.ClientCAFile = pki.CAFile
		c.TLS.VerifyClient = verifyClient
		c.WebSocket.TLS = true
	})
}

// connectOverTLS sends CONNECT on a TLS connection and returns everything
// the server sent until it closed.
func connectOverTLS(addr string, cfg *tls.Config) (string, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\n\n\x00")); err != nil {
		return "", err
	}
	got, err := io.ReadAll(c)
	return string(got), err
}

func TestServerTLSListener(t *testing.T) {
	pki := testpki.New(t)
	t.Run("client certificate required", func(t *testing.T) {
		srv, obs := startTLSServer(t, pki, true)
		got, err := connectOverTLS(srv.TLSAddr().String(), &tls.Config{RootCAs: pki.Pool, ServerName: "localhost", Certificates: []tls.Certificate{pki.Client}})
		if err != nil {
			t.Fatalf("TLS session: %v", err)
		}
		if !strings.HasPrefix(got, "ERROR\n") || !strings.Contains(got, "message:Bad CONNECT\n") {
			t.Errorf("got %q, want ERROR Bad CONNECT (the broker is down)", got)
		}
		waitFor(t, "a tls session", func() bool {
			opened, _ := obs.snapshot()
			return len(opened) == 1 && opened[0] == "tls"
		})
		if got, err := connectOverTLS(srv.TLSAddr().String(), &tls.Config{RootCAs: pki.Pool, ServerName: "localhost"}); err == nil && got != "" {
			t.Errorf("without a client certificate the server answered %q", got)
		}
	})
	t.Run("untrusted server certificate", func(t *testing.T) {
		srv, _ := startTLSServer(t, pki, false)
		_, err := connectOverTLS(srv.TLSAddr().String(), &tls.Config{ServerName: "localhost"})
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("dial with system roots: %v, want an unknown-authority error", err)
		}
	})
	t.Run("wss", func(t *testing.T) {
		srv, obs := startTLSServer(t, pki, true)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		httpClient := newTLSHTTPClient(&tls.Config{RootCAs: pki.Pool, Certificates: []tls.Certificate{pki.Client}})
		client, _, err := websocket.Dial(ctx, "wss://"+srv.WebSocketAddr().String()+"/ws",
			&websocket.DialOptions{HTTPClient: httpClient, Subprotocols: []string{"v12.stomp"}})
		if err != nil {
			t.Fatalf("wss Dial: %v", err)
		}
		defer client.CloseNow()
		wstest.Write(t, client, websocket.MessageText, "CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\n\n\x00")
		if _, got, err := wstest.Read(t, client); err != nil || !strings.Contains(got, "message:Bad CONNECT\n") {
			t.Errorf("got %q, %v; want ERROR Bad CONNECT", got, err)
		}
		waitFor(t, "a wss session", func() bool {
			opened, _ := obs.snapshot()
			return len(opened) == 1 && opened[0] == "wss"
		})
	})
}

func newTLSHTTPClient(tc *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
}
