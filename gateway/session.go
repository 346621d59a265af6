package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/sirupsen/logrus"

	"github.com/stompgate/stompgate/gateway/broker"
	"github.com/stompgate/stompgate/gateway/codec"
	"github.com/stompgate/stompgate/gateway/config"
)

// session is one STOMP client connection and its AMQP connection.
//
// Goroutines (package doc, "Design"):
//   - run, the session goroutine: the CONNECT phase, then loop, the single
//     owner of everything below the "owned by the session loop" line.
//   - the reader goroutine (readLoop): decodes frames and hands them over.
//   - the writer goroutine (writer.run, runWriter): the only writer to
//     conn; parked while idle in a session without heart-beats.
//   - one forwarder per subscription but the first (forward): hands that
//     subscription's deliveries, then their end, to the loop. The loop
//     reads the first subscription's deliveries itself (direct).
type session struct {
	cfg  *config.Config // the Server's, shared and read-only
	conn net.Conn
	dial broker.Dialer
	log  logrus.FieldLogger

	remote string
	id     string
	// transport names the listener kind for logs and metrics ("tcp",
	// "tls", "ws", "wss"); obs receives events for metrics. Both are set
	// by the Server before run.
	transport string
	obs       Observer
	trace     bool // log every frame (logrus trace level only)
	// authz is the Server's token verifier and acl.rules (token.go), set
	// before run; nil: no token logins, no rules. recheck (cap 1) tells the
	// loop that the rules were reloaded (acl.go).
	authz   *authority
	recheck chan struct{}

	shutdownCh   chan struct{} // closed by shutdown(): finish gracefully
	shutdownOnce sync.Once
	loopStarted  atomic.Bool   // set once CONNECT is done; shutdown then leaves deadlines alone
	killCh       chan struct{} // closed by kill(): stop now
	killOnce     sync.Once
	done         chan struct{} // closed by closeDone when the session has ended
	doneOnce     sync.Once

	// Set during the CONNECT phase, read-only afterwards, except that the
	// session loop opens the publisher channel (pub, pubClose, pubFlow,
	// confirms) on the first SEND and sets the notification channels to
	// nil once amqp091-go has closed them.
	version    codec.Version
	in         *inboundConn
	reader     *codec.Reader
	out        *outbound
	broker     broker.Conn
	pub        broker.Channel
	wires      broker.WriteHolder // the broker socket's held writes; nil for fakes or without flow.batch_publishes
	confirms   chan amqp.Confirmation
	pubClose   chan *amqp.Error
	connClose  chan *amqp.Error
	blockedCh  chan amqp.Blocking
	pubFlow    chan bool
	writerErr  chan error
	writerDone chan struct{}
	readerDone chan struct{} // closed when the reader goroutine returns

	inbound chan inboundItem // reader → loop
	// deliveries: forwarders → loop, made with the first forwarder; gated
	// by the writer queue.
	deliveries chan subDelivery
	wg         sync.WaitGroup // reader and forwarders

	// ---- owned by the session loop ----
	subs        map[string]*subscription // by consumer tag
	direct      *subscription            // the one whose deliveries the loop reads itself
	retiredTags map[string]struct{}      // tags of ended subscriptions (10.2 step 3)
	declared    map[string]struct{}      // /queue names declared in this session
	tempQueues  map[string]string        // temp-queue id → broker queue name
	unconfirmed int                      // publishes awaiting a confirm
	receipts    []pendingReceipt         // by ascending publish sequence number
	blocked     bool                     // connection.blocked or channel.flow(false)
	txs         map[string]*transaction
	txBytes     int64
	failedFrame *codec.Frame // the frame whose processing ended the session
	poolBodies  bool         // large SEND bodies come from bodyPools (bodypool.go)
	frameMax    int          // negotiated AMQP frame_max (semantics 7.1)
	pubReady    bool         // the publisher channel is in confirm mode
	profile     broker.Profile
	login       broker.Login      // the CONNECT's credentials and vhost, for a resume
	inflight    []inflightPublish // unconfirmed publishes, kept only with amqp.resume_sessions
	nacked      []inflightPublish // nacked publishes waiting for retryC (amqp.resume_sessions)
	retryC      <-chan time.Time  // fires when nacked publishes go again; nil when none wait
	messageSeq  uint64            // last session-wide message number (message-id)
	msgIDBuf    []byte
	hdrBuf      codec.Headers
	// publishes since the last flushBrokerWrites whose socket write was held
	heldPublishes int
	tok           tokenState // identity, token expiry and rule checker (token.go)
	amq           amqSession // ActiveMQ dialect: client-id, delay queues, redeliveries (activemq.go)
}

