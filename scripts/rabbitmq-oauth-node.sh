#!/usr/bin/env bash
# rabbitmq-oauth-node.sh runs a standalone RabbitMQ node with RabbitMQ's
# OAuth 2 backend (rabbitmq_auth_backend_oauth2, shipped with the broker),
# for the passthrough-mode tests of issue 13: a JWT is the AMQP password,
# and `connection.update-secret` renews it. The node is Debian's
# rabbitmq-server, beside the machine's own broker, which it never touches
# (see lib-rabbitmq-node.sh).
#
#   rabbitmq-oauth-node.sh up (--pem FILE --kid KID | --jwks FILE [--kid KID])
#                             [--resource-server-id ID]
#       starts the node (a running one in the state dir is torn down first)
#       and prints its AMQP URL base, amqp://127.0.0.1:<port>/, on stdout
#       (nothing else there). Returns once the node accepts AMQP.
#   rabbitmq-oauth-node.sh url   prints that URL again.
#   rabbitmq-oauth-node.sh down  kills the node and deletes its state.
#
# The node accepts tokens signed by the given key: --pem, a PEM public key
# (RSA or EC) used for tokens whose header has kid KID or no kid; or --jwks,
# a JWKS document whose every key is registered under its own "kid" (the
# default key for tokens without a kid is --kid, else the first key).
# Tokens are checked by RabbitMQ 3.10's rules:
#   - "aud" must contain the resource server id (default stompgate);
#   - "scope" holds the permissions, "<id>.<perm>:<vhost>/<resource>",
#     e.g. "stompgate.read:*/* stompgate.write:*/* stompgate.configure:*/*";
#   - "exp" must be in the future at login (no leeway);
#   - the user name is the "client_id" claim, else "sub", else the AMQP
#     login name.
# RabbitMQ 3.10 does not close a connection when its token expires, and
# accepts `connection.update-secret` with an expired (but well-signed)
# token; later authorisation checks (declare, new channels) then fail with
# ACCESS_REFUSED "Provided JWT token has expired". A badly signed secret is
# refused with 530 NOT_ALLOWED.
# Logins whose password is not a valid token fall back to the internal
# database (auth_backends: oauth2, then internal), so guest/guest still works
# from loopback.
#
# Environment:
#   STOMPGATE_OAUTH_DIR      state dir (default /tmp/stompgate-oauth-node)
#   STOMPGATE_OAUTH_NODE     node name (default sgoauth@localhost)
#   RABBITMQ_NODE_WAIT_SECS  bound on the node's boot (default 90)
set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib-rabbitmq-node.sh
. "$SCRIPTS_DIR/lib-rabbitmq-node.sh"

RMQ_PROG=rabbitmq-oauth-node
RMQ_STATE="${STOMPGATE_OAUTH_DIR:-/tmp/stompgate-oauth-node}"
NODE_NAME="${STOMPGATE_OAUTH_NODE:-sgoauth@localhost}"
LABEL=oauth

usage() {
	echo "usage: $0 up (--pem FILE --kid KID | --jwks FILE [--kid KID]) [--resource-server-id ID] | url | down" >&2
	exit 2
}

print_url() {
	local dir
	dir="$(rmq_node_dir "$LABEL")"
	[[ -s "$dir/amqp.port" ]] || rmq_die "no node in $RMQ_STATE (run: $0 up ...)"
	echo "amqp://127.0.0.1:$(cat "$dir/amqp.port")/"
}

# write_advanced_config MODE FILE KID RSID OUT writes the plugin's
# configuration as an Erlang term file. Erlang itself reads the key file and
# prints the terms (jsx, shipped with RabbitMQ, splits a JWKS), so no quoting
# is done by hand.
write_advanced_config() {
	local plugins
	plugins="$(dirname "$(readlink -f "$RMQ_BIN_DIR/rabbitmq-server")")/../plugins"
	SG_MODE="$1" SG_FILE="$2" SG_KID="$3" SG_RSID="$4" SG_OUT="$5" ERL_LIBS="$plugins" \
		timeout 60 erl -noshell -noinput -eval '
			Env = fun(N) -> list_to_binary(os:getenv(N)) end,
			{ok, Bin} = file:read_file(os:getenv("SG_FILE")),
			Kid0 = Env("SG_KID"),
			{Default, Keys} =
				case os:getenv("SG_MODE") of
					"pem" ->
						{Kid0, #{Kid0 => {pem, string:trim(Bin)}}};
					"jwks" ->
						#{<<"keys">> := L} = jsx:decode(Bin, [return_maps]),
						Ks = [{maps:get(<<"kid">>, K), {json, jsx:encode(K)}} || K <- L],
						D = case Kid0 of <<>> -> element(1, hd(Ks)); _ -> Kid0 end,
						{D, maps:from_list(Ks)}
				end,
			Cfg = [{rabbitmq_auth_backend_oauth2,
			        [{resource_server_id, Env("SG_RSID")},
			         {key_config, [{default_key, Default}, {signing_keys, Keys}]}]}],
			ok = file:write_file(os:getenv("SG_OUT"), [io_lib:print(Cfg, 1, 1000000, -1), ".\n"]),
			halt(0).' >"$RMQ_STATE/advanced-config.log" 2>&1 ||
		rmq_die "could not build advanced.config from $2: $(tail -n 5 "$RMQ_STATE/advanced-config.log")"
}

cmd_up() {
	local mode="" file="" kid="" rsid=stompgate dir
	while (($#)); do
		case "$1" in
		--pem | --jwks)
			[[ $# -ge 2 ]] || usage
			mode="${1#--}" file="$2"
			shift 2
			;;
		--kid)
			[[ $# -ge 2 ]] || usage
			kid="$2"
			shift 2
			;;
		--resource-server-id)
			[[ $# -ge 2 ]] || usage
			rsid="$2"
			shift 2
			;;
		*) usage ;;
		esac
	done
	[[ -n "$mode" && -n "$rsid" ]] || usage
	[[ "$mode" == jwks || -n "$kid" ]] || rmq_die "--pem needs --kid"
	[[ -r "$file" ]] || rmq_die "cannot read $file"
	file="$(readlink -f "$file")"

	rmq_ensure_installed
	if [[ -d "$RMQ_STATE" ]]; then
		rmq_log "tearing down the existing node in $RMQ_STATE first"
		rmq_destroy
	fi
	rmq_init_state
	dir="$(rmq_node_dir "$LABEL")"
	mkdir -p "$dir"
	write_advanced_config "$mode" "$file" "$kid" "$rsid" "$dir/advanced.config"
	rmq_prepare_node "$LABEL" "$NODE_NAME" "[rabbitmq_auth_backend_oauth2]"
	cat >>"$dir/rabbitmq.conf" <<-EOF
		# Tokens first; a password that is not a token falls through to the
		# internal database (guest/guest from loopback).
		auth_backends.1 = rabbit_auth_backend_oauth2
		auth_backends.2 = internal
	EOF
	rmq_launch "$LABEL"
	rmq_wait_amqp "$LABEL"
	rmq_log "node $NODE_NAME with rabbitmq_auth_backend_oauth2 is up (resource server id $rsid; state in $RMQ_STATE)"
	print_url
}

main() {
	case "${1:-}" in
	up)
		shift
		cmd_up "$@"
		;;
	url) print_url ;;
	down)
		rmq_destroy
		rmq_log "node in $RMQ_STATE is down"
		;;
	*) usage ;;
	esac
}

main "$@"
