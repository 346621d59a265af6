#!/usr/bin/env bash
# ensure-rabbitmq.sh makes sure a RabbitMQ broker answers at AMQP_URL.
#
# Owned by the tooling (scripts/, Makefile, .ci/run). Used by `make run`,
# `make test` and `make e2e`.
#
#   1. If something already listens at AMQP_URL's host:port, reuse it.
#   2. Otherwise, for a loopback AMQP_URL only: install Debian's
#      rabbitmq-server if it is missing, start it with
#      `rabbitmq-server -detached` (unless a node is already booting), and
#      wait until the AMQP port answers.
#   3. Fail with a clear message if none of that works.
#
# Idempotent and silent when the broker is already up.
#
# Environment:
#   AMQP_URL            broker URL (default amqp://guest:guest@127.0.0.1:5672/)
#   RABBITMQ_WAIT_SECS  how long to wait for a started broker (default 90)
#   RABBITMQ_SBIN_DIR   where Debian puts rabbitmq-server (default /usr/sbin;
#                       scripts/test-scripts.sh points it at stubs)
set -euo pipefail

AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"
WAIT_SECS="${RABBITMQ_WAIT_SECS:-90}"
SBIN_DIR="${RABBITMQ_SBIN_DIR:-/usr/sbin}"

LOG_NAME=ensure-rabbitmq
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# parse_amqp_url sets BROKER_HOST and BROKER_PORT from AMQP_URL:
# scheme://[user[:pass]@]host[:port][/vhost], host may be [ipv6].
parse_amqp_url() {
	local url="$1" rest hostport default_port=5672
	case "$url" in
	amqps://*) default_port=5671 ;;
	amqp://*) ;;
	*) die "AMQP_URL must start with amqp:// or amqps://, got '$url'" ;;
	esac
	rest="${url#*://}"
	rest="${rest%%/*}"
	rest="${rest%%\?*}"
	hostport="${rest##*@}"
	if [[ "$hostport" == \[* ]]; then
		BROKER_HOST="${hostport%%]*}"
		BROKER_HOST="${BROKER_HOST#[}"
		BROKER_PORT="${hostport##*]}"
		BROKER_PORT="${BROKER_PORT#:}"
	elif [[ "$hostport" == *:* ]]; then
		BROKER_HOST="${hostport%%:*}"
		BROKER_PORT="${hostport##*:}"
	else
		BROKER_HOST="$hostport"
		BROKER_PORT=""
	fi
	BROKER_HOST="${BROKER_HOST:-127.0.0.1}"
	BROKER_PORT="${BROKER_PORT:-$default_port}"
	[[ "$BROKER_PORT" =~ ^[0-9]+$ ]] || die "bad port '$BROKER_PORT' in AMQP_URL '$url'"
}

# port_open reports whether a TCP connect to host:port succeeds within 2 s.
port_open() {
	# shellcheck disable=SC2016 # $1 and $2 expand in the inner bash.
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

is_loopback() {
	case "$1" in
	localhost | 127.* | ::1 | 0:0:0:0:0:0:0:1) return 0 ;;
	*) return 1 ;;
	esac
}

# node_running reports whether a local RabbitMQ node answers a ping. It is
# how we avoid starting a second node while one is still booting.
node_running() {
	command -v rabbitmq-diagnostics >/dev/null 2>&1 || return 1
	as_root timeout 20 rabbitmq-diagnostics -q ping >/dev/null 2>&1
}

# broker_ready reports whether the AMQP port accepts connections; on a local
# broker with rabbitmq-diagnostics it also requires the node to answer a
# ping, which is the stronger signal that it is a working RabbitMQ.
broker_ready() {
	port_open "$BROKER_HOST" "$BROKER_PORT" || return 1
	if is_loopback "$BROKER_HOST" && command -v rabbitmq-diagnostics >/dev/null 2>&1; then
		node_running || return 1
	fi
	return 0
}

install_rabbitmq() {
	log "rabbitmq-server is not installed; installing Debian's package"
	as_root apt-get update -qq >/dev/null ||
		die "apt-get update failed"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null ||
		die "apt-get install rabbitmq-server failed"
}

show_logs_hint() {
	local logfile
	for logfile in "${RABBITMQ_LOG_BASE:-/var/log/rabbitmq}"/*.log; do
		[[ -f "$logfile" ]] || continue
		log "last lines of $logfile:"
		tail -n 15 "$logfile" >&2 || true
	done
}

main() {
	parse_amqp_url "$AMQP_URL"

	# Fast path: the port is open. We don't require the ping here, so a
	# remote broker or one we can't ping (no rights on the Erlang cookie) is
	# still reused; the ping only guides starting and waiting below.
	if port_open "$BROKER_HOST" "$BROKER_PORT"; then
		return 0
	fi

	if ! is_loopback "$BROKER_HOST"; then
		die "no broker answers at $BROKER_HOST:$BROKER_PORT (from AMQP_URL) and it is not a local address, so it cannot be started here"
	fi

	# Debian installs the launchers in /usr/sbin, which a non-root PATH may lack.
	case ":$PATH:" in *:"$SBIN_DIR":*) ;; *) PATH="$PATH:$SBIN_DIR" ;; esac
	if ! command -v rabbitmq-server >/dev/null 2>&1; then
		install_rabbitmq
		hash -r
	fi
	command -v rabbitmq-server >/dev/null 2>&1 ||
		die "rabbitmq-server is still not on PATH after installing it"

	# The Debian package's postinst may already have started a node.
	if node_running; then
		log "a RabbitMQ node is running; waiting for AMQP on $BROKER_HOST:$BROKER_PORT"
	else
		log "starting rabbitmq-server -detached"
		# One AMQP connection per STOMP session: give the broker room for the
		# load tests' 1,000 sessions (Debian's default of 1024 descriptors
		# allows about 830 sockets). The child inherits this soft limit.
		ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
		as_root rabbitmq-server -detached >/dev/null 2>&1 ||
			die "'rabbitmq-server -detached' failed (as non-root this needs passwordless sudo)"
	fi

	local started=$SECONDS
	until broker_ready; do
		if ((SECONDS - started >= WAIT_SECS)); then
			show_logs_hint
			die "RabbitMQ did not answer on $BROKER_HOST:$BROKER_PORT within ${WAIT_SECS}s"
		fi
		sleep 1
	done
	log "RabbitMQ is up on $BROKER_HOST:$BROKER_PORT (after $((SECONDS - started))s)"
}

# Sourcing the file (for its tests) defines the functions without running.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	main "$@"
fi