// inboundItem is one decoded frame, or the error that ended reading.
type inboundItem struct {
	frame *codec.Frame
	err   error
}

// pendingReceipt is a RECEIPT owed once publish seq is confirmed.
type pendingReceipt struct {
	seq           uint64
	receipt       string // the SEND's receipt
	commitReceipt string // a COMMIT's receipt, on its last publish
	arrived       time.Time
}

func newSession(cfg *config.Config, conn net.Conn, dial broker.Dialer, log logrus.FieldLogger) *session {
	return &session{
		cfg:        cfg,
		conn:       conn,
		dial:       dial,
		log:        log.WithField("remote", conn.RemoteAddr().String()),
		remote:     conn.RemoteAddr().String(),
		transport:  "tcp",
		obs:        nopObserver{},
		trace:      traceEnabled(log),
		shutdownCh: make(chan struct{}),
		killCh:     make(chan struct{}),
		done:       make(chan struct{}),
		recheck:    make(chan struct{}, 1),
	}
}

// shutdown asks the session to end gracefully (semantics 15). Safe from
// any goroutine, any number of times. A session still waiting for its
// CONNECT frame is woken by an expired read deadline and told the server
// is shutting down.
func (s *session) shutdown() {
	s.shutdownOnce.Do(func() {
		close(s.shutdownCh)
		if !s.loopStarted.Load() {
			_ = s.conn.SetReadDeadline(time.Now())
		}
	})
}

// kill force-closes the session. Safe from any goroutine.
func (s *session) kill() {
	s.killOnce.Do(func() {
		close(s.killCh)
		_ = s.conn.Close()
	})
}

// traceEnabled reports whether log writes at trace level, so per-frame
// traces cost nothing otherwise.
func traceEnabled(log logrus.FieldLogger) bool {
	switch l := log.(type) {
	case *logrus.Logger:
		return l.IsLevelEnabled(logrus.TraceLevel)
	case *logrus.Entry:
		return l.Logger.IsLevelEnabled(logrus.TraceLevel)
	}
	return false
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "session-" + base64.RawURLEncoding.EncodeToString(b[:])
}

// closeDone closes done once: forwarders and the reader goroutine return.
func (s *session) closeDone() { s.doneOnce.Do(func() { close(s.done) }) }

// recoverGoroutine ends only this session when a goroutine of it panics
// (style: net/http conn.serve). Deferred first thing in every goroutine
// of the session.
func (s *session) recoverGoroutine(where string) {
	if r := recover(); r != nil {
		s.log.WithFields(logrus.Fields{"panic": r, "goroutine": where}).Errorf("session goroutine panicked; closing this session only\n%s", debug.Stack())
		s.kill()
	}
}

// reject tells a connection that it cannot have a session and closes it.
func (s *session) reject(err error) {
	s.log.WithError(err).Warn("connection rejected")
	s.endPreconnect(err)
}

