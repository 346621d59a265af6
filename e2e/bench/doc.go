// Command bench measures stompgate side by side with direct AMQP and,
// optionally, RabbitMQ's own STOMP plugin (issue 6).
//
// How to run (no Makefile needed; RabbitMQ must answer at -amqp):
//
//	go run ./e2e/bench                              # AMQP vs stompgate, 5 rounds x 3 s
//	go run ./e2e/bench -plugin 127.0.0.1:61613      # also rabbitmq_stomp
//	go run ./e2e/bench -rounds 9 -duration 10s -idle-sessions 5000  # needs a broker with more than 1024 fds
//	go run ./e2e/bench -scenarios 1k,latency -cpuprofile /tmp/sg.prof
//
// The plugin must already be enabled (`rabbitmq-plugins enable
// rabbitmq_stomp`); the benchmark never changes broker configuration.
//
// Every scenario runs in alternating rounds (AMQP, stompgate, plugin,
// AMQP, stompgate, plugin, ...) in one process, each round on a fresh
// durable queue that is declared the way STOMP /queue/<name> declares it and
// deleted afterwards. stompgate runs in-process on 127.0.0.1:0. Each round
// checks that every message arrived exactly once (sequence numbers in the
// body). The tables report medians over rounds and ratios of those medians
// to direct AMQP from the same run; on a shared, noisy machine only the
// ratios mean much.
//
// CPU per message is getrusage(RUSAGE_SELF) of this process over the round
// divided by messages delivered. It includes the benchmark's own producers
// and consumers (amqp091-go or the STOMP client) and, in stompgate rounds,
// the in-process gateway with its amqp091-go connections. The broker's CPU
// (utime+stime of its beam.smp from /proc, 10 ms resolution) is reported
// separately; the plugin's work is inside it.
//
// Memory per idle session opens -idle-sessions sessions with one
// subscription each and no traffic. For stompgate it is the growth of this
// process's Go heap+stacks (the gateway; the raw idle clients keep only a
// socket); for AMQP and the plugin, the growth of the broker's RSS. The
// broker RSS growth of stompgate's own AMQP connections is in the details.
//
// This package is a command, not a test: `go test ./...` only runs its
// short unit tests of the statistics.
package main
