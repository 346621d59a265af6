package config

// Config loading and validation (style.md practice 10); the Config struct
// itself lives in config.go.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"path"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"gopkg.in/yaml.v3"

	"github.com/stompgate/stompgate/gateway/auth"
)

// Load reads the YAML file at path on top of DefaultConfig and
// validates the result. Keys absent from the file keep their defaults.
//
// Before decoding, every ${NAME} outside comment lines is replaced by the
// environment variable NAME; an unset variable is an error (a missing secret
// should not silently become ""), and $${ stands for a literal ${. Decoding
// is strict: an unknown key is an error naming its yaml path and line.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	cfg := DefaultConfig()
	if err := decodeConfig(data, &cfg); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// decodeConfig expands ${ENV} in data and decodes it strictly into cfg,
// overwriting only the keys the document sets.
func decodeConfig(data []byte, cfg *Config) error {
	data, err := expandEnv(data)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	if len(doc.Content) == 0 {
		return nil // empty file: all defaults
	}
	if err := checkKeys(doc.Content[0], reflect.TypeOf(Config{}), ""); err != nil {
		return err
	}
	// checkKeys gives the clearer messages; KnownFields(true) is the backstop.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("config must be a single YAML document")
	}
	return nil
}

// envReference matches $${ (an escaped "${") or ${NAME}.
var envReference = regexp.MustCompile(`\$\$\{|\$\{([^}]*)\}`)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expandEnv replaces ${NAME} with the value of the environment variable NAME
// on every line that is not a comment line. It reports every unset or
// malformed reference with its line number.
func expandEnv(data []byte) ([]byte, error) {
	var problems []error
	lines := strings.SplitAfter(string(data), "\n")
	for i, line := range lines {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		lines[i] = envReference.ReplaceAllStringFunc(line, func(ref string) string {
			if ref == "$${" {
				return "${"
			}
			name := ref[2 : len(ref)-1]
			if !envName.MatchString(name) {
				problems = append(problems, fmt.Errorf("line %d: %s is not a valid environment reference", i+1, ref))
				return ref
			}
			value, ok := os.LookupEnv(name)
			if !ok {
				problems = append(problems, fmt.Errorf("line %d: environment variable %s is not set", i+1, name))
			}
			return value
		})
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return []byte(strings.Join(lines, "")), nil
}

var durationType = reflect.TypeOf(time.Duration(0))

// checkKeys walks a YAML mapping against the struct type t and reports keys
// that t has no yaml tag for, by full yaml path ("limits.max_bodyy"), and
// durations written without a unit (yaml.v3 refuses a bare 10 for a
// time.Duration with a message that does not name the key).
func checkKeys(node *yaml.Node, t reflect.Type, prefix string) error {
	if node.Kind != yaml.MappingNode || t.Kind() != reflect.Struct {
		return nil // wrong shapes are left to the decoder's type errors
	}
	var problems []error
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, value := node.Content[i], node.Content[i+1]
		if key.Value == "<<" {
			continue // merge key; the decoder checks what it merges
		}
		path := prefix + key.Value
		field, ok := fieldByYAMLName(t, key.Value)
		if !ok {
			problems = append(problems, fmt.Errorf("line %d: unknown key %q", key.Line, path))
			continue
		}
		switch {
		case field.Type == durationType && value.Kind == yaml.ScalarNode && value.Tag == "!!int":
			problems = append(problems, fmt.Errorf("line %d: %s: a duration needs a unit, e.g. %q, got %s",
				value.Line, path, value.Value+"s", value.Value))
		case field.Type.Kind() == reflect.Struct:
			if err := checkKeys(value, field.Type, path+"."); err != nil {
				problems = append(problems, err)
			}
		}
	}
	return errors.Join(problems...)
}

