#!/usr/bin/env bash
# test/deps.sh - install what building and testing eventsourcing need.
#
# Usage: test/deps.sh
#
# As root on Debian 12: installs the missing packages with apt-get (nothing
# at all is run when everything is installed, so reruns are fast).  As any
# other user: only checks, lists what is missing and exits 1.
# ES_SKIP_DEPS=1 skips the check (e.g. PostgreSQL built from source).
#
# Installing postgresql-15 makes Debian create and start a "main" cluster on
# port 5432.  That is harmless and left alone: our scripts start private
# clusters on other ports (test/cluster.sh) and never use it.
set -euo pipefail

PG_BIN=/usr/lib/postgresql/15/bin

# server, headers + PGXS, client tools (psql, pg_isready; pgbench is in
# postgresql-15), jansson, build tools, cppcheck, IPC::Run for TAP tests,
# and for the fuzz test (test/fuzz/run.sh): clang (the "clang" command;
# Debian 12's clang is clang-14) and libclang-rt-14-dev, clang-14's
# compiler-rt: libFuzzer and the ASan/UBSan runtimes; for the relay
# (relay/) and its tests: libpq-dev, libwebsockets-dev, python3-websockets;
# for the browser test (test/browser/): chromium, nodejs and npm (npm then
# fetches puppeteer-core, which downloads no browser)
PACKAGES=(
	postgresql-15
	postgresql-server-dev-15
	postgresql-client-15
	libjansson-dev
	pkg-config
	make
	gcc
	cppcheck
	libipc-run-perl
	clang
	libclang-rt-14-dev
	libpq-dev
	libwebsockets-dev
	python3-websockets
	chromium
)

if [ "${ES_SKIP_DEPS:-0}" = 1 ]; then
	echo "deps.sh: ES_SKIP_DEPS=1, not checking packages"
	exit 0
fi

# is_installed PKG: true if dpkg knows PKG as fully installed.
is_installed() {
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

# installed_packages: the names of the packages dpkg has fully installed,
# one per line (one dpkg-query for the whole list, so reruns stay fast)
installed_packages() {
	dpkg-query -W -f='${binary:Package} ${db:Status-Status}\n' 2>/dev/null |
		awk '$2 == "installed" { sub(/:.*/, "", $1); print $1 }'
}

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
	have=$(installed_packages)
	for p in "${PACKAGES[@]}"; do
		grep -qxF -- "$p" <<<"$have" || missing+=("$p")
	done
else
	echo "deps.sh: dpkg-query not found: this script expects Debian 12" >&2
	exit 1
fi
# Debian's nodejs and npm, unless a node with npm is there already (from
# another source: its own packages would conflict with Debian's npm)
if ! command -v npm >/dev/null 2>&1; then
	for p in nodejs npm; do
		grep -qxF -- "$p" <<<"$have" || missing+=("$p")
	done
fi

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps.sh: all packages installed"
elif [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: install them as root: test/deps.sh, or" >&2
	echo "  apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
else
	echo "deps.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# a fresh machine has no package lists; retry for flaky mirrors
	ok=false
	for attempt in 1 2 3; do
		if apt-get update -q &&
			apt-get install -y -q --no-install-recommends "${missing[@]}"; then
			ok=true
			break
		fi
		echo "deps.sh: apt-get failed (attempt $attempt of 3)" >&2
		sleep $((attempt * 5))
	done
	if ! $ok; then
		echo "deps.sh: could not install ${missing[*]}" >&2
		exit 1
	fi
	for p in "${missing[@]}"; do
		if ! is_installed "$p"; then
			echo "deps.sh: $p is still not installed" >&2
			exit 1
		fi
	done
fi

if [ ! -x "$PG_BIN/pg_config" ]; then
	echo "deps.sh: $PG_BIN/pg_config not found" >&2
	exit 1
fi
case ":$PATH:" in
	*":$PG_BIN:"*) ;;
	*) echo "deps.sh: for pg_config/pg_ctl on PATH: export PATH=$PG_BIN:\$PATH" ;;
esac
