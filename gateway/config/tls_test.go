package config

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/stompgate/stompgate/gateway/internal/testpki"
)

func TestTLSConfigValidationNamesTheField(t *testing.T) {
	pki := testpki.New(t)
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"tls.listen without files", func(c *Config) { c.TLS.Listen = ":61614" }, []string{"tls.cert_file: must be set", "tls.key_file: must be set"}},
		{"wss without files", func(c *Config) { c.WebSocket.Listen, c.WebSocket.TLS = ":15674", true }, []string{"tls.cert_file: must be set when websocket.tls is true"}},
		{"verify_client without CA", func(c *Config) {
			c.TLS.Listen, c.TLS.CertFile, c.TLS.KeyFile, c.TLS.VerifyClient = ":61614", pki.ServerCert, pki.ServerKey, true
		}, []string{"tls.client_ca_file: must be set"}},
		{"key does not match", func(c *Config) {
			c.TLS.Listen, c.TLS.CertFile, c.TLS.KeyFile = ":61614", pki.ServerCert, pki.ClientKey
		}, []string{"tls.cert_file/tls.key_file:"}},
		{"missing CA file", func(c *Config) {
			c.TLS.Listen, c.TLS.CertFile, c.TLS.KeyFile, c.TLS.ClientCAFile = ":61614", pki.ServerCert, pki.ServerKey, "/nonexistent/ca.pem"
		}, []string{"tls.client_ca_file:"}},
		{"amqp.tls half a key pair", func(c *Config) { c.AMQP.URL, c.AMQP.TLS.CertFile = "amqps://b/", pki.ClientCert }, []string{"amqp.tls.cert_file and amqp.tls.key_file"}},
		{"amqp.tls without amqps", func(c *Config) { c.AMQP.TLS.CAFile = pki.CAFile }, []string{"amqp.tls: is set but amqp.url has no amqps:// URL"}},
		{"amqp.tls bad CA", func(c *Config) { c.AMQP.URL, c.AMQP.TLS.CAFile = "amqps://b/", pki.ServerKey }, []string{"amqp.tls.ca_file:"}},
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
	cfg.TLS.Listen, cfg.TLS.CertFile, cfg.TLS.KeyFile = ":61614", pki.ServerCert, pki.ServerKey
	cfg.TLS.ClientCAFile, cfg.TLS.VerifyClient = pki.CAFile, true
	cfg.AMQP.URL = "amqps://broker.example/"
	cfg.AMQP.TLS = AMQPTLSConfig{CAFile: pki.CAFile, ServerName: "broker", CertFile: pki.ClientCert, KeyFile: pki.ClientKey}
	if err := cfg.Validate(); err != nil {
		t.Errorf("a complete TLS config: %v", err)
	}
}

// amqps:// to a TLS endpoint that trusts our CA presents the client
// certificate and verifies the server name from amqp.tls.
func TestAMQPTLSConfigVerifiesTheBroker(t *testing.T) {
	pki := testpki.New(t)
	serverTLS, err := ServerTLS(TLSConfig{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CAFile, VerifyClient: true})
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
	tc, err := AMQPTLS(AMQPTLSConfig{CAFile: pki.CAFile, ServerName: "localhost", CertFile: pki.ClientCert, KeyFile: pki.ClientKey})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", ln.Addr().String(), WithServerName(tc, "ignored"))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	_ = c.Close()
	if got := <-peer; got != "alice" {
		t.Errorf("broker saw client certificate %q, want alice", got)
	}
	if tc, _ := AMQPTLS(AMQPTLSConfig{}); tc != nil {
		t.Errorf("empty amqp.tls gave a config %+v, want nil (amqp091-go defaults)", tc)
	}
}