func fieldByYAMLName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// Validate checks every field and returns all problems at once (joined with
// errors.Join). Each problem names the field by its yaml path and shows the
// offending value, e.g. "limits.max_body: must be > 0, got -1".
func (c *Config) Validate() error {
	var v validator

	v.nonEmpty("listen", c.Listen)
	v.positiveDuration("shutdown_timeout", c.ShutdownTimeout)

	v.amqpURLs("amqp.url", c.AMQP.URL)
	v.positiveDuration("amqp.dial_timeout", c.AMQP.DialTimeout)
	v.positiveDuration("amqp.heartbeat", c.AMQP.Heartbeat)

	// semantics 2.3: defaults apply as a pair, so half a pair is a mistake.
	// The passcode itself is never echoed.
	switch {
	case c.Auth.DefaultLogin != "" && c.Auth.DefaultPasscode == "":
		v.add("auth.default_passcode", "must be set when auth.default_login is set (%q), got \"\"", c.Auth.DefaultLogin)
	case c.Auth.DefaultLogin == "" && c.Auth.DefaultPasscode != "":
		v.add("auth.default_login", "must be set when auth.default_passcode is set, got \"\"")
	}

	v.nonEmpty("vhosts.default", c.VHosts.Default)
	v.oneOf("vhosts.unmapped", c.VHosts.Unmapped, "passthrough", "default", "reject")
	v.oneOf("amqp.profile", c.AMQP.Profile, "auto", "rabbitmq", "qpid", "generic")
	v.positive("amqp.sessions_per_connection", int64(c.AMQP.SessionsPerConnection))
	v.positiveDuration("amqp.resume_timeout", c.AMQP.ResumeTimeout)
	v.oneOf("stomp.default_queue_type", c.STOMP.DefaultQueueType, "", "classic", "quorum")
	seenHosts := make(map[string]string, len(c.VHosts.Map))
	for host, vhost := range c.VHosts.Map {
		v.nonEmpty("vhosts.map."+host, vhost)
		// semantics 2.4: host keys match case-insensitively.
		folded := strings.ToLower(host)
		if other, dup := seenHosts[folded]; dup {
			v.add("vhosts.map", "keys %q and %q differ only in case (hosts match case-insensitively)", other, host)
		}
		seenHosts[folded] = host
	}

	v.nonEmpty("stomp.default_topic_exchange", c.STOMP.DefaultTopicExchange)
	v.positiveDuration("stomp.disconnect_timeout", c.STOMP.DisconnectTimeout)
	v.positiveDuration("stomp.error_linger", c.STOMP.ErrorLinger)
	v.oneOf("stomp.dialect", c.STOMP.Dialect, "", DialectActiveMQ)
	if c.STOMP.MaxRedeliveries < 0 {
		v.add("stomp.max_redeliveries", "must be >= 0 (0: no limit), got %d", c.STOMP.MaxRedeliveries)
	}
	v.positiveDuration("stomp.max_scheduled_delay", c.STOMP.MaxScheduledDelay)

	v.positiveDuration("heartbeat.send_min", c.Heartbeat.SendMin)
	v.positiveDuration("heartbeat.recv_min", c.Heartbeat.RecvMin)
	if !(c.Heartbeat.Tolerance >= 1) || math.IsInf(c.Heartbeat.Tolerance, 0) {
		v.add("heartbeat.tolerance", "must be a finite number >= 1, got %v", c.Heartbeat.Tolerance)
	}
	if c.Heartbeat.IdleTimeout < 0 {
		v.add("heartbeat.idle_timeout", "must be >= 0 (0 disables it), got %v", c.Heartbeat.IdleTimeout)
	}

	v.positive("limits.max_header_line", int64(c.Limits.MaxHeaderLine))
	v.positive("limits.max_headers", int64(c.Limits.MaxHeaders))
	v.positive("limits.max_header_bytes", int64(c.Limits.MaxHeaderBytes))
	v.positive("limits.max_body", c.Limits.MaxBody)
	v.positive("limits.max_preconnect_bytes", c.Limits.MaxPreconnectBytes)
	v.positiveDuration("limits.connect_timeout", c.Limits.ConnectTimeout)
	v.positive("limits.max_connections", int64(c.Limits.MaxConnections))
	if c.Limits.MaxConnectionsPerClient < 0 {
		v.add("limits.max_connections_per_client", "must be >= 0 (0 disables it), got %d", c.Limits.MaxConnectionsPerClient)
	}
	v.positive("limits.max_subscriptions", int64(c.Limits.MaxSubscriptions))

	// semantics 6.1: prefetch-count is clamped to max_prefetch, so the
	// default must lie within it.
	if c.Flow.DefaultPrefetch < 1 {
		v.add("flow.default_prefetch", "must be >= 1, got %d", c.Flow.DefaultPrefetch)
	}
	if c.Flow.MaxPrefetch < c.Flow.DefaultPrefetch {
		v.add("flow.max_prefetch", "must be >= flow.default_prefetch (%d), got %d", c.Flow.DefaultPrefetch, c.Flow.MaxPrefetch)
	}
	v.positive("flow.max_unconfirmed", int64(c.Flow.MaxUnconfirmed))
	v.positive("flow.max_outbound_bytes", c.Flow.MaxOutboundBytes)
	v.positiveDuration("flow.write_timeout", c.Flow.WriteTimeout)

	v.positive("transactions.max_open", int64(c.Transactions.MaxOpen))
	v.positive("transactions.max_actions", int64(c.Transactions.MaxActions))
	v.positive("transactions.max_bytes", c.Transactions.MaxBytes)

	if _, err := logrus.ParseLevel(c.Log.Level); err != nil {
		v.add("log.level", "must be one of panic, fatal, error, warn, info, debug, trace, got %q", c.Log.Level)
	}
	v.oneOf("log.format", c.Log.Format, "text", "json")

	v.deployment(c)
	v.tokens(c)

	return errors.Join(v.problems...)
}

