# shellcheck shell=bash
# lib-rabbitmq-node.sh: functions to run throwaway RabbitMQ nodes of Debian's
# rabbitmq-server beside the machine's own broker, without touching it.
# Sourced by scripts/rabbitmq-cluster.sh and scripts/rabbitmq-oauth-node.sh;
# not run on its own.
#
# Isolation from the machine's broker (rabbit@<host> on 5672/25672, its
# cookie in /var/lib/rabbitmq, its config in /etc/rabbitmq):
#   - every node runs as the calling user from /usr/lib/rabbitmq/bin (not the
#     /usr/sbin wrapper, which switches to the rabbitmq user and its HOME);
#   - HOME is the state dir, which holds the Erlang cookie that the nodes and
#     rabbitmqctl share;
#   - a private epmd on a free loopback port (ERL_EPMD_PORT), so node names
#     never clash with another cluster's and `down` can stop it;
#   - RABBITMQ_CONF_ENV_FILE, RABBITMQ_CONFIG_FILE,
#     RABBITMQ_ADVANCED_CONFIG_FILE and RABBITMQ_ENABLED_PLUGINS_FILE point
#     into the node's own dir, so nothing under /etc/rabbitmq applies;
#   - AMQP and Erlang distribution listen on 127.0.0.1 only, on ports chosen
#     free at start (20000-32767, never 5672, 15672, 25672, 61613, 61690).
#
# The caller sets RMQ_STATE (state dir) before calling rmq_* functions.

RMQ_BIN_DIR="${RABBITMQ_BIN_DIR:-/usr/lib/rabbitmq/bin}"
# Seconds to wait for one node to boot, and for a rabbitmqctl call.
RMQ_BOOT_WAIT="${RABBITMQ_NODE_WAIT_SECS:-90}"
RMQ_CTL_TIMEOUT="${RABBITMQ_CTL_TIMEOUT_SECS:-60}"
# Ports handed out by rmq_free_port in this process, so two picks differ.
RMQ_PICKED_PORTS=" "

rmq_log() { printf '%s: %s\n' "${RMQ_PROG:-rabbitmq-node}" "$*" >&2; }
rmq_die() {
	rmq_log "ERROR: $*"
	exit 1
}

# rmq_ensure_installed installs Debian's rabbitmq-server when its launchers
# are missing. apt waits (bounded) for another apt/dpkg run to release its
# lock, e.g. a concurrent `make broker`.
rmq_ensure_installed() {
	[[ -x "$RMQ_BIN_DIR/rabbitmq-server" ]] && return 0
	[[ "$(id -u)" == 0 ]] || rmq_die "rabbitmq-server is missing and installing it needs root"
	rmq_log "installing Debian's rabbitmq-server"
	local lock=(-o DPkg::Lock::Timeout=600)
	apt-get "${lock[@]}" update -qq >/dev/null || rmq_die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get "${lock[@]}" install -y -qq rabbitmq-server >/dev/null ||
		rmq_die "apt-get install rabbitmq-server failed"
	[[ -x "$RMQ_BIN_DIR/rabbitmq-server" ]] || rmq_die "no $RMQ_BIN_DIR/rabbitmq-server after installing"
}

# rmq_port_open reports whether something accepts TCP on 127.0.0.1:$1.
rmq_port_open() {
	# shellcheck disable=SC2016 # $1 expands in the inner bash.
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# rmq_free_port prints a TCP port that nothing listens on (any address), is
# not one the machine's broker or gateway use, and was not picked before by
# this process.
rmq_free_port() {
	local listening port tries
	listening=" $(ss -Htln 2>/dev/null | awk '{n=split($4,a,":"); print a[n]}' | tr '\n' ' ') "
	for ((tries = 0; tries < 200; tries++)); do
		port=$((20000 + RANDOM % 12768))
		case "$port" in 25672 | 15672 | 5672 | 61613 | 61690) continue ;; esac
		[[ "$listening" == *" $port "* || "$RMQ_PICKED_PORTS" == *" $port "* ]] && continue
		rmq_port_open "$port" && continue
		RMQ_PICKED_PORTS+="$port "
		echo "$port"
		return 0
	done
	rmq_die "no free port found"
}

