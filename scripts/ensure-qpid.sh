#!/usr/bin/env bash
# ensure-qpid.sh makes sure an Apache Qpid Broker-J made for tests runs on a
# free loopback port, and prints its AMQP URL on stdout (nothing else goes
# there): amqp://guest:guest@127.0.0.1:<port>/
#
# Owned by the tooling (scripts/, Makefile). Used by `make qpid`; typical use:
#
#   AMQP=$(scripts/ensure-qpid.sh)   # start, or reuse the one it started
#   scripts/ensure-qpid.sh stop      # stop it and remove its work dir
#   scripts/ensure-qpid.sh status    # print its URL if it answers, else exit 1
#
#   1. If the broker this script started earlier (state file) still answers
#      AMQP, print its URL and stop there.
#   2. Otherwise install what is missing (Debian's JRE 17 and Maven), fetch
#      the Broker-J binary bundle from Maven Central with
#      `mvn dependency:get -Dtransitive=false` into a cache dir, check its
#      SHA-256 against the value pinned below, and unpack it.
#   3. Start it detached in a fresh work dir with an initial config for tests:
#      memory stores, a Plain provider with guest/guest and PLAIN allowed over
#      plain TCP, one AMQP port on 127.0.0.1 (port 0, so the kernel picks a
#      free one), no HTTP management, a Memory vhost node `default` that the
#      vhost names "/", "" and "default" all reach.
#   4. Wait (bounded) for BRK-1002 (the bound port) and BRK-1004 (ready), then
#      check that the port answers the AMQP header with connection.start.
#
# Broker-J 10.0.1 (what issue 15 names) cannot be had from Maven Central: the
# bundle, qpid-broker and the logback plugin of 10.0.x were never published
# there (qpid-broker's maven-metadata.xml goes from 9.2.1 to 10.1.0). So the
# default is 10.1.0, the current release; 9.2.1 is pinned too.
#
# Environment:
#   QPID_VERSION    Broker-J version (default 10.1.0; pinned: 10.1.0, 9.2.1)
#   QPID_CACHE_DIR  downloads and the unpacked bundle
#                   (default ${XDG_CACHE_HOME:-$HOME/.cache}/stompgate/qpid)
#   QPID_STATE_DIR  state file, lock, and the broker's work dirs
#                   (default /tmp/stompgate-qpid)
#   QPID_WAIT_SECS  how long to wait for the broker to be ready (default 90)
#   QPID_JAVA_OPTS  JVM options (default: 256 MiB heap and direct memory, SerialGC)
#   QPID_SHA256     override the pinned SHA-256 of the bundle (for other versions)
set -euo pipefail

QPID_VERSION="${QPID_VERSION:-10.1.0}"
CACHE_DIR="${QPID_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stompgate/qpid}"
STATE_DIR="${QPID_STATE_DIR:-/tmp/stompgate-qpid}"
WAIT_SECS="${QPID_WAIT_SECS:-90}"
JAVA_OPTS="${QPID_JAVA_OPTS:--Xms64m -Xmx256m -XX:MaxDirectMemorySize=256m -XX:+UseSerialGC}"
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
STATE_FILE="$STATE_DIR/state"

LOG_NAME=ensure-qpid
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# pinned_sha256 prints the SHA-256 of the bin tar.gz of a version, taken from
# the first download. Central has no checksum files for the 10.1.0 bundle
# (`mvn -C` fails with "Checksum validation failed, no checksums available"),
# so this pin is the check; its lib/qpid-broker-core-10.1.0.jar has the same
# SHA-1 as the separately published, checksummed jar on Central.
pinned_sha256() {
	if [[ -n "${QPID_SHA256:-}" ]]; then
		printf '%s\n' "$QPID_SHA256"
		return
	fi
	case "$1" in
	10.1.0) echo bfb97420312e4b1050f337c9633cf84ae7fbfc0fccfbe6e65a38383e33878a40 ;;
	9.2.1) echo bfbfbcffc6a8ad904f97edc6dcebc688f232b582843b9cb1f240decb8b8a181a ;;
	*) die "no SHA-256 pinned for Broker-J $1; set QPID_SHA256" ;;
	esac
}