// deployment checks the websocket, tls, admin and amqp.tls sections. The
// certificate files are loaded here, so check-config catches a bad path or
// a key that does not match its certificate.
func (v *validator) deployment(c *Config) {
	if c.WebSocket.Listen != "" && !strings.HasPrefix(c.WebSocket.Path, "/") {
		v.add("websocket.path", "must start with \"/\", got %q", c.WebSocket.Path)
	}
	for _, pattern := range c.WebSocket.AllowedOrigins {
		if _, err := path.Match(pattern, ""); err != nil {
			v.add("websocket.allowed_origins", "bad pattern %q: %v", pattern, err)
		}
	}
	needServerTLS := c.TLS.Listen != "" || (c.WebSocket.Listen != "" && c.WebSocket.TLS)
	if needServerTLS || c.TLS.CertFile != "" || c.TLS.KeyFile != "" || c.TLS.ClientCAFile != "" {
		for _, f := range []struct{ field, value string }{{"tls.cert_file", c.TLS.CertFile}, {"tls.key_file", c.TLS.KeyFile}} {
			if f.value == "" {
				why := "tls.listen is set"
				if c.TLS.Listen == "" {
					why = "websocket.tls is true"
				}
				if !needServerTLS {
					why = "the other TLS files are set"
				}
				v.add(f.field, "must be set when %s, got \"\"", why)
			}
		}
		if c.TLS.VerifyClient && c.TLS.ClientCAFile == "" {
			v.add("tls.client_ca_file", "must be set when tls.verify_client is true, got \"\"")
		}
		if c.TLS.CertFile != "" && c.TLS.KeyFile != "" {
			if _, err := ServerTLS(c.TLS); err != nil {
				v.problems = append(v.problems, err) // names its field
			}
		}
	}
	if _, err := AMQPTLS(c.AMQP.TLS); err != nil {
		v.problems = append(v.problems, err) // names its field
	}
	if c.AMQP.TLS != (AMQPTLSConfig{}) && !strings.Contains(c.AMQP.URL, "amqps://") {
		v.add("amqp.tls", "is set but amqp.url has no amqps:// URL (%q)", redactURLs(c.AMQP.URL))
	}
}

// validator collects the problems Validate finds.
type validator struct{ problems []error }

func (v *validator) add(field, format string, args ...any) {
	v.problems = append(v.problems, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
}

func (v *validator) nonEmpty(field, value string) {
	if strings.TrimSpace(value) == "" {
		v.add(field, "must not be empty, got %q", value)
	}
}

func (v *validator) positive(field string, value int64) {
	if value <= 0 {
		v.add(field, "must be > 0, got %d", value)
	}
}

func (v *validator) positiveDuration(field string, value time.Duration) {
	if value <= 0 {
		v.add(field, "must be > 0, got %v", value)
	}
}

func (v *validator) oneOf(field, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	v.add(field, "must be one of %s, got %q", strings.Join(allowed, ", "), value)
}

// amqpURLs accepts one broker URL or a comma-separated list of them (kept
// open for failover); each must be amqp:// or amqps:// with a host. Only
// scheme, host, port and TLS are used (semantics 1). Bad URLs are reported
// without their userinfo so no password reaches a log.
func (v *validator) amqpURLs(field, value string) {
	if strings.TrimSpace(value) == "" {
		v.add(field, "must not be empty, got %q", value)
		return
	}
	for _, raw := range strings.Split(value, ",") {
		raw = strings.TrimSpace(raw)
		u, err := url.Parse(raw)
		switch {
		case raw == "":
			v.add(field, "empty element in comma-separated list %q", redactURLs(value))
		case err != nil:
			reason := err
			var urlErr *url.Error
			if errors.As(err, &urlErr) {
				reason = urlErr.Err // url.Error repeats the URL, password included
			}
			v.add(field, "cannot parse %q: %v", redactURL(raw), reason)
		case u.Scheme != "amqp" && u.Scheme != "amqps":
			v.add(field, "scheme must be amqp or amqps, got %q in %q", u.Scheme, redactURL(raw))
		case u.Hostname() == "":
			v.add(field, "missing host in %q", redactURL(raw))
		}
	}
}

func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		parts[i] = redactURL(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

// redactURL replaces a password in raw by "xxxxx". A string that does not
// parse is cut before its last "@", which is where userinfo would end.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if at := strings.LastIndex(raw, "@"); at >= 0 {
			return "<redacted>" + raw[at:]
		}
		return raw
	}
	return u.Redacted()
}

