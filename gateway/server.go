package gateway

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("stompgate: server closed")

// Server accepts STOMP connections and runs one session per connection.
//
// The accept loop runs in the goroutine that calls Serve. Each session runs
// its own goroutines (see the package doc) and is tracked in sessions so
// that Shutdown can drain them.
type Server struct {
	cfg  Config
	log  logrus.FieldLogger
	dial brokerDialer
	obs  Observer

	mu       sync.Mutex // guards listener, sessions, closing
	listener net.Listener
	sessions map[*session]struct{}
	closing  bool

	wg sync.WaitGroup // one per live session goroutine tree
}

// NewServer validates cfg and returns a server that is not yet listening.
func NewServer(cfg Config, log logrus.FieldLogger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dial, err := newAMQPDialer(cfg.AMQP)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, log: log, dial: dial, obs: nopObserver{}, sessions: make(map[*session]struct{})}, nil
}

// SetObserver sets the Observer that receives session events (metrics).
// Call it before Serve.
func (s *Server) SetObserver(obs Observer) {
	if obs == nil {
		obs = nopObserver{}
	}
	s.obs = obs
}

// Listen binds cfg.Listen. Use "127.0.0.1:0" in tests and read Addr.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.listener = ln
	s.mu.Unlock()
	return nil
}

// Addr returns the bound listen address, or nil before Listen.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return nil
	}
	return s.listener.Addr()
}

// Serve runs the accept loop until Shutdown or Close; it then returns
// ErrServerClosed. A temporary Accept error backs off from 5 ms, doubling up
// to 1 s (as net/http does), and the loop carries on.
func (s *Server) Serve() error {
	s.mu.Lock()
	ln := s.listener
	s.mu.Unlock()
	if ln == nil {
		return errors.New("stompgate: Serve called before Listen")
	}
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
		s.startSession(conn)
	}
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

// startSession registers and starts a session unless shutdown has begun.
func (s *Server) startSession(conn net.Conn) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = conn.Close()
		return
	}
	tooMany := s.cfg.Limits.MaxConnections > 0 && len(s.sessions) >= s.cfg.Limits.MaxConnections
	sess := newSession(s.cfg, conn, s.dial, s.log)
	sess.obs = s.obs
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()

	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.sessions, sess)
			s.mu.Unlock()
		}()
		if tooMany {
			sess.reject(errTooManyConnections)
			return
		}
		sess.run()
	}()
}

// Shutdown stops accepting, asks every session to finish (wait for its
// confirms, send ERROR "Server shutting down", close) and waits until they
// have, or until ctx ends, when the remaining sessions are force-closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	if s.listener != nil {
		_ = s.listener.Close()
	}
	for sess := range s.sessions {
		sess.shutdown()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}

// Close stops accepting and force-closes every session at once.
func (s *Server) Close() {
	s.mu.Lock()
	s.closing = true
	if s.listener != nil {
		_ = s.listener.Close()
	}
	for sess := range s.sessions {
		sess.kill()
	}
	s.mu.Unlock()
}

// Run listens on cfg.Listen, logs where once it accepts connections, and
// serves until ctx ends; then it shuts down within cfg.ShutdownTimeout.
// It returns nil after a shutdown caused by ctx.
func Run(ctx context.Context, cfg Config, log logrus.FieldLogger) error {
	srv, err := NewServer(cfg, log)
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	log.WithField("addr", srv.Addr().String()).Info("stompgate listening for STOMP connections")
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }()
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
