package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// testPKI is a CA with a server certificate for 127.0.0.1/localhost and a
// client certificate, written as PEM files into a temp dir.
type testPKI struct {
	caFile, serverCert, serverKey, clientCert, clientKey string
	pool                                                 *x509.CertPool
	client                                               tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "stompgate test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, hosts bool) ([]byte, *ecdsa.PrivateKey) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if hosts {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	p := &testPKI{
		caFile:     filepath.Join(dir, "ca.pem"),
		serverCert: filepath.Join(dir, "server.pem"),
		serverKey:  filepath.Join(dir, "server-key.pem"),
		clientCert: filepath.Join(dir, "client.pem"),
		clientKey:  filepath.Join(dir, "client-key.pem"),
		pool:       x509.NewCertPool(),
	}
	p.pool.AddCert(ca)
	writePEM(t, p.caFile, "CERTIFICATE", caDER)
	der, key := issue(2, "localhost", x509.ExtKeyUsageServerAuth, true)
	writePEM(t, p.serverCert, "CERTIFICATE", der)
	writeKey(t, p.serverKey, key)
	der, key = issue(3, "alice", x509.ExtKeyUsageClientAuth, false)
	writePEM(t, p.clientCert, "CERTIFICATE", der)
	writeKey(t, p.clientKey, key)
	if p.client, err = tls.LoadX509KeyPair(p.clientCert, p.clientKey); err != nil {
		t.Fatal(err)
	}
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeKey(t *testing.T, path string, key *ecdsa.PrivateKey) {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, path, "EC PRIVATE KEY", der)
}

// startTLSServer runs a Server with the TLS and WSS listeners whose broker
// is unreachable, so every CONNECT ends with ERROR "Bad CONNECT".
func startTLSServer(t *testing.T, pki *testPKI, verifyClient bool) (*Server, *recordingObserver) {
	t.Helper()
	return startWSServer(t, func(c *Config) {
		c.TLS.Listen = "127.0.0.1:0"
		c.TLS.CertFile, c.TLS.KeyFile = pki.serverCert, pki.serverKey
		c.TLS.ClientCAFile = pki.caFile
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
	pki := newTestPKI(t)
	t.Run("client certificate required", func(t *testing.T) {
		srv, obs := startTLSServer(t, pki, true)
		got, err := connectOverTLS(srv.TLSAddr().String(), &tls.Config{RootCAs: pki.pool, ServerName: "localhost", Certificates: []tls.Certificate{pki.client}})
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
		if got, err := connectOverTLS(srv.TLSAddr().String(), &tls.Config{RootCAs: pki.pool, ServerName: "localhost"}); err == nil && got != "" {
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
		httpClient := newTLSHTTPClient(&tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}})
		client, _, err := websocket.Dial(ctx, "wss://"+srv.WebSocketAddr().String()+"/ws",
			&websocket.DialOptions{HTTPClient: httpClient, Subprotocols: []string{"v12.stomp"}})
		if err != nil {
			t.Fatalf("wss Dial: %v", err)
		}
		defer client.CloseNow()
		clientWrite(t, client, websocket.MessageText, "CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\n\n\x00")
		if _, got, err := clientRead(t, client); err != nil || !strings.Contains(got, "message:Bad CONNECT\n") {
			t.Errorf("got %q, %v; want ERROR Bad CONNECT", got, err)
		}
		waitFor(t, "a wss session", func() bool {
			opened, _ := obs.snapshot()
			return len(opened) == 1 && opened[0] == "wss"
		})
	})
}

func TestTLSConfigValidationNamesTheField(t *testing.T) {
	pki := newTestPKI(t)
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"tls.listen without files", func(c *Config) { c.TLS.Listen = ":61614" }, []string{"tls.cert_file: must be set", "tls.key_file: must be set"}},
		{"wss without files", func(c *Config) { c.WebSocket.Listen, c.WebSocket.TLS = ":15674", true }, []string{"tls.cert_file: must be set when websocket.tls is true"}},
		{"verify_client without CA", func(c *Config) {
			c.TLS.Listen, c.TLS.CertFile, c.TLS.KeyFile, c.TLS.VerifyClient = ":61614", pki.serverCert, pki.serverKey, true
		}, []string{"tls.client_ca_file: must be set"}},
		{"key does not match", func(c *Config) {
			c.TLS.Listen, c.TLS.CertFile, c.TLS.KeyFile = ":61614", pki.serverCert, pki.clientKey
		}, []string{"tls.cert_file/tls.key_file:"}},
		{"missing CA file", func(c *Config) {
			c.TLS.Listen, c.TLS.CertFile, c.TLS.KeyFile, c.TLS.ClientCAFile = ":61614", pki.serverCert, pki.serverKey, "/nonexistent/ca.pem"
		}, []string{"tls.client_ca_file:"}},
		{"amqp.tls half a key pair", func(c *Config) { c.AMQP.URL, c.AMQP.TLS.CertFile = "amqps://b/", pki.clientCert }, []string{"amqp.tls.cert_file and amqp.tls.key_file"}},
		{"amqp.tls without amqps", func(c *Config) { c.AMQP.TLS.CAFile = pki.caFile }, []string{"amqp.tls: is set but amqp.url has no amqps:// URL"}},
		{"amqp.tls bad CA", func(c *Config) { c.AMQP.URL, c.AMQP.TLS.CAFile = "amqps://b/", pki.serverKey }, []string{"amqp.tls.ca_file:"}},
		{"websocket.path", func(c *Config) { c.WebSocket.Listen, c.WebSocket.Path = ":15674", "ws" }, []string{"websocket.path: must start with"}},
		{"websocket.allowed_origins", func(c *Config) { c.WebSocket.AllowedOrigins = []string{"[bad"} }, []string{"websocket.allowed_origins: bad pattern"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("Validate accepted the config")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
	cfg := DefaultConfig()
	cfg.TLS.Listen, cfg.TLS.CertFile, cfg.TLS.KeyFile = ":61614", pki.serverCert, pki.serverKey
	cfg.TLS.ClientCAFile, cfg.TLS.VerifyClient = pki.caFile, true
	cfg.AMQP.URL = "amqps://broker.example/"
	cfg.AMQP.TLS = AMQPTLSConfig{CAFile: pki.caFile, ServerName: "broker", CertFile: pki.clientCert, KeyFile: pki.clientKey}
	if err := cfg.Validate(); err != nil {
		t.Errorf("a complete TLS config: %v", err)
	}
}

// amqps:// to a TLS endpoint that trusts our CA presents the client
// certificate and verifies the server name from amqp.tls.
func TestAMQPTLSConfigVerifiesTheBroker(t *testing.T) {
	pki := newTestPKI(t)
	serverTLS, err := serverTLSConfig(TLSConfig{CertFile: pki.serverCert, KeyFile: pki.serverKey, ClientCAFile: pki.caFile, VerifyClient: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			peer <- "handshake: " + err.Error()
			return
		}
		peer <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
	}()
	tc, err := amqpTLSConfig(AMQPTLSConfig{CAFile: pki.caFile, ServerName: "localhost", CertFile: pki.clientCert, KeyFile: pki.clientKey})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", ln.Addr().String(), withServerName(tc, "ignored"))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	_ = c.Close()
	if got := <-peer; got != "alice" {
		t.Errorf("broker saw client certificate %q, want alice", got)
	}
	if tc, _ := amqpTLSConfig(AMQPTLSConfig{}); tc != nil {
		t.Errorf("empty amqp.tls gave a config %+v, want nil (amqp091-go defaults)", tc)
	}
}

func newTLSHTTPClient(tc *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
}