# rmq_env runs a command with the environment shared by the nodes and
# rabbitmqctl: the cookie's HOME and the private epmd.
rmq_env() {
	HOME="$RMQ_STATE" ERL_EPMD_PORT="$(cat "$RMQ_STATE/epmd.port")" \
		RABBITMQ_CONF_ENV_FILE="$RMQ_STATE/rabbitmq-env.conf" \
		RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
		"$@"
}

# rmq_init_state creates RMQ_STATE with a fresh cookie and starts its epmd.
rmq_init_state() {
	mkdir -p "$RMQ_STATE"
	chmod 700 "$RMQ_STATE"
	: >"$RMQ_STATE/rabbitmq-env.conf"
	if [[ ! -s "$RMQ_STATE/.erlang.cookie" ]]; then
		(umask 077 && head -c 30 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F' >"$RMQ_STATE/.erlang.cookie")
		chmod 400 "$RMQ_STATE/.erlang.cookie"
	fi
	rmq_start_epmd
}

# rmq_start_epmd starts the state dir's own epmd on a free loopback port,
# detached (setsid, no inherited stdout), unless it runs already.
rmq_start_epmd() {
	local port pid started=$SECONDS
	if [[ -f "$RMQ_STATE/epmd.pid" ]] && kill -0 "$(cat "$RMQ_STATE/epmd.pid")" 2>/dev/null; then
		return 0
	fi
	port="$(rmq_free_port)"
	setsid epmd -port "$port" -address 127.0.0.1 </dev/null >>"$RMQ_STATE/epmd.log" 2>&1 &
	pid=$!
	echo "$pid" >"$RMQ_STATE/epmd.pid"
	echo "$port" >"$RMQ_STATE/epmd.port"
	until rmq_port_open "$port"; do
		kill -0 "$pid" 2>/dev/null || rmq_die "epmd on port $port exited: $(tail -n 5 "$RMQ_STATE/epmd.log")"
		((SECONDS - started < 10)) || rmq_die "epmd did not listen on 127.0.0.1:$port within 10s"
		sleep 0.1
	done
}

# rmq_node_dir prints the directory of node $1 (a short label such as 1).
rmq_node_dir() { echo "$RMQ_STATE/node-$1"; }

# rmq_prepare_node LABEL NODENAME [PLUGINS] writes node LABEL's dir: node
# name, free AMQP and distribution ports, rabbitmq.conf and enabled_plugins
# (an Erlang list such as "[rabbitmq_auth_backend_oauth2]"; default none).
# An existing advanced.config in the dir is kept.
rmq_prepare_node() {
	local label="$1" name="$2" plugins="${3:-[]}" dir
	dir="$(rmq_node_dir "$label")"
	mkdir -p "$dir/mnesia" "$dir/log"
	echo "$name" >"$dir/name"
	rmq_free_port >"$dir/amqp.port"
	rmq_free_port >"$dir/dist.port"
	printf '%s.\n' "$plugins" >"$dir/enabled_plugins"
	cat >"$dir/rabbitmq.conf" <<-EOF
		# Written by scripts/lib-rabbitmq-node.sh; throwaway node $name.
		listeners.tcp.default = 127.0.0.1:$(cat "$dir/amqp.port")
		log.console = false
		log.file.level = info
		# A test machine: no memory or disk alarm from other tenants' usage.
		vm_memory_high_watermark.absolute = 2GB
		disk_free_limit.absolute = 50MB
		# Small Raft WAL and segments for quorum queues: less memory, quick recovery.
		raft.wal_max_size_bytes = 8388608
		raft.segment_max_entries = 4096
	EOF
	[[ -f "$dir/advanced.config" ]] || echo "[]." >"$dir/advanced.config"
}

# rmq_launch LABEL starts the node prepared by rmq_prepare_node (or started
# before: its data dir is kept, so it comes back as the same cluster member)
# in its own session with stdout and stderr in its log dir, and returns at
# once. The node's beam.smp pid lands in DIR/beam.pid (written by RabbitMQ).
rmq_launch() {
	local label="$1" dir name
	dir="$(rmq_node_dir "$label")"
	name="$(cat "$dir/name")"
	rm -f "$dir/beam.pid"
	# One AMQP connection per STOMP session: room for load tests.
	ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	rmq_env env \
		RABBITMQ_NODENAME="$name" \
		RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
		RABBITMQ_NODE_PORT="$(cat "$dir/amqp.port")" \
		RABBITMQ_DIST_PORT="$(cat "$dir/dist.port")" \
		RABBITMQ_MNESIA_BASE="$dir/mnesia" \
		RABBITMQ_LOG_BASE="$dir/log" \
		RABBITMQ_PID_FILE="$dir/beam.pid" \
		RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
		RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config" \
		RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
		RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} ${RABBITMQ_EXTRA_ERL_ARGS:-}" \
		setsid "$RMQ_BIN_DIR/rabbitmq-server" </dev/null >>"$dir/log/console.log" 2>&1 &
	echo $! >"$dir/wrapper.pid"
}

