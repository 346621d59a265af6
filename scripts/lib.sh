# shellcheck shell=bash
# lib.sh: the helpers the bootstrap scripts share (ensure-*.sh,
# install-test-deps.sh). A script sets LOG_NAME, then sources this file:
#
#   LOG_NAME=ensure-foo
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# log writes one progress line to stderr (stdout is for results only).
log() { printf '%s: %s\n' "$LOG_NAME" "$*" >&2; }

# die logs an error and exits 1.
die() {
	log "ERROR: $*"
	exit 1
}

# as_root runs a command as root: directly when we are root, else via
# passwordless sudo. It returns the command's status.
as_root() {
	if [[ "$(id -u)" == 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		die "need root to run '$*' and sudo is not available"
	fi
}

# deb_installed reports whether Debian package $1 is installed.
deb_installed() {
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}
