package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"github.com/stompgate/stompgate/gateway/admin"
	"github.com/stompgate/stompgate/gateway/auth"
	"github.com/stompgate/stompgate/gateway/broker"
	"github.com/stompgate/stompgate/gateway/config"
	"github.com/stompgate/stompgate/gateway/ws"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("stompgate: server closed")

// Server accepts STOMP connections and runs one session per connection.
//
// Listeners: STOMP over TCP (listen, always), STOMP over TLS (tls.listen),
// STOMP over WebSocket (websocket.listen, WSS with websocket.tls) and the
// admin HTTP listener (admin.listen). Serve runs one accept loop per
// listener, each in its own goroutine, and returns when all have ended.
// Each session runs its own goroutines (see the package doc) and is
// tracked in sessions so that Shutdown can drain them; the session code is
// the same whatever the transport.
type Server struct {
	cfg       config.Config
	log       logrus.FieldLogger
	dial      broker.Dialer
	obs       Observer
	tlsConfig *tls.Config    // server side of tls.listen and WSS; nil if unused
	metrics   *admin.Metrics // nil without admin.listen
	registry  *prometheus.Registry
	probe     *admin.BrokerProbe // for /readyz
	authz     *authority         // token verifier and acl.rules (token.go); Reload swaps the rules

	mu          sync.Mutex // guards the listeners, the HTTP servers, sessions, serving, closing
	listener    net.Listener
	tlsListener net.Listener // nil without tls.listen
	wsListener  net.Listener // nil without websocket.listen
	wsServer    *http.Server
	adminLn     net.Listener // nil without admin.listen
	adminServer *http.Server
	sessions    map[*session]struct{}
	perClient   map[string]int // sessions per client IP (limits.max_connections_per_client)
	serving     bool           // Serve's accept loops are running
	closing     bool

	wg sync.WaitGroup // one per live session goroutine tree
}

// NewServer validates cfg and returns a server that is not yet listening.
func NewServer(cfg config.Config, log logrus.FieldLogger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dial, err := broker.NewDialer(cfg.AMQP, Version)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, dial: dial, obs: nopObserver{}, sessions: make(map[*session]struct{})}
	if s.authz, err = newAuthority(&s.cfg, log); err != nil {
		return nil, err
	}
	if cfg.TLS.Listen != "" || (cfg.WebSocket.Listen != "" && cfg.WebSocket.TLS) {
		if s.tlsConfig, err = config.ServerTLS(cfg.TLS); err != nil {
			return nil, err
		}
	}
	if cfg.Admin.Listen != "" {
		s.registry, s.metrics = admin.NewRegistry()
		s.obs = s.metrics
		if s.probe, err = admin.NewBrokerProbe(cfg.AMQP); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// SetObserver sets an Observer that receives session events. With
// admin.listen the server's own Prometheus metrics keep receiving them too.
// Call it before Serve.
func (s *Server) SetObserver(obs Observer) {
	switch {
	case obs == nil && s.metrics != nil:
		s.obs = s.metrics
	case obs == nil:
		s.obs = nopObserver{}
	case s.metrics != nil:
		s.obs = teeObserver{s.metrics, obs}
	default:
		s.obs = obs
	}
}

// Listen binds every configured listener: listen, and tls.listen,
// websocket.listen and admin.listen when set. Use "127.0.0.1:0" in tests and
// read Addr, TLSAddr, WebSocketAddr and AdminAddr. If one bind fails, the
// ones already bound are closed.
func (s *Server) Listen() (err error) {
	var bound []net.Listener
	defer func() {
		if err != nil {
			for _, ln := range bound {
				_ = ln.Close()
			}
		}
	}()
	listen := func(addr string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			bound = append(bound, ln)
		}
		return ln, err
	}
	ln, err := listen(s.cfg.Listen)
	if err != nil {
		return err
	}
	var tlsLn, wsLn, adminLn net.Listener
	if s.cfg.TLS.Listen != "" {
		if tlsLn, err = listen(s.cfg.TLS.Listen); err != nil {
			return err
		}
		tlsLn = tls.NewListener(tlsLn, s.tlsConfig)
	}
	if s.cfg.WebSocket.Listen != "" {
		if wsLn, err = listen(s.cfg.WebSocket.Listen); err != nil {
			return err
		}
		if s.cfg.WebSocket.TLS {
			wsLn = tls.NewListener(wsLn, s.tlsConfig)
		}
	}
	if s.cfg.Admin.Listen != "" {
		if adminLn, err = listen(s.cfg.Admin.Listen); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.listener, s.tlsListener, s.wsListener, s.adminLn = ln, tlsLn, wsLn, adminLn
	s.mu.Unlock()
	return nil
}

// Addr returns the bound STOMP TCP listen address, or nil before Listen.
func (s *Server) Addr() net.Addr { return s.addrOf(&s.listener) }

// TLSAddr returns the bound STOMP over TLS address, or nil.
func (s *Server) TLSAddr() net.Addr { return s.addrOf(&s.tlsListener) }

// WebSocketAddr returns the bound WebSocket (or WSS) address, or nil; the
// endpoint is websocket.path on it.
func (s *Server) WebSocketAddr() net.Addr { return s.addrOf(&s.wsListener) }

// AdminAddr returns the bound admin HTTP address, or nil.
func (s *Server) AdminAddr() net.Addr { return s.addrOf(&s.adminLn) }

func (s *Server) addrOf(ln *net.Listener) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *ln == nil {
		return nil
	}
	return (*ln).Addr()
}

