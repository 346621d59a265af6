#!/usr/bin/env bash
# ensure-activemq.sh makes sure a real Apache ActiveMQ 5.17 (Debian's
# `activemq` package) answers STOMP on a free loopback port and prints that
# address (127.0.0.1:<port>) on stdout, nothing else. The ActiveMQ
# differential tests (issue 14) run the same STOMP programs against it and
# against stompgate in front of RabbitMQ.
#
# Owned by the ActiveMQ differential tests; `make activemq` runs it.
#
#   1. If the instance this script started earlier (state in
#      $ACTIVEMQ_STATE_DIR) still answers a STOMP CONNECT, reuse it.
#   2. Otherwise install Debian's activemq package if it is missing (it
#      brings a JRE), write a broker config of our own into the state
#      directory and start the broker as a plain background process (no
#      init system): its own data directory, no JMX, no web console, and a
#      single transport connector, STOMP on 127.0.0.1 with a port the
#      kernel picks (port 0; the bound port is read back from the log).
#   3. Wait (bounded) until a STOMP CONNECT is answered with CONNECTED.
#
# The broker is configured as the gateway's ActiveMQ dialect expects:
#   * schedulerSupport="true" (AMQ_SCHEDULED_DELAY, AMQ_SCHEDULED_TIME);
#   * an individual dead-letter strategy, so a queue's poison messages go
#     to DLQ.<queue> (ActiveMQ's default is one shared ActiveMQ.DLQ);
#   * the redelivery plugin with maximumRedeliveries=$ACTIVEMQ_MAX_REDELIVERIES
#     and a 1 s delay (ActiveMQ refuses less than 1000 ms here): a STOMP NACK (a "poison ack" in ActiveMQ) redelivers the
#     message until the limit, then dead-letters it. Without the plugin
#     ActiveMQ dead-letters on the first NACK.
#
# Usage: ensure-activemq.sh        start or reuse; prints 127.0.0.1:<port>
#        ensure-activemq.sh stop   stop the broker this script started
#
# Idempotent; progress goes to stderr, only the address to stdout. No
# process it leaves behind keeps the caller's stdout or stderr open.
#
# Environment:
#   ACTIVEMQ_STATE_DIR          config, data, log, pid (default /tmp/stompgate-activemq)
#   ACTIVEMQ_WAIT_SECS          how long to wait for the broker (default 120)
#   ACTIVEMQ_MAX_REDELIVERIES   the redelivery plugin's limit (default 2)
#   ACTIVEMQ_HOME               the installation (default /usr/share/activemq)
#   ACTIVEMQ_JAVA_MEMORY        JVM heap options (default "-Xms64m -Xmx384m")
set -euo pipefail

STATE_DIR="${ACTIVEMQ_STATE_DIR:-/tmp/stompgate-activemq}"
WAIT_SECS="${ACTIVEMQ_WAIT_SECS:-120}"
MAX_REDELIVERIES="${ACTIVEMQ_MAX_REDELIVERIES:-2}"
AMQ_HOME="${ACTIVEMQ_HOME:-/usr/share/activemq}"
JAVA_MEMORY="${ACTIVEMQ_JAVA_MEMORY:--Xms64m -Xmx384m}"

CONF_DIR="$STATE_DIR/conf"
DATA_DIR="$STATE_DIR/data"
PID_FILE="$STATE_DIR/activemq.pid"
ADDR_FILE="$STATE_DIR/stomp.addr"
LOG_FILE="$STATE_DIR/console.log"

LOG_NAME=ensure-activemq
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# apt_get runs apt-get as root, waiting (bounded) for another apt or dpkg
# (for example `make deps` running in parallel) to release its locks.
apt_get() {
	as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@"
}

install_activemq() {
	deb_installed activemq && [[ -f "$AMQ_HOME/bin/activemq.jar" ]] && return 0
	log "installing Debian's activemq package"
	if ! apt-cache show activemq >/dev/null 2>&1; then
		apt_get update -qq >/dev/null || die "apt-get update failed"
	fi
	apt_get install -y -qq activemq >/dev/null || die "apt-get install activemq failed"
	[[ -f "$AMQ_HOME/bin/activemq.jar" ]] || die "$AMQ_HOME/bin/activemq.jar is missing after installing activemq"
}

