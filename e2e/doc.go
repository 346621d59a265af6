//go:build e2e

// Package e2e tests stompgate end to end: the real RabbitMQ, the real
// gateway running in-process on 127.0.0.1:0, and real STOMP clients (go-stomp,
// raw frames over TCP, and the scripting clients under clients/ run as
// subprocesses). See style.md practice 14.
//
// Run with:
//
//	go test -race -tags e2e -count=1 ./e2e/...
//
// Environment:
//
//	AMQP_URL                 broker (default amqp://guest:guest@127.0.0.1:5672/)
//	STOMPGATE_E2E_TARGET     host:port of an external STOMP server (e.g. the
//	                         rabbitmq_stomp plugin) to test instead of the
//	                         in-process gateway; tests that check deliberate
//	                         differences (semantics.md section 16) say so when
//	                         they skip or relax a check.
//	STOMPGATE_E2E_PYTHON     python3 interpreter with stomp.py and stomper
//	                         (default /usr/bin/python3 if present, else python3)
package e2e