// Serve runs the accept loops of every bound listener until Shutdown or
// Close; it then returns ErrServerClosed. If one loop fails, the other
// listeners are closed too and Serve returns that error (live sessions are
// left to Shutdown or Close).
func (s *Server) Serve() error {
	s.mu.Lock()
	ln, tlsLn, wsLn, adminLn := s.listener, s.tlsListener, s.wsListener, s.adminLn
	if ln == nil {
		s.mu.Unlock()
		return errors.New("stompgate: Serve called before Listen")
	}
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	var wsServer, adminServer *http.Server
	if wsLn != nil {
		wsServer = s.newHTTPServer(s.webSocketHandler())
		s.wsServer = wsServer
	}
	if adminLn != nil {
		adminServer = s.newHTTPServer(admin.NewHandler(s.registry, s.readiness, s.cfg.Admin.Pprof))
		s.adminServer = adminServer
	}
	s.serving = true
	s.mu.Unlock()

	loops := []func() error{func() error { return s.acceptLoop(ln, "tcp") }}
	if tlsLn != nil {
		loops = append(loops, func() error { return s.acceptLoop(tlsLn, "tls") })
	}
	if wsLn != nil {
		loops = append(loops, func() error { return s.serveHTTP(wsServer, wsLn) })
	}
	if adminLn != nil {
		loops = append(loops, func() error { return s.serveHTTP(adminServer, adminLn) })
	}
	errs := make(chan error, len(loops))
	for _, loop := range loops {
		go func() { errs <- loop() }()
	}
	first := <-errs
	if !errors.Is(first, ErrServerClosed) {
		s.closeListeners(true)
	}
	for range len(loops) - 1 {
		if err := <-errs; errors.Is(first, ErrServerClosed) && !errors.Is(err, ErrServerClosed) {
			first = err
		}
	}
	s.mu.Lock()
	s.serving = false
	s.mu.Unlock()
	return first
}

// serveHTTP serves srv on ln until it is closed.
func (s *Server) serveHTTP(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) && !s.isClosing() {
		return err
	}
	return ErrServerClosed
}

// newHTTPServer returns an http.Server for the WebSocket or admin listener.
// ConnContext keeps the accepted connection reachable from a request, for
// ws.Conn.
func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.Limits.ConnectTimeout,
		ConnContext:       ws.ConnContext,
		ErrorLog:          newHTTPErrorLog(s.log),
	}
}

// webSocketHandler serves websocket.path; other paths get 404.
func (s *Server) webSocketHandler() http.Handler {
	transport := "ws"
	if s.cfg.WebSocket.TLS {
		transport = "wss"
	}
	mux := http.NewServeMux()
	mux.Handle(s.cfg.WebSocket.Path, &ws.Handler{
		Origins:      s.cfg.WebSocket.AllowedOrigins,
		Transport:    transport,
		StartSession: s.startSession,
		Log:          s.log,
	})
	return mux
}

// closeListeners closes the STOMP, TLS and WebSocket listeners, and the
// admin listener too when withAdmin is set.
func (s *Server) closeListeners(withAdmin bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeListenersLocked(withAdmin)
}

func (s *Server) closeListenersLocked(withAdmin bool) {
	if s.listener != nil {
		_ = s.listener.Close()
	}
	if s.tlsListener != nil {
		_ = s.tlsListener.Close()
	}
	if s.wsServer != nil {
		_ = s.wsServer.Close() // hijacked WebSocket connections are sessions
	} else if s.wsListener != nil {
		_ = s.wsListener.Close()
	}
	if withAdmin {
		if s.adminServer != nil {
			_ = s.adminServer.Close()
		} else if s.adminLn != nil {
			_ = s.adminLn.Close()
		}
	}
}

// acceptLoop accepts connections on ln for transport until the listener
// closes. A temporary Accept error backs off from 5 ms, doubling up to 1 s
// (as net/http does), and the loop carries on.
func (s *Server) acceptLoop(ln net.Listener, transport string) error {
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				if backoff == 0 {
					backoff = 5 * time.Millisecond
				} else if backoff *= 2; backoff > time.Second {
					backoff = time.Second
				}
				s.log.WithError(err).Warnf("accept error; retrying in %v", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.startSession(conn, transport)
	}
}

// newHTTPErrorLog routes net/http's own log lines (TLS handshake errors,
// bad requests) to log at debug level.
func newHTTPErrorLog(log logrus.FieldLogger) *stdlog.Logger {
	return stdlog.New(logWriter(func(line string) { log.Debug(line) }), "", 0)
}

type logWriter func(line string)