# rmq_beam_pid LABEL prints the pid of the node's running beam.smp, or fails.
rmq_beam_pid() {
	local dir pid
	dir="$(rmq_node_dir "$1")"
	[[ -s "$dir/beam.pid" ]] || return 1
	pid="$(cat "$dir/beam.pid")"
	[[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == beam.smp ]] || return 1
	echo "$pid"
}

# rmq_wait_amqp LABEL waits (bounded) until the node accepts AMQP, which
# RabbitMQ starts only at the end of its boot.
rmq_wait_amqp() {
	local label="$1" dir port started=$SECONDS
	dir="$(rmq_node_dir "$label")"
	port="$(cat "$dir/amqp.port")"
	until rmq_port_open "$port"; do
		if ! kill -0 "$(cat "$dir/wrapper.pid")" 2>/dev/null && ! rmq_beam_pid "$label" >/dev/null; then
			tail -n 20 "$dir/log/console.log" >&2 || true
			rmq_die "node $label ($(cat "$dir/name")) exited while booting; logs in $dir/log"
		fi
		if ((SECONDS - started >= RMQ_BOOT_WAIT)); then
			tail -n 20 "$dir/log/console.log" >&2 || true
			rmq_die "node $label did not accept AMQP on 127.0.0.1:$port within ${RMQ_BOOT_WAIT}s; logs in $dir/log"
		fi
		sleep 0.2
	done
}

# rmq_ctl LABEL ARGS... runs rabbitmqctl against node LABEL, bounded.
rmq_ctl() {
	local label="$1" dir
	shift
	dir="$(rmq_node_dir "$label")"
	rmq_env timeout "$RMQ_CTL_TIMEOUT" "$RMQ_BIN_DIR/rabbitmqctl" -q -n "$(cat "$dir/name")" "$@"
}

# rmq_kill_node LABEL SIGKILLs the node's beam.smp and its wrapper, if alive,
# and waits until the beam is gone.
rmq_kill_node() {
	local label="$1" dir pid started=$SECONDS
	dir="$(rmq_node_dir "$label")"
	if pid="$(rmq_beam_pid "$label")"; then
		kill -KILL "$pid" 2>/dev/null || true
		while [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == beam.smp ]]; do
			((SECONDS - started < 10)) || rmq_die "beam.smp $pid survived SIGKILL for 10s"
			sleep 0.05
		done
	fi
	if [[ -s "$dir/wrapper.pid" ]]; then
		kill -KILL "$(cat "$dir/wrapper.pid")" 2>/dev/null || true
	fi
}

# rmq_destroy kills every node under RMQ_STATE and its epmd, then removes
# the state dir. Safe when nothing runs.
rmq_destroy() {
	local d
	[[ -d "$RMQ_STATE" ]] || return 0
	for d in "$RMQ_STATE"/node-*; do
		[[ -d "$d" ]] || continue
		rmq_kill_node "${d##*/node-}"
	done
	if [[ -s "$RMQ_STATE/epmd.pid" ]]; then
		kill -KILL "$(cat "$RMQ_STATE/epmd.pid")" 2>/dev/null || true
	fi
	rm -rf "$RMQ_STATE"
}
