#!/usr/bin/env bash
# ensure-stomp-plugin.sh makes sure RabbitMQ's own STOMP plugin
# (rabbitmq_stomp, shipped with the broker) listens on a loopback port and
# prints that address (host:port) on stdout. The e2e differential tests
# (e2e/differential_test.go) use it as the reference implementation
# (semantics.md: "the plugin").
#
# Owned by the e2e differential tests (e2e/plugin_test.go calls it). Run it
# after scripts/ensure-rabbitmq.sh; `make e2e` does both.
#
#   1. If the plugin already has a STOMP listener on this node, reuse it
#      (whoever enabled it, whatever the port) and print its address.
#   2. Otherwise choose the listener 127.0.0.1:$STOMP_PLUGIN_PORT (default
#      61690: neither stompgate's default 61613 nor a port the tests use,
#      which all bind 127.0.0.1:0), load the application, set its
#      tcp_listeners, then enable the plugin. Setting the environment only
#      after loading matters: loading reads the .app defaults, which would
#      put the listener on [::]:61613.
#   3. Persist the listener in /etc/rabbitmq/advanced.config when that file
#      does not exist yet, so that a broker restart (the plugin stays in
#      enabled_plugins) brings it back on the same loopback port instead of
#      all interfaces on 61613. An existing advanced.config is left alone.
#
# Idempotent; progress goes to stderr, only the address to stdout.
#
# Environment:
#   STOMP_PLUGIN_PORT         port for a newly created listener (default 61690)
#   STOMP_PLUGIN_WAIT_SECS    how long to wait for the listener (default 60)
#   RABBITMQ_SBIN_DIR         where Debian puts the rabbitmq tools (default /usr/sbin)
#   RABBITMQ_ADVANCED_CONFIG  advanced.config to create (default /etc/rabbitmq/advanced.config)
set -euo pipefail

PORT="${STOMP_PLUGIN_PORT:-61690}"
WAIT_SECS="${STOMP_PLUGIN_WAIT_SECS:-60}"
SBIN_DIR="${RABBITMQ_SBIN_DIR:-/usr/sbin}"
ADVANCED_CONFIG="${RABBITMQ_ADVANCED_CONFIG:-/etc/rabbitmq/advanced.config}"

LOG_NAME=ensure-stomp-plugin
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# stomp_listeners prints "ip port" per STOMP listener of the local node.
# rabbit_networking:active_listeners/0 returns #listener{node, protocol,
# host, ip_address, port, opts} records.
stomp_listeners() {
	as_root timeout 30 rabbitmqctl -q eval '
		[io:format("~s ~b~n", [rabbit_misc:ntoa(element(5, L)), element(6, L)])
		 || L <- rabbit_networking:active_listeners(),
		    element(2, L) =:= node(), element(3, L) =:= stomp],
		ok.' 2>/dev/null | grep -E '^[0-9A-Fa-f.:]+ [0-9]+$' || true
}

# listener_address picks the address to dial from stomp_listeners output:
# a loopback listener first, then a wildcard one (dialled on 127.0.0.1).
listener_address() {
	local listeners="$1" ip port
	while read -r ip port; do
		case "$ip" in
		127.*) echo "$ip:$port" && return 0 ;;
		::1) echo "[::1]:$port" && return 0 ;;
		esac
	done <<<"$listeners"
	while read -r ip port; do
		case "$ip" in
		0.0.0.0 | ::) echo "127.0.0.1:$port" && return 0 ;;
		esac
	done <<<"$listeners"
	return 1
}

port_open() {
	# shellcheck disable=SC2016 # $1 and $2 expand in the inner bash.
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

persist_listener() {
	if [[ -e "$ADVANCED_CONFIG" ]]; then
		grep -q rabbitmq_stomp "$ADVANCED_CONFIG" ||
			log "note: $ADVANCED_CONFIG exists and does not configure rabbitmq_stomp; after a broker restart the plugin listens on its default [::]:61613 until this script runs again"
		return 0
	fi
	printf '%% Written by stompgate scripts/ensure-stomp-plugin.sh: RabbitMQ'"'"'s STOMP plugin,\n%% the e2e reference, on loopback only and away from stompgate'"'"'s 61613.\n[{rabbitmq_stomp, [{tcp_listeners, [{"127.0.0.1", %s}]}]}].\n' "$PORT" |
		as_root tee "$ADVANCED_CONFIG" >/dev/null ||
		log "note: could not write $ADVANCED_CONFIG; the listener lasts until the broker restarts"
}

main() {
	[[ "$PORT" =~ ^[0-9]+$ ]] || die "STOMP_PLUGIN_PORT must be a port number, got '$PORT'"
	case ":$PATH:" in *:"$SBIN_DIR":*) ;; *) PATH="$PATH:$SBIN_DIR" ;; esac
	{ command -v rabbitmqctl && command -v rabbitmq-plugins; } >/dev/null 2>&1 ||
		die "rabbitmqctl/rabbitmq-plugins not found; run scripts/ensure-rabbitmq.sh first"
	as_root timeout 30 rabbitmqctl -q eval 'ok.' >/dev/null 2>&1 ||
		die "the local RabbitMQ node does not answer rabbitmqctl; run scripts/ensure-rabbitmq.sh first"

	local listeners addr
	listeners="$(stomp_listeners)"
	if addr="$(listener_address "$listeners")"; then
		echo "$addr"
		return 0
	fi

	log "enabling rabbitmq_stomp on 127.0.0.1:$PORT"
	# A plugin enabled without a running listener (a failed start) is
	# disabled first so that enabling starts it with our environment.
	as_root rabbitmq-plugins -q disable rabbitmq_stomp >/dev/null 2>&1 || true
	as_root timeout 30 rabbitmqctl -q eval "
		_ = application:load(rabbitmq_stomp),
		ok = application:set_env(rabbitmq_stomp, tcp_listeners, [{\"127.0.0.1\", $PORT}]),
		ok = application:set_env(rabbitmq_stomp, ssl_listeners, [])." >/dev/null ||
		die "could not set the rabbitmq_stomp listener"
	as_root rabbitmq-plugins -q enable rabbitmq_stomp >/dev/null ||
		die "rabbitmq-plugins enable rabbitmq_stomp failed"
	persist_listener

	local started=$SECONDS
	local host
	until addr="$(listener_address "$(stomp_listeners)")" && host="${addr%:*}" &&
		host="${host#[}" && port_open "${host%]}" "${addr##*:}"; do
		if ((SECONDS - started >= WAIT_SECS)); then
			die "rabbitmq_stomp has no listener ${WAIT_SECS}s after enabling it"
		fi
		sleep 1
	done
	log "rabbitmq_stomp listens on $addr"
	echo "$addr"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	main "$@"
fi
