#!/usr/bin/env bash
# test-scripts.sh tests the decision logic of ensure-rabbitmq.sh and
# install-test-deps.sh against stub commands (apt-get, dpkg-query,
# rabbitmq-server, rabbitmq-diagnostics, go) on PATH, so the "missing
# package" and "broker not running" paths are exercised even on a machine
# where everything is installed and running. Nothing is installed and the
# real broker is not touched; the fake broker listens on a free loopback
# port. Run by `make test-scripts` (part of `make test`).
#
# Owned by the tooling (scripts/, Makefile, .ci/run).
#
# Each case runs in a ( ) subshell on purpose, with its own PATH and an
# as_root override that the sourced script calls:
# shellcheck disable=SC2030,SC2031,SC2317
set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK=""
# The system python starts much faster than a pyenv shim.
PYTHON="$(command -v /usr/bin/python3 || command -v python3)"
# cleanup stops every fake broker (each wrote a *.pid file under WORK).
cleanup() {
	local pidfile
	[[ -n "$WORK" ]] || return 0
	while IFS= read -r pidfile; do
		kill "$(cat "$pidfile")" 2>/dev/null || true
	done < <(find "$WORK" -name '*.pid')
	rm -rf "$WORK"
}

PASSED=0
FAILED=0
pass() {
	PASSED=$((PASSED + 1))
	printf 'ok   %s\n' "$1"
}
fail() {
	FAILED=$((FAILED + 1))
	printf 'FAIL %s\n' "$1"
	[[ -z "${2:-}" ]] || printf '     %s\n' "$2"
}

free_port() {
	"$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_listener PORT PIDFILE [DELAY]: a TCP server on 127.0.0.1:PORT that
# accepts and closes connections, standing in for RabbitMQ's AMQP port.
start_listener() {
	local port="$1" pidfile="$2" delay="${3:-0}"
	"$PYTHON" - "$port" "$delay" >/dev/null 2>&1 <<'EOF' &
import socket, sys, time
time.sleep(float(sys.argv[2]))
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
deadline = time.time() + 120
s.settimeout(1)
while time.time() < deadline:
    try:
        c, _ = s.accept()
        c.close()
    except socket.timeout:
        pass
EOF
	echo $! >"$pidfile"
}

# make_stub DIR NAME BODY writes an executable bash script DIR/NAME.
make_stub() {
	mkdir -p "$1"
	printf '#!/usr/bin/env bash\n%s\n' "$3" >"$1/$2"
	chmod +x "$1/$2"
}

# --- ensure-rabbitmq.sh ------------------------------------------------------

# run_ensure runs ensure-rabbitmq.sh's main with STUBS first on PATH and
# as_root replaced by a plain call (so the test needs no root).
run_ensure() {
	local stubs="$1"
	shift
	(
		export PATH="$stubs:/usr/local/bin:/usr/bin:/bin"
		# shellcheck source=/dev/null
		source "$SCRIPTS_DIR/ensure-rabbitmq.sh"
		as_root() { "$@"; }
		main
	)
}

test_parse_amqp_url() {
	local got
	got="$(
		# shellcheck source=/dev/null
		source "$SCRIPTS_DIR/ensure-rabbitmq.sh"
		for url in amqp://guest:guest@127.0.0.1:5672/ amqp://localhost amqps://u:p@h.example/vh \
			'amqp://[::1]:5673/x' 'amqp://u:p@[::1]/' 'amqp://h:1234?heartbeat=1'; do
			parse_amqp_url "$url"
			printf '%s %s;' "$BROKER_HOST" "$BROKER_PORT"
		done
	)"
	local want='127.0.0.1 5672;localhost 5672;h.example 5671;::1 5673;::1 5672;h 1234;'
	if [[ "$got" == "$want" ]]; then
		pass "ensure-rabbitmq: parse_amqp_url"
	else
		fail "ensure-rabbitmq: parse_amqp_url" "got '$got', want '$want'"
	fi
}

test_reuses_open_port() {
	local port stubs="$WORK/reuse/stubs" out
	port="$(free_port)"
	start_listener "$port" "$WORK/reuse.pid"
	make_stub "$stubs" rabbitmq-server "echo called >>'$WORK/reuse/server-called'"
	make_stub "$stubs" apt-get "echo called >>'$WORK/reuse/apt-called'"
	local waited=0
	until timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port" 2>/dev/null; do
		sleep 0.2
		waited=$((waited + 1))
		((waited < 50)) || break
	done
	if out="$(AMQP_URL="amqp://guest:guest@127.0.0.1:$port/" run_ensure "$stubs" 2>&1)" &&
		[[ -z "$out" && ! -e "$WORK/reuse/server-called" && ! -e "$WORK/reuse/apt-called" ]]; then
		pass "ensure-rabbitmq: reuses a listening broker quietly"
	else
		fail "ensure-rabbitmq: reuses a listening broker quietly" "output: $out"
	fi
}

