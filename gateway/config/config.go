package config

import "time"

// Config is stompgate's whole configuration. Every field has a yaml tag and
// a default in DefaultConfig; config.example.yaml documents every key and a
// unit test keeps the two in step. Durations are written as Go durations
// ("10s", "500ms") in YAML.
type Config struct {
	// Listen is the STOMP TCP listen address (default ":61613").
	Listen string `yaml:"listen"`
	// ShutdownTimeout bounds a graceful shutdown: sessions wait for their
	// confirms, get ERROR "Server shutting down" and close (semantics 15).
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	AMQP         AMQPConfig         `yaml:"amqp"`
	Auth         AuthConfig         `yaml:"auth"`
	VHosts       VHostsConfig       `yaml:"vhosts"`
	STOMP        STOMPConfig        `yaml:"stomp"`
	Heartbeat    HeartbeatConfig    `yaml:"heartbeat"`
	Limits       LimitsConfig       `yaml:"limits"`
	Flow         FlowConfig         `yaml:"flow"`
	Transactions TransactionsConfig `yaml:"transactions"`
	Log          LogConfig          `yaml:"log"`
	// ACL holds the per-destination rules checked at every SEND and
	// SUBSCRIBE (README "Browsers and tokens"); reloaded on SIGHUP.
	ACL ACLConfig `yaml:"acl"`

	// The sections below are the deployment surface: STOMP over WebSocket,
	// STOMP over TLS and the admin HTTP listener (packages gateway/ws and
	// gateway/admin; TLS material in tls.go).
	WebSocket WebSocketConfig `yaml:"websocket"`
	TLS       TLSConfig       `yaml:"tls"`
	Admin     AdminConfig     `yaml:"admin"`
}

// AMQPConfig is the broker side.
type AMQPConfig struct {
	// URL of the broker. Only scheme, host, port and TLS are used; the
	// credentials come from each client's CONNECT and the vhost from its
	// host header (semantics 1).
	URL string `yaml:"url"`
	// DialTimeout bounds TCP connect plus AMQP handshake.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// Heartbeat is the AMQP heartbeat interval.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// Profile is the broker profile: "auto" (from the broker's
	// connection.start properties), "rabbitmq", "qpid" or "generic"
	// (semantics 17).
	Profile string `yaml:"profile"`
	// SharedConnections lets sessions of the same user, passcode and vhost
	// share a pool of AMQP connections (one channel per session and
	// subscription) instead of one connection per session. Every CONNECT
	// is still authenticated by the broker.
	SharedConnections bool `yaml:"shared_connections"`
	// SessionsPerConnection is how many sessions share one pooled AMQP
	// connection in shared mode.
	SessionsPerConnection int `yaml:"sessions_per_connection"`
	// TLS configures amqps:// connections to the broker.
	TLS AMQPTLSConfig `yaml:"tls"`
	// ResumeSessions keeps a STOMP session open when its AMQP connection
	// dies (node killed, link cut, CONNECTION_FORCED): the gateway dials
	// the next URL of the list, subscribes again under the same ids and
	// publishes again what the broker had not confirmed (README "Running
	// more than one").
	ResumeSessions bool `yaml:"resume_sessions"`
	// ResumeTimeout bounds one resume; a session not resumed by then ends
	// with an ERROR.
	ResumeTimeout time.Duration `yaml:"resume_timeout"`
}

