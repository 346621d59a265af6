package config

// TLS for the STOMP over TLS listener ("stomp+ssl", transport "tls"), for
// WSS (transport "wss"), and for amqps:// broker connections, used by the
// gateway's Server, the broker dialer and the admin broker probe.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ServerTLS builds the server side of the TLS listener and WSS from
// cfg: the certificate chain, and with verify_client a required client
// certificate verified against client_ca_file. Errors name the config key.
func ServerTLS(cfg TLSConfig) (*tls.Config, error) {
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, errors.New("tls.cert_file and tls.key_file: both must be set to serve TLS")
	}
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file/tls.key_file: %w", err)
	}
	tc := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// WebSocket needs HTTP/1.1 (the Upgrade handshake); STOMP over
		// TLS ignores ALPN.
		NextProtos: []string{"http/1.1"},
	}
	if cfg.ClientCAFile != "" {
		pool, err := loadCertPool(cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.client_ca_file: %w", err)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	}
	if cfg.VerifyClient {
		if tc.ClientCAs == nil {
			return nil, errors.New("tls.verify_client: needs tls.client_ca_file")
		}
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// AMQPTLS builds the client side of amqps:// connections, or nil when
// cfg is empty (amqp091-go then uses the system roots and the URL's host).
func AMQPTLS(cfg AMQPTLSConfig) (*tls.Config, error) {
	if cfg == (AMQPTLSConfig{}) {
		return nil, nil
	}
	tc := &tls.Config{ServerName: cfg.ServerName, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pool, err := loadCertPool(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("amqp.tls.ca_file: %w", err)
		}
		tc.RootCAs = pool
	}
	switch {
	case cfg.CertFile != "" && cfg.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("amqp.tls.cert_file/amqp.tls.key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	case cfg.CertFile != "" || cfg.KeyFile != "":
		return nil, errors.New("amqp.tls.cert_file and amqp.tls.key_file: set both or neither")
	}
	return tc, nil
}

// loadCertPool reads a PEM bundle of CA certificates.
func loadCertPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return pool, nil
}

// WithServerName returns tc with ServerName set to host when tc has none,
// since a tls.Config used for a dial to host must verify that name.
func WithServerName(tc *tls.Config, host string) *tls.Config {
	if tc == nil || tc.ServerName != "" {
		return tc
	}
	tc = tc.Clone()
	tc.ServerName = host
	return tc
}