// BrokerURLs parses a comma-separated list of amqp:// or amqps:// URLs and
// strips userinfo and path from each.
func BrokerURLs(list string) ([]string, error) {
	var urls []string
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("amqp.url %q: %w", raw, err)
		}
		if u.Scheme != "amqp" && u.Scheme != "amqps" {
			return nil, fmt.Errorf("amqp.url %q: scheme must be amqp or amqps", raw)
		}
		host := u.Host
		if u.Port() == "" {
			port := "5672"
			if u.Scheme == "amqps" {
				port = "5671"
			}
			host = net.JoinHostPort(u.Hostname(), port)
		}
		urls = append(urls, u.Scheme+"://"+host+"/")
	}
	if len(urls) == 0 {
		return nil, errors.New("amqp.url is empty")
	}
	return urls, nil
}

// tokens checks auth.jwt and acl.rules. The rules are compiled here, so
// check-config reports a bad pattern by its index.
func (v *validator) tokens(c *Config) {
	j := c.Auth.JWT
	v.oneOf("auth.jwt.broker_mode", j.BrokerMode, BrokerModeGateway, BrokerModePassthrough)
	if j.JWKSURL != "" {
		if u, err := url.Parse(j.JWKSURL); err != nil || u.Scheme != "https" || u.Host == "" {
			v.add("auth.jwt.jwks_url", "must be an https:// URL, got %q", j.JWKSURL)
		}
	}
	if j.Leeway < 0 {
		v.add("auth.jwt.leeway", "must be >= 0, got %v", j.Leeway)
	}
	v.positiveDuration("auth.jwt.jwks_refresh_interval", j.JWKSRefreshInterval)
	v.nonEmpty("auth.jwt.user_claim", j.UserClaim)
	if len(j.Algorithms) == 0 {
		v.add("auth.jwt.algorithms", "must name at least one algorithm, got []")
	} else if err := auth.CheckAlgorithms(j.Algorithms); err != nil {
		v.add("auth.jwt.algorithms", "%v", err)
	}
	if j.CAFile != "" {
		if _, err := os.ReadFile(j.CAFile); err != nil {
			v.add("auth.jwt.ca_file", "cannot read %q: %v", j.CAFile, err)
		}
	}
	if !j.Enabled() {
		if j.Required {
			v.add("auth.jwt.required", "is true but neither auth.jwt.jwks_file nor auth.jwt.jwks_url is set")
		}
	} else {
		switch j.BrokerMode {
		case BrokerModeGateway:
			if j.ServiceUser == "" || j.ServicePasscode == "" {
				v.add("auth.jwt.service_user", "auth.jwt.service_user and auth.jwt.service_passcode must be set in broker_mode gateway (user %q)", j.ServiceUser)
			}
		case BrokerModePassthrough:
			if c.AMQP.SharedConnections {
				v.add("auth.jwt.broker_mode", "passthrough needs one AMQP connection per session (each has its own token): amqp.shared_connections must be false")
			}
		}
	}
	rules := make([]auth.Rule, 0, len(c.ACL.Rules))
	for i, r := range c.ACL.Rules {
		rule := auth.Rule{Destination: r.Destination}
		for _, verb := range r.Allow {
			if verb != string(auth.VerbSend) && verb != string(auth.VerbSubscribe) {
				v.add(fmt.Sprintf("acl.rules[%d].allow", i), "verbs are send and subscribe, got %q", verb)
			}
			rule.Allow = append(rule.Allow, auth.Verb(verb))
		}
		rules = append(rules, rule)
	}
	if _, err := auth.NewRules(rules); err != nil {
		v.add("acl.rules", "%v", err)
	}
}

// AuthRules converts acl.rules for auth.NewRules (Validate has checked them).
func (a ACLConfig) AuthRules() []auth.Rule {
	rules := make([]auth.Rule, 0, len(a.Rules))
	for _, r := range a.Rules {
		rule := auth.Rule{Destination: r.Destination}
		for _, verb := range r.Allow {
			rule.Allow = append(rule.Allow, auth.Verb(verb))
		}
		rules = append(rules, rule)
	}
	return rules
}