test_installs_and_starts() {
	local port dir="$WORK/install" out
	port="$(free_port)"
	local stubs="$dir/stubs" sbin="$dir/sbin"
	mkdir -p "$sbin"
	# apt-get "installs" rabbitmq-server by writing stubs into the sbin dir:
	# the server starts a listener after a delay, and the ping answers once
	# that listener's pid file exists.
	make_stub "$stubs" apt-get "
echo \"\$*\" >>'$dir/apt.log'
if [[ \"\$*\" == *'install -y'*rabbitmq-server* ]]; then
	cat >'$sbin/rabbitmq-server' <<'EOS'
#!/usr/bin/env bash
echo \"\$*\" >>'$dir/server.log'
source '$SCRIPTS_DIR/test-scripts.sh' --library
start_listener $port '$dir/broker.pid' 2
EOS
	cat >'$sbin/rabbitmq-diagnostics' <<'EOS'
#!/usr/bin/env bash
[[ -s '$dir/broker.pid' ]] && kill -0 \"\$(cat '$dir/broker.pid')\" 2>/dev/null
EOS
	chmod +x '$sbin/rabbitmq-server' '$sbin/rabbitmq-diagnostics'
fi"
	if out="$(AMQP_URL="amqp://guest:guest@127.0.0.1:$port/" RABBITMQ_SBIN_DIR="$sbin" RABBITMQ_WAIT_SECS=20 \
		run_ensure "$stubs" 2>&1)" &&
		[[ "$(cat "$dir/apt.log")" == $'update -qq\ninstall -y -qq rabbitmq-server' ]] &&
		[[ "$(cat "$dir/server.log")" == "-detached" ]] &&
		timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port" 2>/dev/null; then
		pass "ensure-rabbitmq: installs, starts and waits for a missing broker"
	else
		fail "ensure-rabbitmq: installs, starts and waits for a missing broker" \
			"output: $out | apt: $(cat "$dir/apt.log" 2>/dev/null) | server: $(cat "$dir/server.log" 2>/dev/null)"
	fi
}

test_gives_up_with_message() {
	local port dir="$WORK/giveup" out
	port="$(free_port)"
	local stubs="$dir/stubs"
	# A node that answers ping but never opens the AMQP port: the script must
	# not start a second node, and must fail after RABBITMQ_WAIT_SECS.
	make_stub "$stubs" rabbitmq-server "echo called >>'$dir/server-called'"
	make_stub "$stubs" rabbitmq-diagnostics "exit 0"
	if out="$(AMQP_URL="amqp://127.0.0.1:$port" RABBITMQ_SBIN_DIR="$stubs" RABBITMQ_WAIT_SECS=2 \
		RABBITMQ_LOG_BASE="$dir/no-logs" \
		run_ensure "$stubs" 2>&1)"; then
		fail "ensure-rabbitmq: fails clearly when the broker never answers" "exited 0; output: $out"
	elif [[ "$out" == *"did not answer on 127.0.0.1:$port within 2s"* && ! -e "$dir/server-called" ]]; then
		pass "ensure-rabbitmq: fails clearly when the broker never answers"
	else
		fail "ensure-rabbitmq: fails clearly when the broker never answers" "output: $out"
	fi
}

# --- install-test-deps.sh ----------------------------------------------------