// run is the session goroutine.
func (s *session) run() {
	defer func() {
		if r := recover(); r != nil {
			s.log.WithField("panic", r).Errorf("session panicked; closing this session only\n%s", debug.Stack())
			s.kill()
			if s.broker != nil {
				_ = s.broker.Close()
			}
			s.closeDone()
			s.wg.Wait()
			s.obs.SessionClosed(s.transport, string(CloseInternalError))
		}
	}()
	start := time.Now()
	s.obs.SessionOpened(s.transport)
	if err := s.connect(); err != nil {
		reason := closeReasonFor(err)
		s.log.WithError(err).WithField("reason", reason).Info("connection closed before CONNECTED")
		s.endPreconnect(err)
		s.obs.SessionClosed(s.transport, string(reason))
		return
	}
	s.log.WithFields(logrus.Fields{"version": s.version.String()}).Info("session started")
	err := s.loop()
	err = s.expiredInstead(err) // token.go: past the token's expiry, only "Token expired" is said
	s.end(err)
	reason := closeReasonFor(err)
	s.obs.SessionClosed(s.transport, string(reason))
	s.log.WithFields(logrus.Fields{
		"reason":   reason,
		"duration": time.Since(start).Round(time.Millisecond).String(),
	}).WithError(err).Info("session ended")
}