apt_install() {
	log "installing Debian packages: $*"
	as_root apt-get update -qq >/dev/null || die "apt-get update failed"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null ||
		die "apt-get install $* failed"
}

# java_major prints the major version of `java` on PATH (e.g. 17).
java_major() {
	java -XshowSettings:properties -version 2>&1 |
		sed -n 's/^ *java\.specification\.version = \([0-9.]*\)$/\1/p' | head -n 1
}

install_tools() {
	local pkgs=() major
	if ! command -v java >/dev/null 2>&1; then
		pkgs+=(default-jre-headless)
	else
		major="$(java_major)"
		if [[ ! "$major" =~ ^[0-9]+$ ]] || ((major < 17)); then
			pkgs+=(openjdk-17-jre-headless)
		fi
	fi
	command -v mvn >/dev/null 2>&1 || pkgs+=(maven)
	if ((${#pkgs[@]})); then
		apt_install "${pkgs[@]}"
		hash -r
	fi
	command -v java >/dev/null 2>&1 || die "java is still missing after installing it"
	command -v mvn >/dev/null 2>&1 || die "mvn is still missing after installing it"
	major="$(java_major)"
	if [[ "$major" =~ ^[0-9]+$ ]] && ((major < 17)); then
		die "Broker-J $QPID_VERSION needs Java 17 or later; java on PATH is $major"
	fi
}

# fetch_bundle downloads (once), verifies and unpacks the bundle, and sets
# QPID_HOME to the unpacked directory.
fetch_bundle() {
	local repo="$CACHE_DIR/m2" tgz want got
	QPID_HOME="$CACHE_DIR/qpid-broker/$QPID_VERSION"
	if [[ -f "$QPID_HOME/.verified" && -f "$QPID_HOME/lib/qpid-broker-$QPID_VERSION.jar" ]]; then
		return 0
	fi
	want="$(pinned_sha256 "$QPID_VERSION")"
	tgz="$repo/org/apache/qpid/apache-qpid-broker-j/$QPID_VERSION/apache-qpid-broker-j-$QPID_VERSION-bin.tar.gz"
	if [[ ! -f "$tgz" ]]; then
		log "fetching org.apache.qpid:apache-qpid-broker-j:$QPID_VERSION:tar.gz:bin from Maven Central"
		mkdir -p "$repo"
		# Maven checks the SHA-1 when Central has one (9.2.1 does, 10.1.0 does not).
		mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$repo" "$DEP_PLUGIN:get" \
			-Dartifact="org.apache.qpid:apache-qpid-broker-j:$QPID_VERSION:tar.gz:bin" \
			-Dtransitive=false >&2 ||
			die "mvn could not fetch Broker-J $QPID_VERSION from Maven Central (see above)"
	fi
	[[ -f "$tgz" ]] || die "mvn succeeded but $tgz is missing"
	got="$(sha256sum "$tgz" | cut -d' ' -f1)"
	if [[ "$got" != "$want" ]]; then
		rm -f "$tgz"
		die "SHA-256 of the Broker-J $QPID_VERSION bundle is $got, expected $want; removed it"
	fi
	if [[ -f "$tgz.sha1" ]]; then
		[[ "$(sha1sum "$tgz" | cut -d' ' -f1)" == "$(tr -d ' \n' <"$tgz.sha1" | cut -c1-40)" ]] ||
			die "SHA-1 of $tgz does not match $tgz.sha1"
	fi
	log "unpacking Broker-J $QPID_VERSION into $CACHE_DIR/qpid-broker"
	rm -rf "$QPID_HOME"
	mkdir -p "$CACHE_DIR"
	# The bundle's top directory is qpid-broker/<version>/.
	tar -xzf "$tgz" -C "$CACHE_DIR"
	[[ -f "$QPID_HOME/lib/qpid-broker-$QPID_VERSION.jar" ]] ||
		die "the bundle did not unpack to $QPID_HOME"
	touch "$QPID_HOME/.verified"
}

# port_open reports whether a TCP connect to 127.0.0.1:port succeeds within 2 s.
port_open() {
	# shellcheck disable=SC2016 # $1 expands in the inner bash.
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# amqp_answers reports whether 127.0.0.1:port answers the AMQP 0-9-1 header
# with a method frame (connection.start begins 01 00 00).
amqp_answers() {
	local first
	# shellcheck disable=SC2016 # $1 expands in the inner bash.
	first="$(timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" &&
		printf "AMQP\x00\x00\x09\x01" >&3 && head -c 3 <&3 | od -An -tx1' _ "$1" 2>/dev/null)" || return 1
	[[ "${first//[[:space:]]/}" == "010000" ]]
}

# read_state sets STATE_PID, STATE_PORT and STATE_WORK from the state file.
read_state() {
	STATE_PID="" STATE_PORT="" STATE_WORK=""
	[[ -f "$STATE_FILE" ]] || return 1
	read -r STATE_PID STATE_PORT STATE_WORK <"$STATE_FILE" || true
	[[ "$STATE_PID" =~ ^[0-9]+$ && "$STATE_PORT" =~ ^[0-9]+$ ]]
}

# running_broker_port prints the port of the broker in the state file if its
# process is alive and it answers AMQP.
running_broker_port() {
	read_state || return 1
	kill -0 "$STATE_PID" 2>/dev/null || return 1
	amqp_answers "$STATE_PORT" || return 1
	printf '%s\n' "$STATE_PORT"
}

print_url() { printf 'amqp://guest:guest@127.0.0.1:%s/\n' "$1"; }

write_config() {
	cat >"$1" <<'EOF'
{
  "name": "stompgate-qpid",
  "modelVersion": "9.1",
  "authenticationproviders": [ {
    "name": "plain",
    "type": "Plain",
    "secureOnlyMechanisms": [],
    "users": [ { "name": "guest", "type": "managed", "password": "guest" } ]
  } ],
  "brokerloggers": [ {
    "name": "console",
    "type": "Console",
    "brokerloginclusionrules": [
      { "name": "Root", "type": "NameAndLevel", "level": "WARN", "loggerName": "ROOT" },
      { "name": "Operational", "type": "NameAndLevel", "level": "INFO", "loggerName": "qpid.message.*" }
    ]
  } ],
  "ports": [ {
    "name": "AMQP",
    "type": "AMQP",
    "port": "${qpid.amqp_port}",
    "bindingAddress": "127.0.0.1",
    "authenticationProvider": "plain",
    "virtualhostaliases": [
      { "name": "defaultAlias", "type": "defaultAlias" },
      { "name": "nameAlias", "type": "nameAlias" }
    ]
  } ],
  "virtualhostnodes": [ {
    "name": "default",
    "type": "Memory",
    "defaultVirtualHostNode": "true",
    "virtualHostInitialConfiguration": "{\"type\":\"Memory\"}"
  } ]
}
EOF
}

stop_broker() {
	if ! read_state; then
		log "no Broker-J state in $STATE_FILE; nothing to stop"
		rm -f "$STATE_FILE"
		return 0
	fi
	if kill -0 "$STATE_PID" 2>/dev/null; then
		log "stopping Broker-J pid $STATE_PID (port $STATE_PORT)"
		kill -TERM "$STATE_PID" 2>/dev/null || true
		local i
		for ((i = 0; i < 30; i++)); do
			kill -0 "$STATE_PID" 2>/dev/null || break
			sleep 1
		done
		if kill -0 "$STATE_PID" 2>/dev/null; then
			log "pid $STATE_PID still runs after 30s; sending KILL"
			kill -KILL "$STATE_PID" 2>/dev/null || true
		fi
	fi
	rm -f "$STATE_FILE"
	case "$STATE_WORK" in
	"$STATE_DIR"/work.*) rm -rf "$STATE_WORK" ;;
	esac
}

# close_inherited_fds closes every descriptor above 2 in the current (sub)shell.
close_inherited_fds() {
	local fd
	for fd in /proc/"$BASHPID"/fd/*; do
		fd="${fd##*/}"
		if [[ ! "$fd" =~ ^[0-9]+$ ]] || ((fd <= 2)); then
			continue
		fi
		eval "exec $fd>&-" 2>/dev/null || true
	done
}

start_broker() {
	local work cfg out pid port="" started=$SECONDS
	work="$(mktemp -d "$STATE_DIR/work.XXXXXX")"
	cfg="$work/initial-config.json"
	out="$work/broker.out"
	write_config "$cfg"
	log "starting Broker-J $QPID_VERSION in $work"
	# setsid: own session, so the caller's Ctrl-C or make's process group
	# does not reach it. The broker inherits no descriptor but its log
	# (stdout, the lock, a caller's pipes are all closed), so
	# `$(ensure-qpid.sh)` returns and the lock is released when we exit.
	# setsid execs in place, so $! is the java pid.
	# The work dir is its cwd: the bundled Derby plugin writes derby.log there.
	(
		close_inherited_fds
		cd "$work" || exit 1
		# shellcheck disable=SC2086 # JAVA_OPTS is a list of options.
		exec setsid java $JAVA_OPTS -DQPID_HOME="$QPID_HOME" -DQPID_WORK="$work" \
			-cp "$QPID_HOME/lib/*" org.apache.qpid.server.Main \
			--store-type Memory --initial-config-path "$cfg" \
			-prop qpid.amqp_port=0 -prop qpid.work_dir="$work" \
			-prop broker.failStartupWithErroredChild=true
	) </dev/null >"$out" 2>&1 &
	pid=$!
	printf '%s 0 %s\n' "$pid" "$work" >"$STATE_FILE"
	until grep -q 'BRK-1004' "$out" 2>/dev/null; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$out" >&2 || true
			die "Broker-J exited during start-up (log: $out)"
		fi
		if ((SECONDS - started >= WAIT_SECS)); then
			tail -n 30 "$out" >&2 || true
			kill -TERM "$pid" 2>/dev/null || true
			die "Broker-J did not log BRK-1004 (ready) within ${WAIT_SECS}s (log: $out)"
		fi
		sleep 0.3
	done
	# BRK-1002 : Starting : Listening on TCP port 41234
	port="$(sed -n 's/.*BRK-1002 : Starting : Listening on TCP port \([0-9][0-9]*\).*/\1/p' "$out" | tail -n 1)"
	[[ "$port" =~ ^[0-9]+$ && "$port" != 0 ]] || {
		tail -n 30 "$out" >&2 || true
		kill -TERM "$pid" 2>/dev/null || true
		die "Broker-J is ready but logged no BRK-1002 listening port (log: $out)"
	}
	amqp_answers "$port" || {
		kill -TERM "$pid" 2>/dev/null || true
		die "Broker-J logged port $port but it does not answer the AMQP header"
	}
	printf '%s %s %s\n' "$pid" "$port" "$work" >"$STATE_FILE"
	log "Broker-J $QPID_VERSION is up on 127.0.0.1:$port, pid $pid (after $((SECONDS - started))s; log: $out)"
	print_url "$port"
}

main() {
	local cmd="${1:-start}" port
	mkdir -p "$STATE_DIR"
	# One caller at a time: a second `ensure-qpid.sh` waits, then reuses.
	exec 9>"$STATE_DIR/lock"
	flock -w 300 9 || die "could not lock $STATE_DIR/lock within 300s"
	case "$cmd" in
	start)
		if port="$(running_broker_port)"; then
			print_url "$port"
			return 0
		fi
		# A stale entry: a dead pid, or one that no longer answers.
		read_state && stop_broker
		install_tools
		fetch_bundle
		start_broker
		;;
	stop) stop_broker ;;
	status)
		port="$(running_broker_port)" || {
			log "no running Broker-J started by this script"
			return 1
		}
		print_url "$port"
		;;
	*) die "usage: $0 [start|stop|status]" ;;
	esac
}

# Sourcing the file (for its tests) defines the functions without running.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	main "$@"
fi