# deps_stubs DIR INSTALLED... makes dpkg-query answer from DIR/installed and
# apt-get log to DIR/apt.log; `apt-get install` marks its packages installed
# unless DIR/broken-apt exists.
deps_stubs() {
	local dir="$1"
	shift
	mkdir -p "$dir"
	printf '%s\n' "$@" >"$dir/installed"
	make_stub "$dir/stubs" dpkg-query "
pkg=\"\${!#}\"
if grep -qx \"\$pkg\" '$dir/installed'; then printf 'install ok installed'; exit 0; fi
echo \"dpkg-query: no packages found matching \$pkg\" >&2; exit 1"
	make_stub "$dir/stubs" apt-get "
echo \"\$*\" >>'$dir/apt.log'
if [[ \"\$1\" == install && ! -e '$dir/broken-apt' ]]; then
	for a in \"\$@\"; do [[ \"\$a\" == -* || \"\$a\" == install ]] || echo \"\$a\" >>'$dir/installed'; done
fi"
}

run_install_debs() {
	local dir="$1"
	(
		export PATH="$dir/stubs:/usr/local/bin:/usr/bin:/bin"
		# shellcheck source=/dev/null
		source "$SCRIPTS_DIR/install-test-deps.sh"
		as_root() { "$@"; }
		install_debs
	)
}

test_debs_all_present() {
	local dir="$WORK/debs-present" out
	deps_stubs "$dir" gcc python3-stomp python3-stomper ruby-stomp libnet-stomp-perl php-cli php-stomp
	if out="$(run_install_debs "$dir" 2>&1)" && [[ -z "$out" && ! -e "$dir/apt.log" ]]; then
		pass "install-test-deps: no apt-get at all when every package is installed"
	else
		fail "install-test-deps: no apt-get at all when every package is installed" \
			"output: $out | apt: $(cat "$dir/apt.log" 2>/dev/null)"
	fi
}

test_debs_some_missing() {
	local dir="$WORK/debs-missing" out
	deps_stubs "$dir" gcc python3-stomp ruby-stomp libnet-stomp-perl php-cli
	if out="$(run_install_debs "$dir" 2>&1)" &&
		[[ "$(cat "$dir/apt.log")" == $'update -qq\ninstall -y -qq python3-stomper php-stomp' ]]; then
		pass "install-test-deps: updates once and installs exactly the missing packages"
	else
		fail "install-test-deps: updates once and installs exactly the missing packages" \
			"output: $out | apt: $(cat "$dir/apt.log" 2>/dev/null)"
	fi
}

test_debs_install_fails() {
	local dir="$WORK/debs-broken" out
	deps_stubs "$dir" gcc
	touch "$dir/broken-apt"
	if out="$(run_install_debs "$dir" 2>&1)"; then
		fail "install-test-deps: fails when apt-get leaves packages missing" "exited 0; output: $out"
	elif [[ "$out" == *"still not installed after apt-get install: python3-stomp"* ]]; then
		pass "install-test-deps: fails when apt-get leaves packages missing"
	else
		fail "install-test-deps: fails when apt-get leaves packages missing" "output: $out"
	fi
}

test_staticcheck_version_check() {
	local dir="$WORK/staticcheck" out
	mkdir -p "$dir/gopath/bin"
	make_stub "$dir/stubs" go "
case \"\$1\" in
env) [[ \"\$2\" == GOPATH ]] && echo '$dir/gopath' || echo '' ;;
install) echo \"\$*\" >>'$dir/go-install.log' ;;
esac"
	run_staticcheck() {
		(
			export PATH="$dir/stubs:/usr/local/bin:/usr/bin:/bin"
			# shellcheck source=/dev/null
			source "$SCRIPTS_DIR/install-test-deps.sh"
			install_staticcheck
		)
	}
	make_stub "$dir/gopath/bin" staticcheck 'echo "staticcheck 2026.2.2 (0.8.2)"'
	run_staticcheck >/dev/null 2>&1
	local kept_right_version=0
	[[ ! -e "$dir/go-install.log" ]] && kept_right_version=1
	make_stub "$dir/gopath/bin" staticcheck 'echo "staticcheck 2025.1.1 (0.6.1)"'
	out="$(run_staticcheck 2>&1)" || true
	if ((kept_right_version)) &&
		[[ "$(cat "$dir/go-install.log" 2>/dev/null)" == "install honnef.co/go/tools/cmd/staticcheck@v0.8.2" ]]; then
		pass "install-test-deps: keeps staticcheck 0.8.2, replaces another version"
	else
		fail "install-test-deps: keeps staticcheck 0.8.2, replaces another version" \
			"kept=$kept_right_version output: $out | go: $(cat "$dir/go-install.log" 2>/dev/null)"
	fi
}

main() {
	WORK="$(mktemp -d)"
	trap cleanup EXIT
	test_parse_amqp_url
	test_reuses_open_port
	test_installs_and_starts
	test_gives_up_with_message
	test_debs_all_present
	test_debs_some_missing
	test_debs_install_fails
	test_staticcheck_version_check
	printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
	((FAILED == 0))
}

# `--library` is used by the fake rabbitmq-server to borrow start_listener.
if [[ "${1:-}" != "--library" ]]; then
	main
fi