// connect runs the CONNECT phase (semantics 2): read the CONNECT frame
// within limits.connect_timeout and limits.max_preconnect_bytes, negotiate,
// open the AMQP connection with the client's credentials, queue CONNECTED
// and start the reader and writer goroutines.
func (s *session) connect() error {
	lim := s.cfg.Limits
	s.in = &inboundConn{
		conn:            s.conn,
		connectDeadline: time.Now().Add(lim.ConnectTimeout),
	}
	s.in.budget.Store(lim.MaxPreconnectBytes)
	s.reader = codec.NewReader(s.in, codec.Limits{
		MaxLineBytes:   lim.MaxHeaderLine,
		MaxHeaders:     lim.MaxHeaders,
		MaxHeaderBytes: lim.MaxHeaderBytes,
		MaxBody:        lim.MaxBody,
	})
	if !s.cfg.AMQP.ResumeSessions {
		// A resume republishes from s.inflight: its bodies must stay.
		s.poolBodies = true
		s.reader.SetBodyAllocator(getBody) // bodypool.go
	}
	f, err := s.reader.ReadFrame()
	if err != nil {
		return s.readError(err)
	}
	s.obs.FrameIn(f.Command)
	if f.Command != codec.CmdConnect && f.Command != codec.CmdStomp {
		return protocolError("Illegal command", "You must log in using CONNECT first")
	}
	// STOMP 1.2: CONNECT headers are never unescaped; the codec reads
	// them raw because no version is set yet.
	accept, present := f.Headers.Get("accept-version")
	version, ok := codec.NegotiateVersion(accept, present)
	if !ok {
		return protocolError("Version mismatch", "Supported versions are 1.0,1.1,1.2\n")
	}
	if version == codec.Version10 {
		codec.TrimLeft10(f.Headers)
	}

	var cx, cy int64
	if hb, ok := f.Headers.Get("heart-beat"); ok {
		if cx, cy, err = codec.ParseHeartBeat(hb); err != nil {
			return protocolError("Bad CONNECT", fmt.Sprintf("Invalid heart-beat header '%s'\n", hb))
		}
	}
	sendInterval, recvInterval := negotiateHeartbeat(s.cfg.Heartbeat, cx, cy)

	login, err := s.authenticate(f.Headers) // token.go: a bearer token, else credentials
	if err != nil {
		return err
	}
	vhost, err := s.vhost(f.Headers)
	if err != nil {
		return err
	}
	s.id = newSessionID()
	s.log = s.log.WithField("session", s.id)
	s.amq.clientID = f.Headers.Value("client-id") // activemq.go: durable subscriptions

	// No overall deadline: each broker URL gets its own amqp.dial_timeout
	// (broker.NewDialer), so a stalled first broker leaves the next one its full
	// budget (issue 4, e2e TestFaultFailoverToSecondURL).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.login = broker.Login{
		Login:          login.Login,
		Passcode:       login.Passcode,
		VHost:          vhost,
		ConnectionName: "stompgate " + s.id + " " + s.remote,
	}
	conn, err := s.dial(ctx, s.login)
	if err != nil {
		s.observeDialError(err)
		switch {
		case errors.Is(err, broker.ErrAccessRefused):
			return protocolError("Bad CONNECT", fmt.Sprintf("Access refused for user '%s'\n", s.loginName(login)))
		case errors.Is(err, broker.ErrVHostRefused):
			return protocolError("Bad CONNECT", fmt.Sprintf("Virtual host '%s' access denied", vhost))
		default:
			return protocolError("Bad CONNECT", "Could not reach the AMQP broker: "+strings.TrimPrefix(err.Error(), broker.ErrUnreachable.Error()+": ")+"\n")
		}
	}
	s.useBroker(conn)
	s.log = s.log.WithField("broker_profile", s.profile.Name())
	// The publisher channel, in confirm mode, is opened by the first SEND
	// (session.publisher), so an idle or subscribe-only session holds no
	// publisher channel, here or at the broker.

	s.version = version
	s.reader.SetVersion(version)
	idle := time.Duration(float64(recvInterval) * s.cfg.Heartbeat.Tolerance)
	if recvInterval == 0 {
		idle = s.cfg.Heartbeat.IdleTimeout
	}
	s.in.connected(idle)

	// The other maps stay nil until first written (lazyMap): most
	// sessions never declare, retire, reply or transact.
	s.subs = make(map[string]*subscription)
	s.inbound = make(chan inboundItem, 8)

	s.out = newOutbound(s.cfg.Flow.MaxOutboundBytes)
	_, framed := s.conn.(messageWriter) // WebSocket: whole frames per message
	s.out.zeroCopy = !framed
	connected := &codec.Frame{Command: codec.CmdConnected}
	if !s.cfg.STOMP.HideServerInfo {
		connected.Headers.Add("server", "stompgate/"+Version)
	}
	connected.Headers.Add("session", s.id)
	connected.Headers.Add("heart-beat", fmt.Sprintf("%d,%d", sendInterval.Milliseconds(), recvInterval.Milliseconds()))
	connected.Headers.Add("version", version.String())

	// The writer goroutine starts with the first frame (CONNECTED) and, in
	// a session without heart-beats to send, parks when idle and starts
	// again with the next frame (outbound.startWriter). writerDone closes
	// when it returns for good.
	w := &writer{conn: s.conn, out: s.out, sendInterval: sendInterval, writeTimeout: s.cfg.Flow.WriteTimeout, stop: s.killCh}
	s.writerErr = make(chan error, 1)
	s.writerDone = make(chan struct{})
	s.out.startWriter = func() { go s.runWriter(w) }
	s.armExpiry() // a token session ends at its token's expiry
	// The codec never escapes CONNECTED (STOMP 1.2), whatever the version.
	s.queueFrame(connected, nil)
	s.loopStarted.Store(true)
	s.readerDone = make(chan struct{})
	s.wg.Add(1)
	go s.readLoop()
	return nil
}

// observeDialError counts a failed AMQP dial as refused (the broker
// answered and said no) or unreachable.
func (s *session) observeDialError(err error) {
	if errors.Is(err, broker.ErrAccessRefused) || errors.Is(err, broker.ErrVHostRefused) {
		s.obs.BrokerConnection("refused")
		return
	}
	s.obs.BrokerConnection("unreachable")
}