// AMQPTLSConfig is the client side of amqps:// broker connections. Empty
// fields mean the system roots, the URL's host name and no client
// certificate.
type AMQPTLSConfig struct {
	// CAFile is a PEM bundle of CAs that verify the broker's certificate.
	CAFile string `yaml:"ca_file"`
	// ServerName overrides the name verified in the broker's certificate.
	ServerName string `yaml:"server_name"`
	// CertFile and KeyFile are the gateway's client certificate (PEM);
	// set both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// WebSocketConfig is STOMP over WebSocket (gateway/ws): one STOMP frame per
// WebSocket message, or frames split across messages.
type WebSocketConfig struct {
	// Listen is the HTTP listen address serving the WebSocket endpoint;
	// empty disables it.
	Listen string `yaml:"listen"`
	// Path is the URL path of the WebSocket endpoint.
	Path string `yaml:"path"`
	// TLS serves WSS with tls.cert_file and tls.key_file (and tls
	// client-certificate verification, if configured).
	TLS bool `yaml:"tls"`
	// AllowedOrigins lists host[:port] patterns (path.Match syntax, e.g.
	// "*.example.com", or "https://app.example.com" to match the scheme
	// too) a browser's Origin may have besides the request's own host;
	// empty allows only same-host pages. Requests without an Origin
	// (non-browser clients) are always allowed.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// TLSConfig is the STOMP over TLS ("stomp+ssl") listener; its certificate
// also serves WSS.
type TLSConfig struct {
	// Listen is the STOMP over TLS listen address; empty disables it.
	Listen string `yaml:"listen"`
	// CertFile and KeyFile are the server certificate chain and key (PEM).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile is a PEM bundle of CAs for client certificates.
	ClientCAFile string `yaml:"client_ca_file"`
	// VerifyClient requires every TLS client to present a certificate that
	// ClientCAFile verifies.
	VerifyClient bool `yaml:"verify_client"`
}

// AdminConfig is the admin HTTP listener (gateway/admin): /healthz, /readyz,
// /metrics and optionally /debug/pprof/.
type AdminConfig struct {
	// Listen is the admin listen address; empty disables it.
	Listen string `yaml:"listen"`
	// Pprof mounts net/http/pprof under /debug/pprof/.
	Pprof bool `yaml:"pprof"`
}

// AuthConfig holds the credential rules of semantics 2.3.
type AuthConfig struct {
	// DefaultLogin and DefaultPasscode are used only when CONNECT carries
	// neither login nor passcode. Unset by default.
	DefaultLogin    string `yaml:"default_login"`
	DefaultPasscode string `yaml:"default_passcode"`
	// LoopbackUsers may only connect from a loopback client address.
	LoopbackUsers []string `yaml:"loopback_users"`
	// JWT configures bearer-token (JWT) logins; off unless jwks_file or
	// jwks_url is set.
	JWT JWTConfig `yaml:"jwt"`
}

// Broker modes of token sessions (auth.jwt.broker_mode).
const (
	// BrokerModeGateway: the gateway is the authority; the AMQP side logs
	// in with service_user and service_passcode.
	BrokerModeGateway = "gateway"
	// BrokerModePassthrough: the token is the AMQP password (RabbitMQ's
	// OAuth2 backend); a renewal sends connection.update-secret.
	BrokerModePassthrough = "passthrough"
)

// JWTConfig is bearer-token login (package gateway/auth). A token arrives
// in CONNECT's passcode without login, in an "Authorization: Bearer"
// CONNECT header, or on the WebSocket upgrade (Authorization header or
// access_token query parameter).
type JWTConfig struct {
	// JWKSFile is a JWK Set file with the signing keys; re-read on SIGHUP.
	JWKSFile string `yaml:"jwks_file"`
	// JWKSURL is an https URL of the JWK Set, cached, refetched every
	// JWKSRefreshInterval and for an unknown kid (rate-limited).
	JWKSURL string `yaml:"jwks_url"`
	// JWKSRefreshInterval is the period of the background refetch of
	// JWKSURL.
	JWKSRefreshInterval time.Duration `yaml:"jwks_refresh_interval"`
	// CAFile is a PEM bundle of CAs that verify the JWKSURL server; empty:
	// the system roots.
	CAFile string `yaml:"ca_file"`
	// Issuer, when set, must equal the iss claim.
	Issuer string `yaml:"issuer"`
	// Audience, when set, must be the aud claim or one of its elements.
	Audience string `yaml:"audience"`
	// Leeway is the clock skew tolerated on exp and nbf, at CONNECT and
	// for the session's expiry.
	Leeway time.Duration `yaml:"leeway"`
	// UserClaim names the claim that holds the login name.
	UserClaim string `yaml:"user_claim"`
	// Algorithms is the allow-list of JWS algorithms (asymmetric only).
	Algorithms []string `yaml:"algorithms"`
	// Required refuses CONNECTs without a token (login/passcode).
	Required bool `yaml:"required"`
	// BrokerMode is "gateway" or "passthrough".
	BrokerMode string `yaml:"broker_mode"`
	// ServiceUser and ServicePasscode are the AMQP login of token sessions
	// in gateway mode.
	ServiceUser     string `yaml:"service_user"`
	ServicePasscode string `yaml:"service_passcode"`
}

// Enabled reports whether token logins are configured.
func (j JWTConfig) Enabled() bool { return j.JWKSFile != "" || j.JWKSURL != "" }

// ACLConfig is the per-destination rule list. Empty: everything is allowed
// (the broker decides). Otherwise the first rule whose destination pattern
// matches decides, and a destination no rule matches is denied.
type ACLConfig struct {
	Rules []ACLRule `yaml:"rules"`
}

// ACLRule is one rule: the verbs it allows ("send", "subscribe"; empty: a
// deny rule) on destinations matching Destination, a pattern with '*' and
// the templates {user} and {claim:NAME}.
type ACLRule struct {
	Allow       []string `yaml:"allow"`
	Destination string   `yaml:"destination"`
}

// VHostsConfig maps the CONNECT host header to a vhost (semantics 2.4).
type VHostsConfig struct {
	// Default is used when host is absent.
	Default string `yaml:"default"`
	// Map maps host values (case-insensitive) to vhosts.
	Map map[string]string `yaml:"map"`
	// Unmapped is "passthrough", "default" or "reject".
	Unmapped string `yaml:"unmapped"`
}

// STOMPConfig holds protocol options.
type STOMPConfig struct {
	// DefaultTopicExchange is the exchange behind /topic/ destinations.
	DefaultTopicExchange string `yaml:"default_topic_exchange"`
	// HideServerInfo omits the server header from CONNECTED.
	HideServerInfo bool `yaml:"hide_server_info"`
	// TrailingLF writes one LF after each frame's NUL, like the plugin.
	TrailingLF bool `yaml:"trailing_lf"`
	// DefaultNackRequeue is NACK's requeue when the header is absent.
	DefaultNackRequeue bool `yaml:"default_nack_requeue"`
	// DisconnectTimeout bounds the wait for outstanding confirms on DISCONNECT.
	DisconnectTimeout time.Duration `yaml:"disconnect_timeout"`
	// ErrorLinger bounds how long input is read and discarded after an ERROR.
	ErrorLinger time.Duration `yaml:"error_linger"`
	// DefaultQueueType is the x-queue-type of durable /queue queues the
	// gateway declares when the frame names none: "" (the broker's
	// default), "classic" or "quorum". An x-queue-type header overrides it.
	DefaultQueueType string `yaml:"default_queue_type"`
	// Dialect is "" (RabbitMQ's STOMP plugin) or "activemq": ActiveMQ's
	// SEND headers (expires, AMQ_SCHEDULED_DELAY, AMQ_SCHEDULED_TIME), its
	// topic wildcard ">" and its MESSAGE headers (expires, timestamp in ms,
	// priority, persistent, the delivery count). The headers the plugin
	// has no meaning for (selector, activemq.*) work in both (issue 14).
	Dialect string `yaml:"dialect"`
	// MaxRedeliveries is how often a NACKed message is delivered again
	// before it is dead-lettered; 0 means no limit. The SUBSCRIBE header
	// max-redeliveries overrides it per subscription.
	MaxRedeliveries int `yaml:"max_redeliveries"`
	// MaxScheduledDelay is the longest AMQ_SCHEDULED_DELAY accepted; it
	// bounds the number of delay queues per target exchange.
	MaxScheduledDelay time.Duration `yaml:"max_scheduled_delay"`
}

// DialectActiveMQ is the stomp.dialect value for ActiveMQ's headers.
const DialectActiveMQ = "activemq"

// HeartbeatConfig is STOMP heart-beating (semantics 3).
type HeartbeatConfig struct {
	// SendMin is the floor of the server's send interval.
	SendMin time.Duration `yaml:"send_min"`
	// RecvMin is the floor of the interval at which the client must send.
	RecvMin time.Duration `yaml:"recv_min"`
	// Tolerance multiplies the receive interval before a session is ended.
	Tolerance float64 `yaml:"tolerance"`
	// IdleTimeout ends sessions without client heart-beats after that much
	// inbound silence; 0 disables it.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// LimitsConfig bounds what a client can make the gateway hold (semantics 4.5).
type LimitsConfig struct {
	// MaxHeaderLine bounds one command or header line on the wire, without
	// its EOL, in bytes.
	MaxHeaderLine int `yaml:"max_header_line"`
	// MaxHeaders bounds the headers of one frame, repeats included.
	MaxHeaders int `yaml:"max_headers"`
	// MaxHeaderBytes bounds all header lines of one frame together.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBody bounds one frame body, declared (content-length) or actual.
	MaxBody int64 `yaml:"max_body"`
	// MaxPreconnectBytes bounds what a client may send before CONNECTED
	// (semantics 2.1).
	MaxPreconnectBytes int64 `yaml:"max_preconnect_bytes"`
	// ConnectTimeout bounds accept to complete CONNECT (semantics 2.1).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxConnections bounds concurrent sessions; the next connection gets
	// ERROR "Too many connections" (semantics 2.1).
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerClient caps concurrent sessions from one client IP
	// address, so one client cannot take every slot; 0 disables the cap.
	MaxConnectionsPerClient int `yaml:"max_connections_per_client"`
	// MaxSubscriptions bounds subscriptions per session, temp queues
	// included; each holds an AMQP channel.
	MaxSubscriptions int `yaml:"max_subscriptions"`
}

// FlowConfig is flow control in both directions (semantics 13).
type FlowConfig struct {
	// DefaultPrefetch is a subscription's prefetch without prefetch-count.
	DefaultPrefetch int `yaml:"default_prefetch"`
	// MaxPrefetch caps prefetch-count; 0 in the header means this value.
	MaxPrefetch int `yaml:"max_prefetch"`
	// MaxUnconfirmed publishes per session before reading pauses.
	MaxUnconfirmed int `yaml:"max_unconfirmed"`
	// MaxOutboundBytes bounds a session's writer queue; one frame always fits.
	MaxOutboundBytes int64 `yaml:"max_outbound_bytes"`
	// WriteTimeout ends a session whose socket writes make no progress.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// BatchPublishes lets consecutive SENDs that are already waiting share
	// one socket write to the broker (session.flushBrokerWrites).
	BatchPublishes bool `yaml:"batch_publishes"`
}

// TransactionsConfig bounds gateway-side transaction buffers (semantics 12).
type TransactionsConfig struct {
	MaxOpen    int   `yaml:"max_open"`
	MaxActions int   `yaml:"max_actions"`
	MaxBytes   int64 `yaml:"max_bytes"`
}

// LogConfig is logging; only cmd/stompgate applies it.
type LogConfig struct {
	// Level is a logrus level name.
	Level string `yaml:"level"`
	// Format is "text" or "json".
	Format string `yaml:"format"`
}

// DefaultConfig returns the configuration used when nothing is set.
func DefaultConfig() Config {
	return Config{
		Listen:          ":61613",
		ShutdownTimeout: 10 * time.Second,
		AMQP: AMQPConfig{
			URL:         "amqp://guest:guest@127.0.0.1:5672/",
			DialTimeout: 5 * time.Second,
			Heartbeat:   3 * time.Second,
			Profile:     "auto",

			SessionsPerConnection: 64,
			ResumeTimeout:         30 * time.Second,
		},
		Auth: AuthConfig{
			LoopbackUsers: []string{"guest"},
			JWT: JWTConfig{
				JWKSRefreshInterval: 15 * time.Minute,
				UserClaim:           "sub",
				Algorithms:          []string{"RS256", "ES256", "EdDSA"},
				BrokerMode:          BrokerModeGateway,
			},
		},
		ACL: ACLConfig{Rules: []ACLRule{}},
		VHosts: VHostsConfig{
			Default:  "/",
			Map:      map[string]string{},
			Unmapped: "passthrough",
		},
		STOMP: STOMPConfig{
			DefaultTopicExchange: "amq.topic",
			TrailingLF:           true,
			DefaultNackRequeue:   true,
			DisconnectTimeout:    10 * time.Second,
			ErrorLinger:          time.Second,
			MaxScheduledDelay:    7 * 24 * time.Hour,
		},
		Heartbeat: HeartbeatConfig{
			SendMin:   500 * time.Millisecond,
			RecvMin:   500 * time.Millisecond,
			Tolerance: 2.0,
		},
		Limits: LimitsConfig{
			MaxHeaderLine:           64 << 10,
			MaxHeaders:              1000,
			MaxHeaderBytes:          1 << 20,
			MaxBody:                 64 << 20,
			MaxPreconnectBytes:      64 << 10,
			ConnectTimeout:          10 * time.Second,
			MaxConnections:          10000,
			MaxConnectionsPerClient: 5000,
			MaxSubscriptions:        1024,
		},
		Flow: FlowConfig{
			DefaultPrefetch:  1000,
			MaxPrefetch:      10000,
			MaxUnconfirmed:   1000,
			MaxOutboundBytes: 8 << 20,
			WriteTimeout:     30 * time.Second,
			BatchPublishes:   true,
		},
		Transactions: TransactionsConfig{
			MaxOpen:    16,
			MaxActions: 1024,
			MaxBytes:   64 << 20,
		},
		Log: LogConfig{Level: "info", Format: "text"},
		WebSocket: WebSocketConfig{
			Path:           "/ws",
			AllowedOrigins: []string{},
		},
	}
}
