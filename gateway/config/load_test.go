package config

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const exampleConfigPath = "../../config.example.yaml"

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stompgate.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// joinedErrors splits an errors.Join result into its parts.
func joinedErrors(err error) []error {
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		return multi.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

func TestExampleConfigLoadsToDefaultConfig(t *testing.T) {
	cfg, err := Load(exampleConfigPath)
	if err != nil {
		t.Fatalf("Load(%s): %v", exampleConfigPath, err)
	}
	if want := DefaultConfig(); !reflect.DeepEqual(cfg, want) {
		t.Errorf("config.example.yaml differs from DefaultConfig():\n got %+v\nwant %+v", cfg, want)
	}
}

// Decoding the example onto a zero Config (rather than onto the defaults)
// proves it sets every non-zero default itself instead of inheriting it.
func TestExampleConfigSpellsOutEveryDefault(t *testing.T) {
	data, err := os.ReadFile(exampleConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	if err := decodeConfig(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if want := DefaultConfig(); !reflect.DeepEqual(cfg, want) {
		t.Errorf("config.example.yaml decoded onto a zero Config:\n got %+v\nwant %+v", cfg, want)
	}
}

// Keys whose default is the zero value are only caught by comparing the key
// sets: every Config key must appear in the example, and nothing else.
func TestExampleConfigHasExactlyTheConfigKeys(t *testing.T) {
	data, err := os.ReadFile(exampleConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	got := yamlKeyPaths(doc.Content[0], "")
	want := structKeyPaths(reflect.TypeOf(Config{}), "")
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keys in config.example.yaml:\n got %v\nwant %v", got, want)
	}
}

func yamlKeyPaths(node *yaml.Node, prefix string) []string {
	var paths []string
	for i := 0; i+1 < len(node.Content); i += 2 {
		path := prefix + node.Content[i].Value
		// A mapping value is a section unless the key is a map-typed field
		// (vhosts.map), whose keys are data.
		if node.Content[i+1].Kind == yaml.MappingNode && path != "vhosts.map" {
			paths = append(paths, yamlKeyPaths(node.Content[i+1], path+".")...)
			continue
		}
		paths = append(paths, path)
	}
	return paths
}

func structKeyPaths(t reflect.Type, prefix string) []string {
	var paths []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
			paths = append(paths, structKeyPaths(f.Type, prefix+name+".")...)
			continue
		}
		paths = append(paths, prefix+name)
	}
	return paths
}

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
}

func TestLoadConfigOverridesOnlyTheKeysGiven(t *testing.T) {
	path := writeConfig(t, "listen: 127.0.0.1:0\nlimits:\n  max_body: 1024\nheartbeat:\n  idle_timeout: 1m\n")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Listen = "127.0.0.1:0"
	want.Limits.MaxBody = 1024
	want.Heartbeat.IdleTimeout = time.Minute
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got %+v\nwant %+v", cfg, want)
	}
}