// useBroker makes conn the session's AMQP connection: at CONNECT and when
// a resume has dialled a new one. Only called from the session goroutine.
func (s *session) useBroker(conn broker.Conn) {
	s.broker = conn
	s.wires = nil
	if s.cfg.Flow.BatchPublishes {
		s.wires = broker.WriteHolderOf(conn)
	}
	s.obs.BrokerConnection("open")
	s.profile = broker.SelectProfile(s.cfg.AMQP.Profile, conn.ServerProperties())
	s.obs.BrokerProfile(s.profile.Name())
	s.frameMax = conn.FrameMax()
	s.connClose = conn.NotifyClose(make(chan *amqp.Error, 1))
	s.blockedCh = conn.NotifyBlocked(make(chan amqp.Blocking, 4))
}

// runWriter is the writer goroutine: one run of w until it parks, ends
// or fails.
func (s *session) runWriter(w *writer) {
	parked := false
	defer func() {
		if !parked {
			close(s.writerDone)
		}
	}()
	defer s.recoverGoroutine("writer")
	err := w.run()
	switch {
	case errors.Is(err, errWriterParked):
		parked = true
	case err != nil:
		s.writerErr <- err
	}
}

// negotiateHeartbeat applies semantics 3: S = 0 if cy = 0 else max(cy,
// send_min); R = 0 if cx = 0 else max(cx, recv_min).
func negotiateHeartbeat(cfg config.HeartbeatConfig, cx, cy int64) (send, recv time.Duration) {
	if cy > 0 {
		send = max(time.Duration(cy)*time.Millisecond, cfg.SendMin)
	}
	if cx > 0 {
		recv = max(time.Duration(cx)*time.Millisecond, cfg.RecvMin)
	}
	return send, recv
}

// credentials applies semantics 2.3.
func (s *session) credentials(h codec.Headers) (broker.Login, error) {
	login, hasLogin := h.Get("login")
	passcode, hasPasscode := h.Get("passcode")
	missing := protocolError("Bad CONNECT", "Missing login or passcode header(s)\n")
	switch {
	case !hasLogin && !hasPasscode:
		if s.cfg.Auth.DefaultLogin == "" {
			return broker.Login{}, missing
		}
		login, passcode = s.cfg.Auth.DefaultLogin, s.cfg.Auth.DefaultPasscode
	case login == "" || passcode == "":
		return broker.Login{}, missing
	}
	for _, u := range s.cfg.Auth.LoopbackUsers {
		if u == login && !isLoopback(s.conn.RemoteAddr()) {
			return broker.Login{}, protocolError("Bad CONNECT", "non-loopback access denied\n")
		}
	}
	return broker.Login{Login: login, Passcode: passcode}, nil
}

