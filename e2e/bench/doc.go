// Command bench measures stompgate side by side with direct AMQP and,
// optionally, RabbitMQ's own STOMP plugin (issues 6 and 12).
//
// How to run (no Makefile needed; RabbitMQ must answer at -amqp):
//
//	go run ./e2e/bench                              # AMQP vs stompgate, 5 rounds x 3 s
//	go run ./e2e/bench -plugin 127.0.0.1:61613      # also rabbitmq_stomp
//	go run ./e2e/bench -rounds 9 -duration 10s -idle-sessions 5000  # needs a broker with more than 1024 fds
//	go run ./e2e/bench -scenarios 1k,latency -cpuprofile /tmp/sg.prof
//	go run ./e2e/bench -quick -plugin 127.0.0.1:61613   # 3 rounds x 2 s, about 6-8 min
//
// The plugin must already be enabled (`rabbitmq-plugins enable
// rabbitmq_stomp`); the benchmark never changes broker configuration.
//
// Every scenario runs in alternating rounds (AMQP, stompgate, plugin,
// AMQP, stompgate, plugin, ...) in one process, each round on a fresh
// durable queue that is declared the way STOMP /queue/<name> declares it and
// deleted afterwards. stompgate runs as it is deployed: cmd/stompgate is
// built once per run and started with `serve --config` on 127.0.0.1:0 (its
// address and its admin listener's read from its JSON log); -in-process
// runs it inside this process instead. Each STOMP server is driven by every
// client of -stomp-client (go-stomp and the raw client by default) in the
// same alternation; the first client's results are the headline and
// issue 12's table of targets. Each round
// checks that every message arrived exactly once (sequence numbers in the
// body). The tables report medians over rounds and ratios of those medians
// to direct AMQP from the same run; on a shared, noisy machine only the
// ratios mean much.
//
// CPU per message: the gateway process's utime+stime from /proc/<pid>/stat
// over the round, divided by messages delivered; separately this process's
// getrusage(RUSAGE_SELF), the benchmark's own producers and consumers
// (amqp091-go or the STOMP client; with -in-process the gateway too).
// -cpuprofile takes the gateway's profile from its /debug/pprof. The broker's CPU
// (utime+stime of its beam.smp from /proc, 10 ms resolution) is reported
// separately; the plugin's work is inside it.
//
// Memory per idle session opens -idle-sessions sessions with one
// subscription each and no traffic. For stompgate (a gateway inside this
// process, in every mode) it is the growth of this process's Go heap+stacks (the gateway; the raw idle clients keep only a
// socket); for AMQP and the plugin, the growth of the broker's RSS. The
// broker RSS growth of stompgate's own AMQP connections is in the details.
//
// This package is a command, not a test: `go test ./...` only runs its
// short unit tests of the statistics.
package main
