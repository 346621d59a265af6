#!/usr/bin/env bash
# rabbitmq-cluster.sh manages an N-node RabbitMQ cluster on this machine,
# for the cluster fault tests (issue 16): Debian's rabbitmq-server, no Docker,
# beside the machine's own broker on 5672, which it never touches.
#
#   rabbitmq-cluster.sh up N     start N nodes (sg1@localhost ... sgN@localhost)
#                                and join them into one cluster; print each
#                                node's AMQP URL on its own line of stdout,
#                                line I = node I, and nothing else there.
#                                Returns once every node runs and the first
#                                node sees all N running. If a cluster
#                                already exists in the state dir, it is torn
#                                down first: `up` always gives a fresh,
#                                empty cluster.
#   rabbitmq-cluster.sh urls     print the URLs of the current cluster again.
#   rabbitmq-cluster.sh kill I   SIGKILL node I's beam.smp (no clean stop).
#   rabbitmq-cluster.sh start I  start node I again (same name, ports, data)
#                                and return once it runs and sees all nodes
#                                of the cluster running; a no-op wait if it
#                                runs already.
#   rabbitmq-cluster.sh down     kill every node and the cluster's epmd and
#                                delete the state dir.
#
# Measured on a loaded 2-core machine: `up 3` 12-31 s, `start I` 4-5 s,
# `kill I` and `down` under 0.5 s; a quorum queue whose leader is killed has
# a new leader after 0.3-0.4 s. A node restarted while every other node is
# down waits for them (RabbitMQ's table sync), so after killing all nodes,
# start them in parallel (`start 1 & start 2 & ...; wait`).
#
# Each node listens for AMQP on a free 127.0.0.1 port (guest/guest) and for
# Erlang distribution on another; the nodes share one Erlang cookie in the
# state dir (its HOME) and a private epmd. Nodes are started in parallel;
# nodes 2..N then join node 1 (rabbitmqctl stop_app, join_cluster,
# start_app). Started processes run in their own sessions with stdout and
# stderr in the state dir, so `$(rabbitmq-cluster.sh up 3)` returns. Every
# wait is bounded. Progress goes to stderr. See lib-rabbitmq-node.sh for how
# the nodes are kept apart from the machine's broker.
#
# Environment:
#   STOMPGATE_CLUSTER_DIR     state dir (default /tmp/stompgate-cluster); use
#                             different dirs for clusters side by side
#   STOMPGATE_CLUSTER_PREFIX  node name prefix (default sg: sg1@localhost)
#   RABBITMQ_NODE_WAIT_SECS   bound on one node's boot (default 90)
#   RABBITMQ_CTL_TIMEOUT_SECS bound on one rabbitmqctl call (default 60)
#   RABBITMQ_EXTRA_ERL_ARGS   more Erlang VM flags for the nodes
set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib-rabbitmq-node.sh
. "$SCRIPTS_DIR/lib-rabbitmq-node.sh"

RMQ_PROG=rabbitmq-cluster
RMQ_STATE="${STOMPGATE_CLUSTER_DIR:-/tmp/stompgate-cluster}"
PREFIX="${STOMPGATE_CLUSTER_PREFIX:-sg}"
CLUSTER_WAIT="${RABBITMQ_CLUSTER_WAIT_SECS:-120}"

usage() {
	echo "usage: $0 up N | urls | kill I | start I | down" >&2
	exit 2
}

cluster_size() {
	[[ -s "$RMQ_STATE/size" ]] || rmq_die "no cluster in $RMQ_STATE (run: $0 up N)"
	cat "$RMQ_STATE/size"
}

check_index() {
	local i="$1" n
	n="$(cluster_size)"
	if [[ ! "$i" =~ ^[1-9][0-9]*$ ]] || ((i > n)); then
		rmq_die "node index must be 1..$n, got '$i'"
	fi
}