func isLoopback(addr net.Addr) bool {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// vhost applies semantics 2.4.
func (s *session) vhost(h codec.Headers) (string, error) {
	host, ok := h.Get("host")
	if !ok {
		return s.cfg.VHosts.Default, nil
	}
	for k, v := range s.cfg.VHosts.Map {
		if strings.EqualFold(k, host) {
			return v, nil
		}
	}
	switch s.cfg.VHosts.Unmapped {
	case "default":
		return s.cfg.VHosts.Default, nil
	case "reject":
		return "", protocolError("Bad CONNECT", fmt.Sprintf("Virtual host for host '%s' is not configured\n", host))
	}
	return host, nil
}

// readError classifies an error of codec.Reader.ReadFrame.
func (s *session) readError(err error) error {
	select {
	case <-s.shutdownCh:
		if !s.loopStarted.Load() {
			return errShuttingDown
		}
	default:
	}
	var pe *codec.ProtocolError
	switch {
	case errors.As(err, &pe):
		return err
	case errors.Is(err, errPreconnectLimit):
		return &codec.ProtocolError{Message: "Frame too large", Detail: fmt.Sprintf("More than %d bytes arrived before CONNECT completed (limits.max_preconnect_bytes)\n", s.cfg.Limits.MaxPreconnectBytes), Kind: codec.ErrFrameTooLarge}
	case errors.Is(err, errConnectTimeout), errors.Is(err, errHeartbeatTimeout):
		return err
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return errClientClosed
	}
	select {
	case <-s.killCh:
		return errKilled
	default:
	}
	return fmt.Errorf("%w: %w", errClientClosed, err)
}

// readLoop is the reader goroutine: it decodes frames and hands them to the
// session loop in order. It blocks while the loop does not take frames,
// which pushes back on the client through TCP. Runs in its own goroutine.
func (s *session) readLoop() {
	defer s.wg.Done()
	defer close(s.readerDone)
	defer s.recoverGoroutine("reader")
	for {
		f, err := s.reader.ReadFrame()
		select {
		case s.inbound <- inboundItem{frame: f, err: err}:
		case <-s.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// endPreconnect closes a connection that never got CONNECTED: the ERROR,
// if any, is written directly, unescaped (semantics 4.3).
func (s *session) endPreconnect(err error) {
	if f := errorFrame(err, ""); f != nil {
		s.obs.ErrorSent(f.Headers.Value("message"))
		s.obs.FrameOut(codec.CmdError)
		_ = s.conn.SetWriteDeadline(time.Now().Add(s.cfg.STOMP.ErrorLinger + time.Second))
		_, _ = s.conn.Write(codec.AppendFrame(nil, f, codec.VersionNone, s.cfg.STOMP.TrailingLF))
		s.lingerAndClose(false)
	} else {
		_ = s.conn.Close()
	}
	if s.broker != nil {
		_ = s.broker.Close()
		s.obs.BrokerConnection("closed")
	}
	s.closeDone()
}

// end runs the close procedure of semantics 14.2 after the loop returned.
func (s *session) end(err error) {
	receipt := ""
	if s.failedFrame != nil {
		receipt = s.failedFrame.Headers.Value("receipt")
	}
	// 1. The loop has stopped reading frames and taking deliveries.
	// 2. Queue the ERROR behind queued frames; let the writer flush.
	ef := errorFrame(err, receipt)
	if ef != nil {
		s.obs.ErrorSent(ef.Headers.Value("message"))
		s.queueFrame(ef, nil)
	}
	s.out.finish()
	select {
	case <-s.writerDone:
	case <-s.killCh:
	}
	// Close the AMQP side: unacked deliveries requeue, exclusive and
	// auto-delete queues go.
	_ = s.broker.Close()
	s.obs.BrokerConnection("closed")
	// 3–5. Half-close, linger, close.
	s.lingerAndClose(ef != nil)
	s.closeDone()
	s.wg.Wait()
}

// lingerAndClose half-closes the socket for writing, so that a reset cannot
// destroy an ERROR still in flight, reads and discards input for at most
// stomp.error_linger and 1 MiB, then closes.
func (s *session) lingerAndClose(linger bool) {
	if cw, ok := s.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	if linger && s.cfg.STOMP.ErrorLinger > 0 {
		deadline := time.Now().Add(s.cfg.STOMP.ErrorLinger)
		if s.in == nil {
			s.in = &inboundConn{conn: s.conn}
		}
		s.in.linger(deadline, 1<<20)
		if s.readerDone != nil {
			// The reader goroutine may still be reading: drain what it
			// hands over until it stops, then read the rest directly.
			s.drainInbound(deadline)
		} else {
			_, _ = io.Copy(io.Discard, s.in)
		}
	}
	_ = s.conn.Close()
}

// drainInbound discards frames from the reader goroutine until it reports
// an error (EOF, the linger deadline, the byte budget) or the deadline.
func (s *session) drainInbound(deadline time.Time) {
	t := time.NewTimer(time.Until(deadline) + 50*time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.inbound:
		case <-s.readerDone:
			_, _ = io.Copy(io.Discard, s.in)
			return
		case <-t.C:
			return
		case <-s.killCh:
			return
		}
	}
}

// lazyMap returns m, made if it is nil: session maps are allocated by their
// first write.
func lazyMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return make(map[K]V)
	}
	return m
}
