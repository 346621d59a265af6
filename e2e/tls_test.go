//go:build e2e

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-stomp/stomp/v3"

	"github.com/stompgate/stompgate/gateway"
	"github.com/stompgate/stompgate/gateway/config"
)

// STOMP over TLS ("stomp+ssl") and WSS with certificates generated here:
// a CA, a server certificate for 127.0.0.1 and a client certificate, with
// client verification on.

type e2ePKI struct {
	caFile, serverCert, serverKey string
	pool                          *x509.CertPool
	client                        tls.Certificate
}

func newE2EPKI(t *testing.T) *e2ePKI {
	t.Helper()
	dir := t.TempDir()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	caKey := key()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stompgate e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage) ([]byte, []byte) {
		k := key()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der, keyDER
	}
	p := &e2ePKI{caFile: write("ca.pem", "CERTIFICATE", caDER), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	der, keyDER := issue(2, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	p.serverCert, p.serverKey = write("server.pem", "CERTIFICATE", der), write("server-key.pem", "EC PRIVATE KEY", keyDER)
	der, keyDER = issue(3, "e2e-client", x509.ExtKeyUsageClientAuth)
	p.client, err = tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func startTLSGateway(t *testing.T, pki *e2ePKI) *gateway.Server {
	t.Helper()
	return startDeployedGateway(t, func(c *config.Config) {
		c.TLS.Listen = "127.0.0.1:0"
		c.TLS.CertFile, c.TLS.KeyFile = pki.serverCert, pki.serverKey
		c.TLS.ClientCAFile, c.TLS.VerifyClient = pki.caFile, true
		c.WebSocket.Listen, c.WebSocket.TLS = "127.0.0.1:0", true
	})
}

// go-stomp over a TLS connection with a client certificate: send with a
// receipt, subscribe, receive.
func TestTLSSession(t *testing.T) {
	pki := newE2EPKI(t)
	srv := startTLSGateway(t, pki)
	queue := newNames(t).queue("tls")

	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", srv.TLSAddr().String(),
		&tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	conn, err := stomp.Connect(tc, stomp.ConnOpt.Login("guest", "guest"), stomp.ConnOpt.Host("/"), stomp.ConnOpt.HeartBeat(0, 0))
	if err != nil {
		_ = tc.Close()
		t.Fatalf("STOMP over TLS: %v", err)
	}
	defer func() { _ = conn.Disconnect() }()
	sub, err := conn.Subscribe("/queue/"+queue, stomp.AckAuto)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if err := conn.Send("/queue/"+queue, "text/plain", []byte("over tls"), stomp.SendOpt.Receipt); err != nil {
		t.Fatalf("Send with receipt: %v", err)
	}
	if msg := receiveWithin(t, sub, 5*time.Second); string(msg.Body) != "over tls" {
		t.Errorf("body %q, want \"over tls\"", msg.Body)
	}
	if state := tc.ConnectionState(); !state.HandshakeComplete || len(state.PeerCertificates) == 0 {
		t.Errorf("TLS state %+v: handshake incomplete", state)
	}
}

// Without a client certificate the handshake fails: verify_client.
func TestTLSRequiresClientCertificate(t *testing.T) {
	pki := newE2EPKI(t)
	srv := startTLSGateway(t, pki)
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", srv.TLSAddr().String(), &tls.Config{RootCAs: pki.pool})
	if err == nil {
		defer tc.Close()
		// TLS 1.3: the server's verdict arrives with the first read.
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = tc.Write([]byte("CONNECT\nlogin:guest\npasscode:guest\n\n\x00"))
		_, err = tc.Read(make([]byte, 1))
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("TLS without a client certificate: %v, want a certificate error", err)
	}
}

func TestTLSWebSocketSecure(t *testing.T) {
	pki := newE2EPKI(t)
	srv := startTLSGateway(t, pki)
	queue := newNames(t).queue("wss")
	httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}}}}
	c := dialWS(t, "wss://"+srv.WebSocketAddr().String()+"/ws", &websocket.DialOptions{HTTPClient: httpClient, Subprotocols: []string{"v11.stomp"}})
	if got := c.ws.Subprotocol(); got != "v11.stomp" {
		t.Errorf("subprotocol %q, want v11.stomp", got)
	}
	c.write("CONNECT\naccept-version:1.1\nlogin:guest\npasscode:guest\nhost:/\n\n\x00")
	if f := c.frame("CONNECTED"); !strings.Contains(f, "version:1.1\n") {
		t.Errorf("CONNECTED %q lacks version:1.1", f)
	}
	c.write("SUBSCRIBE\nid:0\ndestination:/queue/" + queue + "\nreceipt:s\n\n\x00")
	c.frame("RECEIPT")
	c.write("SEND\ndestination:/queue/" + queue + "\n\nover wss\x00")
	if f := c.frame("MESSAGE"); !strings.Contains(f, "\n\nover wss\x00") {
		t.Errorf("MESSAGE %q, want body \"over wss\"", f)
	}
	c.write("DISCONNECT\nreceipt:bye\n\n\x00")
	c.frame("RECEIPT")
}