# stomp_ready reports whether host:port answers a STOMP 1.2 CONNECT with
# CONNECTED within 5 s.
stomp_ready() {
	local reply
	# shellcheck disable=SC2016 # $1 and $2 expand in the inner bash.
	reply="$(timeout 5 bash -c '
		exec 3<>"/dev/tcp/$1/$2" || exit 1
		printf "CONNECT\naccept-version:1.2\nhost:localhost\nlogin:guest\npasscode:guest\n\n\0" >&3
		IFS= read -r -t 4 line <&3 && printf "%s" "$line"
		printf "DISCONNECT\n\n\0" >&3' _ "$1" "$2" 2>/dev/null)" || return 1
	[[ "$reply" == CONNECTED* ]]
}

pid_alive() {
	local pid
	[[ -f "$PID_FILE" ]] || return 1
	pid="$(cat "$PID_FILE")"
	[[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# running_addr prints the address of the instance we started, if it answers.
running_addr() {
	local addr
	pid_alive || return 1
	[[ -f "$ADDR_FILE" ]] || return 1
	addr="$(cat "$ADDR_FILE")"
	stomp_ready "${addr%:*}" "${addr##*:}" || return 1
	echo "$addr"
}

stop_broker() {
	local pid waited=0
	if pid_alive; then
		pid="$(cat "$PID_FILE")"
		log "stopping ActiveMQ (pid $pid)"
		kill "$pid" 2>/dev/null || true
		while kill -0 "$pid" 2>/dev/null; do
			if ((waited >= 30)); then
				log "ActiveMQ did not stop within 30s; killing it"
				kill -9 "$pid" 2>/dev/null || true
				break
			fi
			sleep 1
			waited=$((waited + 1))
		done
	fi
	rm -f "$PID_FILE" "$ADDR_FILE"
}

write_config() {
	mkdir -p "$CONF_DIR" "$DATA_DIR"
	cat >"$CONF_DIR/activemq.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by stompgate scripts/ensure-activemq.sh: the ActiveMQ 5.17 that
     the differential tests (issue 14) compare stompgate with. STOMP only,
     on loopback, on a port the kernel picks. -->
<beans
  xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">

  <broker xmlns="http://activemq.apache.org/schema/core"
          brokerName="stompgate-differential"
          useJmx="false"
          schedulerSupport="true"
          dataDirectory="$DATA_DIR"
          schedulerDirectory="$DATA_DIR/scheduler">

    <destinationPolicy>
      <policyMap>
        <policyEntries>
          <policyEntry queue=">">
            <deadLetterStrategy>
              <individualDeadLetterStrategy queuePrefix="DLQ." useQueueForQueueMessages="true"/>
            </deadLetterStrategy>
          </policyEntry>
          <policyEntry topic=">">
            <deadLetterStrategy>
              <individualDeadLetterStrategy queuePrefix="DLQ." topicPrefix="DLQ." useQueueForTopicMessages="true"/>
            </deadLetterStrategy>
          </policyEntry>
        </policyEntries>
      </policyMap>
    </destinationPolicy>

    <managementContext>
      <managementContext createConnector="false"/>
    </managementContext>

    <persistenceAdapter>
      <kahaDB directory="$DATA_DIR/kahadb"/>
    </persistenceAdapter>

    <plugins>
      <redeliveryPlugin fallbackToDeadLetter="true" sendToDlqIfMaxRetriesExceeded="true">
        <redeliveryPolicyMap>
          <redeliveryPolicyMap>
            <defaultEntry>
              <redeliveryPolicy maximumRedeliveries="$MAX_REDELIVERIES" initialRedeliveryDelay="1000" redeliveryDelay="1000"/>
            </defaultEntry>
          </redeliveryPolicyMap>
        </redeliveryPolicyMap>
      </redeliveryPlugin>
    </plugins>

    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:0"/>
    </transportConnectors>
  </broker>
</beans>
EOF
	# Debian's build logs through slf4j-log4j12, that is log4j 1.2.
	cat >"$CONF_DIR/log4j.properties" <<'EOF'
# Written by stompgate scripts/ensure-activemq.sh: everything to the console,
# which the script redirects to console.log in the state directory.
log4j.rootLogger=INFO, console
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{ISO8601} %5p | %m | %c%n
EOF
}

start_broker() {
	local java
	java="$(command -v java)" || die "java is not on PATH (Debian's activemq package should have brought one)"
	: >"$LOG_FILE"
	log "starting ActiveMQ (state in $STATE_DIR)"
	# The --add-opens list is the one Debian's /usr/bin/activemq passes on
	# Java 9 and later. setsid + nohup: the broker outlives this script
	# and holds none of the caller's file descriptors.
	# shellcheck disable=SC2086 # JAVA_MEMORY is a list of options.
	setsid nohup "$java" $JAVA_MEMORY \
		--add-reads=java.xml=java.logging \
		--add-opens java.base/java.security=ALL-UNNAMED \
		--add-opens java.base/java.net=ALL-UNNAMED \
		--add-opens java.base/java.lang=ALL-UNNAMED \
		--add-opens java.base/java.util=ALL-UNNAMED \
		--add-opens java.naming/javax.naming.spi=ALL-UNNAMED \
		--add-opens java.rmi/sun.rmi.transport.tcp=ALL-UNNAMED \
		--add-opens java.base/java.util.concurrent=ALL-UNNAMED \
		--add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED \
		--add-exports=java.base/sun.net.www.protocol.http=ALL-UNNAMED \
		--add-exports=java.base/sun.net.www.protocol.https=ALL-UNNAMED \
		--add-exports=java.base/sun.net.www.protocol.jar=ALL-UNNAMED \
		--add-exports=jdk.xml.dom/org.w3c.dom.html=ALL-UNNAMED \
		--add-exports=jdk.naming.rmi/com.sun.jndi.url.rmi=ALL-UNNAMED \
		-Dactivemq.classpath="$CONF_DIR" \
		-Dactivemq.home="$AMQ_HOME" \
		-Dactivemq.base="$STATE_DIR" \
		-Dactivemq.conf="$CONF_DIR" \
		-Dactivemq.data="$DATA_DIR" \
		-Dlog4j.configuration="file:$CONF_DIR/log4j.properties" \
		-jar "$AMQ_HOME/bin/activemq.jar" start "xbean:file:$CONF_DIR/activemq.xml" \
		</dev/null >>"$LOG_FILE" 2>&1 &
	echo "$!" >"$PID_FILE"
}

# bound_port prints the STOMP port from the broker's log line
# "Listening for connections at: stomp://localhost:<port>" (it binds
# 127.0.0.1 as configured but names the host localhost).
bound_port() {
	sed -n 's#.*Listening for connections at: stomp://[^:/]*:\([0-9][0-9]*\).*#\1#p' "$LOG_FILE" | tail -n 1
}

main() {
	[[ "$MAX_REDELIVERIES" =~ ^-?[0-9]+$ ]] || die "ACTIVEMQ_MAX_REDELIVERIES must be a number, got '$MAX_REDELIVERIES'"
	if [[ "${1:-}" == stop ]]; then
		stop_broker
		return 0
	fi
	[[ $# == 0 ]] || die "usage: $0 [stop]"

	local addr port started
	mkdir -p "$STATE_DIR"
	if addr="$(running_addr)"; then
		echo "$addr"
		return 0
	fi
	# A broker we started that no longer answers is stopped first.
	stop_broker
	install_activemq
	write_config
	started=$SECONDS
	start_broker

	until port="$(bound_port)" && [[ -n "$port" ]] && stomp_ready 127.0.0.1 "$port"; do
		if ! pid_alive; then
			tail -n 20 "$LOG_FILE" >&2 || true
			die "ActiveMQ exited during startup; see $LOG_FILE"
		fi
		if ((SECONDS - started >= WAIT_SECS)); then
			tail -n 20 "$LOG_FILE" >&2 || true
			stop_broker
			die "ActiveMQ did not answer STOMP within ${WAIT_SECS}s; see $LOG_FILE"
		fi
		sleep 1
	done
	addr="127.0.0.1:$port"
	echo "$addr" >"$ADDR_FILE"
	log "ActiveMQ answers STOMP on $addr (after $((SECONDS - started))s)"
	echo "$addr"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	main "$@"
fi