func (w logWriter) Write(p []byte) (int, error) {
	w(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// startSession registers and starts a session for conn, accepted on
// transport ("tcp", "tls", "ws", "wss"), unless shutdown has begun. The
// transport is a field of every log line of the session and a metrics label.
func (s *Server) startSession(conn net.Conn, transport string) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = conn.Close()
		return
	}
	var refusal error
	client := clientIP(conn.RemoteAddr())
	switch {
	case s.cfg.Limits.MaxConnections > 0 && len(s.sessions) >= s.cfg.Limits.MaxConnections:
		refusal = errTooManyConnections
	case s.cfg.Limits.MaxConnectionsPerClient > 0 && s.perClient[client] >= s.cfg.Limits.MaxConnectionsPerClient:
		refusal = errTooManyFromClient
	}
	if s.perClient == nil {
		s.perClient = make(map[string]int)
	}
	s.perClient[client]++
	sess := newSession(&s.cfg, conn, s.dial, s.log.WithField("transport", transport))
	sess.transport = transport
	sess.obs = s.obs
	sess.authz = s.authz
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()

	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.sessions, sess)
			if s.perClient[client]--; s.perClient[client] <= 0 {
				delete(s.perClient, client)
			}
			s.mu.Unlock()
		}()
		if refusal != nil {
			sess.reject(refusal)
			return
		}
		sess.run()
	}()
}

// clientIP is the host part of a client address: the key of
// limits.max_connections_per_client.
func clientIP(addr net.Addr) string {
	if a, ok := addr.(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// Shutdown stops accepting, asks every session to finish (wait for its
// confirms, send ERROR "Server shutting down", close) and waits until they
// have, or until ctx ends, when the remaining sessions are force-closed.
// The admin listener closes last, so /readyz answers "shutting down" while
// sessions drain.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.closeListenersLocked(false)
	for sess := range s.sessions {
		sess.shutdown()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.closeListeners(true)
		s.authz.close()
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}

// Close stops accepting and force-closes every session at once (each in
// its own goroutine: a WebSocket close waits up to wsCloseTimeout for the
// client's close frame).
func (s *Server) Close() {
	s.mu.Lock()
	s.closing = true
	s.closeListenersLocked(true)
	for sess := range s.sessions {
		go sess.kill()
	}
	s.mu.Unlock()
	s.authz.close()
}

// Run listens on cfg.Listen, logs where once it accepts connections, and
// serves until ctx ends; then it shuts down within cfg.ShutdownTimeout.
// It returns nil after a shutdown caused by ctx.
func Run(ctx context.Context, cfg config.Config, log logrus.FieldLogger) error {
	srv, err := NewServer(cfg, log)
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	log.WithField("addr", srv.Addr().String()).Info("stompgate listening for STOMP connections")
	if a := srv.TLSAddr(); a != nil {
		log.WithField("addr", a.String()).Info("stompgate listening for STOMP over TLS")
	}
	if a := srv.WebSocketAddr(); a != nil {
		scheme := "ws"
		if cfg.WebSocket.TLS {
			scheme = "wss"
		}
		log.WithField("url", scheme+"://"+a.String()+cfg.WebSocket.Path).Info("stompgate listening for STOMP over WebSocket")
	}
	if a := srv.AdminAddr(); a != nil {
		log.WithField("addr", a.String()).Info("stompgate admin listener: /healthz, /readyz, /metrics")
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }()
	go serveReloads(ctx, srv, log) // reload.go: SIGHUP
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.WithError(err).Warn("shutdown timed out; remaining sessions were closed")
	}
	if err := <-serveErr; !errors.Is(err, ErrServerClosed) {
		log.WithError(err).Warn("accept loop ended with an error")
	}
	log.Info("stompgate stopped")
	return nil
}

// readiness reports why s is not ready, or "" when it is.
func (s *Server) readiness(ctx context.Context) string {
	s.mu.Lock()
	serving, closing := s.serving, s.closing
	s.mu.Unlock()
	switch {
	case closing:
		return "shutting down"
	case !serving:
		return "listeners not accepting yet"
	}
	if err := s.probe.Check(ctx); err != nil {
		return strings.TrimSpace(err.Error())
	}
	return ""
}

// Reload installs new acl.rules and re-reads auth.jwt.jwks_file (on
// SIGHUP; the other auth.jwt keys need a restart). Every live session then
// checks its subscriptions again on its own loop and ends, with ERROR
// "Access refused", if one is no longer allowed. On error nothing changes.
func (s *Server) Reload(acl config.ACLConfig) error {
	rules, err := auth.NewRules(acl.AuthRules())
	if err != nil {
		return fmt.Errorf("acl.rules: %w", err)
	}
	if s.authz.verifier != nil {
		if err := s.authz.verifier.Reload(); err != nil {
			return fmt.Errorf("auth.jwt.jwks_file: %w", err)
		}
	}
	s.authz.rules.Store(rules)
	s.mu.Lock()
	for sess := range s.sessions {
		sess.rulesChanged()
	}
	s.mu.Unlock()
	s.log.WithField("rules", rules.Len()).Info("reloaded acl.rules and the JWKS file")
	return nil
}
