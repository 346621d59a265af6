// Package config is stompgate's configuration: the Config types with a
// yaml tag and comment on every field, DefaultConfig, Load (strict YAML
// decoding with ${ENV} expansion, unknown keys are errors), Validate (every
// problem names its key), and the TLS material built from it (ServerTLS for
// the STOMP and WSS listeners, AMQPTLS for amqps:// brokers) and the broker
// URL list (BrokerURLs).
//
// config.example.yaml at the repository root documents every key and is
// checked against DefaultConfig by a unit test. cmd/stompgate uses this
// package for serve and check-config, so checking a file needs no session
// code.
//
// Goroutines: none. Imports: the standard library, yaml.v3 and gateway/auth
// (Validate compiles acl.rules and checks auth.jwt.algorithms with it, so
// check-config refuses a bad rule); never the session core.
package config