func TestLoadConfigEmptyFileIsDefaults(t *testing.T) {
	cfg, err := Load(writeConfig(t, "# nothing set\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, DefaultConfig()) {
		t.Errorf("got %+v, want DefaultConfig()", cfg)
	}
}

func TestLoadConfigRejectsBadDocuments(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string // all must appear in the error
	}{
		{"unknown top-level key", "listen: :1\nlisten_addr: :2\n", []string{`line 2: unknown key "listen_addr"`}},
		{"unknown nested key", "limits:\n  max_body: 5\n  max_bodyy: 5\n", []string{`line 3: unknown key "limits.max_bodyy"`}},
		{"unknown key in every section is reported", "amqp:\n  uri: x\nflow:\n  prefetch: 1\n",
			[]string{`unknown key "amqp.uri"`, `unknown key "flow.prefetch"`}},
		{"duration without unit", "stomp:\n  error_linger: 5\n", []string{"line 2: stomp.error_linger: a duration needs a unit", `"5s"`}},
		{"zero duration without unit", "heartbeat:\n  idle_timeout: 0\n", []string{"heartbeat.idle_timeout", `"0s"`}},
		{"wrong type", "limits:\n  max_body: lots\n", []string{"line 2", "lots"}},
		{"syntax error", "limits: [\n", []string{"yaml"}},
		{"two documents", "listen: :1\n---\nlisten: :2\n", []string{"single YAML document"}},
		{"valid YAML, invalid value", "log:\n  format: xml\n", []string{`log.format: must be one of text, json, got "xml"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.text)
			_, err := Load(path)
			if err == nil {
				t.Fatalf("Load accepted:\n%s", tt.text)
			}
			if !strings.HasPrefix(err.Error(), path+": ") {
				t.Errorf("error %q does not start with the file name", err)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestLoadConfigExpandsEnvironment(t *testing.T) {
	t.Setenv("STOMPGATE_TEST_HOST", "broker.internal")
	t.Setenv("STOMPGATE_TEST_LOGIN", "svc")
	t.Setenv("STOMPGATE_TEST_PASSCODE", "pa$$word")
	t.Setenv("STOMPGATE_TEST_UNSET_IN_COMMENT", "") // then unset below
	if err := os.Unsetenv("STOMPGATE_TEST_UNSET_IN_COMMENT"); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, `# comment lines are not expanded: ${STOMPGATE_TEST_UNSET_IN_COMMENT}
amqp:
  url: amqps://${STOMPGATE_TEST_HOST}:5671/
auth:
  default_login: ${STOMPGATE_TEST_LOGIN}
  default_passcode: "${STOMPGATE_TEST_PASSCODE}"
vhosts:
  default: "$${literal}"
`)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "amqps://broker.internal:5671/"; cfg.AMQP.URL != want {
		t.Errorf("amqp.url = %q, want %q", cfg.AMQP.URL, want)
	}
	if cfg.Auth.DefaultLogin != "svc" || cfg.Auth.DefaultPasscode != "pa$$word" {
		t.Errorf("auth = %q/%q, want svc/pa$$word (values are not expanded twice)", cfg.Auth.DefaultLogin, cfg.Auth.DefaultPasscode)
	}
	if want := "${literal}"; cfg.VHosts.Default != want {
		t.Errorf("vhosts.default = %q, want %q", cfg.VHosts.Default, want)
	}
}

func TestLoadConfigUnsetEnvironmentIsAnError(t *testing.T) {
	t.Setenv("STOMPGATE_TEST_MISSING", "")
	if err := os.Unsetenv("STOMPGATE_TEST_MISSING"); err != nil {
		t.Fatal(err)
	}
	_, err := Load(writeConfig(t, "listen: :1\nauth:\n  default_login: ${STOMPGATE_TEST_MISSING}\n  default_passcode: ${not a name}\n"))
	if err == nil {
		t.Fatal("Load accepted an unset variable")
	}
	for _, want := range []string{"line 3: environment variable STOMPGATE_TEST_MISSING is not set", "line 4: ${not a name} is not a valid"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestValidateRules(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // the single problem reported
	}{
		{"listen empty", func(c *Config) { c.Listen = "" }, `listen: must not be empty, got ""`},
		{"shutdown_timeout zero", func(c *Config) { c.ShutdownTimeout = 0 }, "shutdown_timeout: must be > 0, got 0s"},
		{"amqp.url empty", func(c *Config) { c.AMQP.URL = "" }, `amqp.url: must not be empty`},
		{"amqp.url scheme", func(c *Config) { c.AMQP.URL = "http://h:5672/" }, `amqp.url: scheme must be amqp or amqps, got "http"`},
		{"amqp.url no host", func(c *Config) { c.AMQP.URL = "amqp:///vhost" }, `amqp.url: missing host`},
		{"amqp.url unparsable", func(c *Config) { c.AMQP.URL = "amqp://h:port/" }, `amqp.url: cannot parse`},
		{"amqp.url bad list element", func(c *Config) { c.AMQP.URL = "amqp://a/, ftp://b/" }, `amqp.url: scheme must be amqp or amqps, got "ftp"`},
		{"amqp.url empty list element", func(c *Config) { c.AMQP.URL = "amqp://a/,,amqp://b/" }, `amqp.url: empty element`},
		{"amqp.dial_timeout", func(c *Config) { c.AMQP.DialTimeout = -time.Second }, "amqp.dial_timeout: must be > 0, got -1s"},
		{"amqp.heartbeat", func(c *Config) { c.AMQP.Heartbeat = 0 }, "amqp.heartbeat: must be > 0"},
		{"auth login without passcode", func(c *Config) { c.Auth.DefaultLogin = "svc" }, `auth.default_passcode: must be set when auth.default_login is set ("svc")`},
		{"auth passcode without login", func(c *Config) { c.Auth.DefaultPasscode = "secret" }, "auth.default_login: must be set when auth.default_passcode is set"},
		{"vhosts.default empty", func(c *Config) { c.VHosts.Default = "" }, "vhosts.default: must not be empty"},
		{"vhosts.unmapped", func(c *Config) { c.VHosts.Unmapped = "drop" }, `vhosts.unmapped: must be one of passthrough, default, reject, got "drop"`},
		{"vhosts.map empty vhost", func(c *Config) { c.VHosts.Map = map[string]string{"a.example": ""} }, `vhosts.map.a.example: must not be empty`},
		{"vhosts.map case duplicate", func(c *Config) { c.VHosts.Map = map[string]string{"A.example": "x", "a.example": "y"} }, "differ only in case"},
		{"stomp.default_topic_exchange", func(c *Config) { c.STOMP.DefaultTopicExchange = "" }, "stomp.default_topic_exchange: must not be empty"},
		{"stomp.disconnect_timeout", func(c *Config) { c.STOMP.DisconnectTimeout = 0 }, "stomp.disconnect_timeout: must be > 0"},
		{"stomp.error_linger", func(c *Config) { c.STOMP.ErrorLinger = 0 }, "stomp.error_linger: must be > 0"},
		{"heartbeat.send_min", func(c *Config) { c.Heartbeat.SendMin = 0 }, "heartbeat.send_min: must be > 0"},
		{"heartbeat.recv_min", func(c *Config) { c.Heartbeat.RecvMin = -1 }, "heartbeat.recv_min: must be > 0, got -1ns"},
		{"heartbeat.tolerance below 1", func(c *Config) { c.Heartbeat.Tolerance = 0.5 }, "heartbeat.tolerance: must be a finite number >= 1, got 0.5"},
		{"heartbeat.tolerance NaN", func(c *Config) { c.Heartbeat.Tolerance = math.NaN() }, "heartbeat.tolerance: must be a finite number >= 1, got NaN"},
		{"heartbeat.tolerance Inf", func(c *Config) { c.Heartbeat.Tolerance = math.Inf(1) }, "heartbeat.tolerance: must be a finite number >= 1, got +Inf"},
		{"heartbeat.idle_timeout negative", func(c *Config) { c.Heartbeat.IdleTimeout = -time.Second }, "heartbeat.idle_timeout: must be >= 0"},
		{"limits.max_header_line", func(c *Config) { c.Limits.MaxHeaderLine = 0 }, "limits.max_header_line: must be > 0, got 0"},
		{"limits.max_headers", func(c *Config) { c.Limits.MaxHeaders = -3 }, "limits.max_headers: must be > 0, got -3"},
		{"limits.max_header_bytes", func(c *Config) { c.Limits.MaxHeaderBytes = 0 }, "limits.max_header_bytes: must be > 0"},
		{"limits.max_body", func(c *Config) { c.Limits.MaxBody = -1 }, "limits.max_body: must be > 0, got -1"},
		{"limits.max_preconnect_bytes", func(c *Config) { c.Limits.MaxPreconnectBytes = 0 }, "limits.max_preconnect_bytes: must be > 0"},
		{"limits.connect_timeout", func(c *Config) { c.Limits.ConnectTimeout = 0 }, "limits.connect_timeout: must be > 0"},
		{"limits.max_connections", func(c *Config) { c.Limits.MaxConnections = 0 }, "limits.max_connections: must be > 0"},
		{"limits.max_subscriptions", func(c *Config) { c.Limits.MaxSubscriptions = 0 }, "limits.max_subscriptions: must be > 0"},
		{"flow.default_prefetch", func(c *Config) { c.Flow.DefaultPrefetch = 0 }, "flow.default_prefetch: must be >= 1, got 0"},
		{"flow.max_prefetch below default", func(c *Config) { c.Flow.MaxPrefetch = 999 }, "flow.max_prefetch: must be >= flow.default_prefetch (1000), got 999"},
		{"flow.max_unconfirmed", func(c *Config) { c.Flow.MaxUnconfirmed = 0 }, "flow.max_unconfirmed: must be > 0"},
		{"flow.max_outbound_bytes", func(c *Config) { c.Flow.MaxOutboundBytes = 0 }, "flow.max_outbound_bytes: must be > 0"},
		{"flow.write_timeout", func(c *Config) { c.Flow.WriteTimeout = 0 }, "flow.write_timeout: must be > 0"},
		{"transactions.max_open", func(c *Config) { c.Transactions.MaxOpen = 0 }, "transactions.max_open: must be > 0"},
		{"transactions.max_actions", func(c *Config) { c.Transactions.MaxActions = 0 }, "transactions.max_actions: must be > 0"},
		{"transactions.max_bytes", func(c *Config) { c.Transactions.MaxBytes = 0 }, "transactions.max_bytes: must be > 0"},
		{"log.level", func(c *Config) { c.Log.Level = "verbose" }, `log.level: must be one of panic, fatal, error, warn, info, debug, trace, got "verbose"`},
		{"log.format", func(c *Config) { c.Log.Format = "logfmt" }, `log.format: must be one of text, json, got "logfmt"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("Validate accepted the config")
			}
			problems := joinedErrors(err)
			if len(problems) != 1 {
				t.Fatalf("want exactly one problem, got %d: %v", len(problems), err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestValidateAcceptsEdgeValues(t *testing.T) {
	cfg := DefaultConfig()
	cfg.AMQP.URL = "amqps://user:pw@a.example:5671/, amqp://b.example"
	cfg.Heartbeat.Tolerance = 1
	cfg.Heartbeat.IdleTimeout = 0
	cfg.Flow.DefaultPrefetch, cfg.Flow.MaxPrefetch = 1, 1
	cfg.Auth.DefaultLogin, cfg.Auth.DefaultPasscode = "svc", "pw"
	cfg.Log.Level = "trace"
	cfg.Log.Format = "json"
	cfg.VHosts.Unmapped = "reject"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen = ""
	cfg.Limits.MaxBody = -1
	cfg.Log.Format = "xml"
	err := cfg.Validate()
	if got := len(joinedErrors(err)); got != 3 {
		t.Fatalf("want 3 problems, got %d: %v", got, err)
	}
	for _, field := range []string{"listen:", "limits.max_body:", "log.format:"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error %q does not name %s", err, field)
		}
	}
}

// semantics 2.3: passcodes are never logged, and a config error is logged.
func TestValidateDoesNotEchoPasswords(t *testing.T) {
	for _, url := range []string{"http://user:s3cret@h/", "amqp://user:s3cret@h:port/", "amqp://user:s3cret@/"} {
		cfg := DefaultConfig()
		cfg.AMQP.URL = url
		cfg.Auth.DefaultPasscode = "s3cret"
		err := cfg.Validate()
		if err == nil {
			t.Fatalf("Validate accepted %q", url)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error for %q leaks the password: %v", url, err)
		}
	}
}