print_urls() {
	local i n
	n="$(cluster_size)"
	for ((i = 1; i <= n; i++)); do
		echo "amqp://guest:guest@127.0.0.1:$(cat "$(rmq_node_dir "$i")/amqp.port")/"
	done
}

# running_count LABEL prints how many cluster nodes node LABEL sees running
# with the rabbit application up.
running_count() {
	rmq_ctl "$1" eval 'length(rabbit_nodes:all_running()).' 2>/dev/null | tr -dc '0-9'
}

# wait_running LABEL N waits (bounded) until node LABEL sees N nodes running.
wait_running() {
	local label="$1" want="$2" got="" started=$SECONDS
	while :; do
		got="$(running_count "$label" || true)"
		[[ "$got" == "$want" ]] && return 0
		((SECONDS - started < CLUSTER_WAIT)) ||
			rmq_die "node $label sees ${got:-no} running nodes, not $want, after ${CLUSTER_WAIT}s; logs in $(rmq_node_dir "$label")/log"
		sleep 0.5
	done
}

# ctl_quiet LABEL ARGS... runs rabbitmqctl and shows its output only when it
# fails (stop_app logs harmless errors about tracked connection tables).
ctl_quiet() {
	local label="$1" out
	shift
	out="$(rmq_ctl "$label" "$@" 2>&1)" || {
		printf '%s\n' "$out" >&2
		rmq_die "rabbitmqctl $* on node $label failed"
	}
}

cmd_up() {
	local n="${1:-}" i t0=$SECONDS
	[[ "$n" =~ ^[1-9][0-9]*$ ]] || usage
	rmq_ensure_installed
	if [[ -d "$RMQ_STATE" ]]; then
		rmq_log "tearing down the existing cluster in $RMQ_STATE first"
		rmq_destroy
	fi
	rmq_init_state
	for ((i = 1; i <= n; i++)); do
		rmq_prepare_node "$i" "$PREFIX$i@localhost"
	done
	for ((i = 1; i <= n; i++)); do
		rmq_launch "$i"
	done
	for ((i = 1; i <= n; i++)); do
		rmq_wait_amqp "$i"
	done
	rmq_log "$n nodes booted after $((SECONDS - t0))s; joining them to $PREFIX""1@localhost"
	for ((i = 2; i <= n; i++)); do
		ctl_quiet "$i" stop_app
		ctl_quiet "$i" join_cluster "${PREFIX}1@localhost"
		ctl_quiet "$i" start_app
	done
	echo "$n" >"$RMQ_STATE/size"
	for ((i = 1; i <= n; i++)); do
		rmq_wait_amqp "$i"
	done
	wait_running 1 "$n"
	rmq_log "cluster of $n nodes up after $((SECONDS - t0))s (state in $RMQ_STATE)"
	print_urls
}

cmd_kill() {
	local i="${1:-}" pid
	check_index "$i"
	if pid="$(rmq_beam_pid "$i")"; then
		rmq_kill_node "$i"
		rmq_log "node $i (beam.smp pid $pid) killed with SIGKILL"
	else
		rmq_log "node $i is not running"
	fi
}

cmd_start() {
	local i="${1:-}" n t0=$SECONDS
	check_index "$i"
	n="$(cluster_size)"
	if ! rmq_beam_pid "$i" >/dev/null; then
		rmq_kill_node "$i" # a leftover wrapper, if any
		rmq_launch "$i"
	fi
	rmq_wait_amqp "$i"
	wait_running "$i" "$n"
	rmq_log "node $i runs and sees $n nodes running after $((SECONDS - t0))s"
}

main() {
	case "${1:-}" in
	up) cmd_up "${2:-}" ;;
	urls) print_urls ;;
	kill) cmd_kill "${2:-}" ;;
	start) cmd_start "${2:-}" ;;
	down)
		rmq_destroy
		rmq_log "cluster in $RMQ_STATE is down"
		;;
	*) usage ;;
	esac
}

main "$@"
