#!/usr/bin/env bash
# install-test-deps.sh installs what `make test` needs beyond Go itself,
# each thing only when it is missing:
#
#   * Debian packages: gcc (cgo, for -race) and the real STOMP clients the
#     e2e suite drives (python3-stomp, python3-stomper, ruby-stomp,
#     libnet-stomp-perl, php-cli, php-stomp). `apt-get update` runs only if
#     something is missing.
#   * Go tools, pinned, into $(go env GOBIN) or $(go env GOPATH)/bin:
#     staticcheck v0.8.2 always.
#   * With --lint-tools only (for `make lint-full`): golangci-lint v2.15.0
#     (go install; about 4.5 minutes to build on 2 busy cores, so it is
#     kept out of the default test path) and Debian's shellcheck.
#
# Owned by the tooling (scripts/, Makefile, .ci/run). Idempotent and silent
# when everything is already there.
set -euo pipefail

STATICCHECK_PKG="honnef.co/go/tools/cmd/staticcheck"
STATICCHECK_VERSION="v0.8.2"
GOLANGCI_LINT_PKG="github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
GOLANGCI_LINT_VERSION="v2.15.0"

DEB_PACKAGES=(
	gcc
	python3-stomp
	python3-stomper
	ruby-stomp
	libnet-stomp-perl
	php-cli
	php-stomp
)

LOG_NAME=install-test-deps
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# missing_debs prints the packages of DEB_PACKAGES that are not installed.
missing_debs() {
	local pkg
	for pkg in "${DEB_PACKAGES[@]}"; do
		deb_installed "$pkg" || printf '%s\n' "$pkg"
	done
}

install_debs() {
	local missing
	mapfile -t missing < <(missing_debs)
	((${#missing[@]} == 0)) && return 0
	log "installing Debian packages: ${missing[*]}"
	as_root apt-get update -qq >/dev/null || die "apt-get update failed"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
	mapfile -t missing < <(missing_debs)
	((${#missing[@]} == 0)) || die "still not installed after apt-get install: ${missing[*]}"
}

# check_clients proves each e2e client library loads, so a broken install
# fails here with a clear message instead of deep inside an e2e test. The
# Debian python modules live in the system python, which may not be the
# first python3 on PATH (pyenv), so /usr/bin/python3 is used.
check_clients() {
	/usr/bin/python3 -c 'import stomp, stomper' 2>/dev/null ||
		die "/usr/bin/python3 cannot import stomp and stomper (python3-stomp, python3-stomper)"
	ruby -e 'require "stomp"' 2>/dev/null ||
		die "ruby cannot require 'stomp' (ruby-stomp)"
	perl -MNet::Stomp -e 1 2>/dev/null ||
		die "perl cannot load Net::Stomp (libnet-stomp-perl)"
	php -r 'exit(class_exists("Stomp") ? 0 : 1);' 2>/dev/null ||
		die "php has no Stomp class (php-stomp)"
}

go_bin_dir() {
	local gobin
	gobin="$(go env GOBIN)"
	[[ -n "$gobin" ]] || gobin="$(go env GOPATH)/bin"
	printf '%s\n' "$gobin"
}

install_staticcheck() {
	local bin
	bin="$(go_bin_dir)/staticcheck"
	# `staticcheck -version` prints e.g. "staticcheck 2026.2.2 (0.8.2)".
	if [[ -x "$bin" ]] && "$bin" -version 2>/dev/null | grep -qF "(${STATICCHECK_VERSION#v})"; then
		return 0
	fi
	log "installing staticcheck $STATICCHECK_VERSION"
	go install "$STATICCHECK_PKG@$STATICCHECK_VERSION" || die "go install staticcheck failed"
}

install_golangci_lint() {
	local bin
	bin="$(go_bin_dir)/golangci-lint"
	# `golangci-lint version` prints "golangci-lint has version v2.15.0 ..."
	# or, when built by go install, "... has version 2.15.0 ...".
	if [[ -x "$bin" ]] && "$bin" version 2>/dev/null | grep -qE "version v?${GOLANGCI_LINT_VERSION#v}( |$)"; then
		return 0
	fi
	log "installing golangci-lint $GOLANGCI_LINT_VERSION (a few minutes on 2 cores)"
	go install "$GOLANGCI_LINT_PKG@$GOLANGCI_LINT_VERSION" || die "go install golangci-lint failed"
}

# install_browser_test_deps serves the browser e2e test (e2e/browser_test.go,
# added with issue 5): Debian's chromium (never a browser downloaded by a
# tool), npm when no npm is on PATH (nodejs from elsewhere may bring its
# own), and @stomp/stompjs from e2e/testdata/browser/package-lock.json via
# npm ci, only when it is missing.
install_browser_test_deps() {
	local dir
	dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/e2e/testdata/browser"
	DEB_PACKAGES+=(chromium)
	command -v npm >/dev/null 2>&1 || DEB_PACKAGES+=(npm)
	install_debs
	if [[ -f "$dir/package-lock.json" && ! -f "$dir/node_modules/@stomp/stompjs/bundles/stomp.umd.min.js" ]]; then
		log "installing @stomp/stompjs into $dir/node_modules (npm ci)"
		npm ci --prefix "$dir" --no-audit --no-fund >/dev/null || die "npm ci --prefix $dir failed"
	fi
}

# install_garagemq installs Debian's garagemq, the second AMQP broker of
# the e2e suite (e2e/garagemq_test.go, issue 7: broker profiles). The tests
# start their own instance on free loopback ports; the package's systemd
# unit would listen on 127.0.0.1:5672, RabbitMQ's port, so it is disabled
# where systemd runs. Kept out of DEB_PACKAGES so the package-list tests of
# scripts/test-scripts.sh stay as they are.
install_garagemq() {
	deb_installed garagemq && return 0
	log "installing Debian package: garagemq"
	as_root apt-get update -qq >/dev/null || die "apt-get update failed"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq garagemq >/dev/null ||
		die "apt-get install garagemq failed"
	if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
		as_root systemctl disable --now garagemq.service >/dev/null 2>&1 || true
	fi
	command -v garagemq >/dev/null 2>&1 || die "garagemq is not on PATH after apt-get install garagemq"
}

main() {
	local with_lint_tools=0 arg
	for arg in "$@"; do
		case "$arg" in
		--lint-tools) with_lint_tools=1 ;;
		*) die "unknown argument '$arg' (known: --lint-tools)" ;;
		esac
	done
	command -v go >/dev/null 2>&1 || die "go is not on PATH (expected /usr/local/go/bin)"

	install_debs
	check_clients
	install_garagemq
	install_browser_test_deps
	install_staticcheck
	if ((with_lint_tools)); then
		DEB_PACKAGES+=(shellcheck)
		install_debs
		install_golangci_lint
	fi
}

# Sourcing the file (for its tests) defines the functions without running.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	main "$@"
fi
