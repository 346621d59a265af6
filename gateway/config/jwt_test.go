package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// auth.jwt and acl problems are reported with the key that has them.
func TestValidateTokensAndRules(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(c *Config)
		want   string // "" means valid
	}{
		{"defaults", func(c *Config) {}, ""},
		{"gateway mode", func(c *Config) {
			c.Auth.JWT.JWKSFile, c.Auth.JWT.ServiceUser, c.Auth.JWT.ServicePasscode = "/etc/jwks.json", "svc", "pw"
		}, ""},
		{"gateway mode without a service user", func(c *Config) { c.Auth.JWT.JWKSFile = "/etc/jwks.json" }, "auth.jwt.service_user"},
		{"unknown broker mode", func(c *Config) { c.Auth.JWT.BrokerMode = "direct" }, "auth.jwt.broker_mode: must be one of gateway, passthrough"},
		{"passthrough with shared connections", func(c *Config) {
			c.Auth.JWT.JWKSURL, c.Auth.JWT.BrokerMode, c.AMQP.SharedConnections = "https://id.example.com/jwks", BrokerModePassthrough, true
		}, "amqp.shared_connections must be false"},
		{"plain http JWKS", func(c *Config) {
			c.Auth.JWT.JWKSURL, c.Auth.JWT.BrokerMode = "http://id.example.com/jwks", BrokerModePassthrough
		}, "auth.jwt.jwks_url: must be an https:// URL"},
		{"HMAC algorithm", func(c *Config) { c.Auth.JWT.Algorithms = []string{"HS256"} }, `auth.jwt.algorithms: algorithm "HS256" is not allowed`},
		{"negative leeway", func(c *Config) { c.Auth.JWT.Leeway = -1 }, "auth.jwt.leeway: must be >= 0"},
		{"required without keys", func(c *Config) { c.Auth.JWT.Required = true }, "auth.jwt.required"},
		{"unknown verb", func(c *Config) {
			c.ACL.Rules = []ACLRule{{Allow: []string{"send"}, Destination: "/queue/a"}, {Allow: []string{"publish"}, Destination: "/queue/b"}}
		}, `acl.rules[1].allow: verbs are send and subscribe, got "publish"`},
		{"bad pattern", func(c *Config) { c.ACL.Rules = []ACLRule{{Allow: []string{"send"}, Destination: "/queue/**"}} }, "acl.rules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// The issue's configuration contract loads as written.
func TestLoadIssueContract(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stompgate.yaml")
	t.Setenv("SVC_PASS", "s3cret")
	doc := `auth:
  jwt:
    jwks_file: /etc/stompgate/jwks.json
    issuer: https://id.example.com/
    audience: stompgate
    broker_mode: gateway
    service_user: svc-stomp
    service_passcode: ${SVC_PASS}
acl:
  rules:
    - { allow: [subscribe], destination: "/topic/prices.*" }
    - { allow: [send, subscribe], destination: "/queue/user.{user}" }
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Auth.JWT.ServicePasscode != "s3cret" || !c.Auth.JWT.Enabled() || len(c.ACL.Rules) != 2 || c.ACL.Rules[1].Allow[1] != "subscribe" {
		t.Fatalf("loaded %+v / %+v", c.Auth.JWT, c.ACL)
	}
	if got := c.ACL.AuthRules(); len(got) != 2 || string(got[0].Allow[0]) != "subscribe" || got[1].Destination != "/queue/user.{user}" {
		t.Fatalf("AuthRules = %+v", got)
	}
}
