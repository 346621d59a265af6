// Command stompgate runs the STOMP ⇄ AMQP 0-9-1 gateway.
//
//	stompgate serve [--config FILE] [--listen ADDR] [--amqp-url URL] [--tls-listen ADDR]
//	                [--ws-listen ADDR] [--http-listen ADDR] [--pprof] [--log-level L] [--log-format text|json]
//	stompgate check-config --config FILE
//	stompgate version
//
// This package owns flags, environment variables, logger setup and signal
// handling (style.md practice 1). It loads and validates the config file
// with gateway/config (check-config needs nothing else) and hands the result
// to gateway.Run; everything else lives in package gateway and below it.
// SIGINT or SIGTERM cancels the context that serve passes to gateway.Run,
// which shuts down gracefully (semantics 15) and exits 0.
//
// Goroutines: main's own, and the signal watcher that forces exit on a
// second signal. Imports: gateway, gateway/config, urfave/cli/v2, logrus.
package main
