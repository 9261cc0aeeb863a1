#!/usr/bin/env bash
# test/cluster.sh - manage a private, throwaway PostgreSQL 15 cluster.
#
# Usage: test/cluster.sh DIR PORT start|stop|stop-immediate|restart|status|destroy
#
#   DIR    data directory (e.g. "$REPO/.cluster" or "$REPO/.test-cluster");
#          created with initdb on the first "start".
#   PORT   TCP port; the server listens on 127.0.0.1 only, its unix socket
#          lives in DIR/socket.
#
#   start           initdb if DIR holds no cluster yet, then start and wait
#                   until the server accepts connections (no-op if running)
#   stop            fast shutdown (no-op if not running)
#   stop-immediate  "pg_ctl stop -m immediate": a simulated crash; the next
#                   start runs crash recovery
#   restart         stop (fast) if running, then start
#   status          pg_ctl status; exit 0 if running, 3 if not, 4 if no cluster
#   destroy         stop (immediate) if running and delete the cluster
#
# Environment:
#   ES_EXTRA_CONF   text appended to postgresql.conf when the cluster is
#                   created (e.g. "shared_preload_libraries = 'eventsourcing'");
#                   ignored, with a warning, for an existing cluster.
#   PG_BIN          PostgreSQL binaries (default /usr/lib/postgresql/15/bin).
#
# As root, the cluster is owned by and run as the OS user "postgres" (the
# server refuses to run as root); otherwise it runs as the current user.  The
# superuser is always "postgres" and authentication is "trust": this cluster is
# for tests and demos only.  fsync stays on so crash tests mean something.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
export PATH="$PG_BIN:$PATH"
PROG=$(basename "$0")

usage() {
	echo "usage: $PROG DIR PORT start|stop|stop-immediate|restart|status|destroy" >&2
	exit 2
}

msg() { echo "$PROG: $*"; }
die() { echo "$PROG: error: $*" >&2; exit 1; }

[ $# -eq 3 ] || usage
DIR_ARG=$1
PORT=$2
ACTION=$3
case "$PORT" in
	'' | *[!0-9]*) die "PORT must be a number, got \"$PORT\"" ;;
esac
if [ "$PORT" -lt 1024 ] || [ "$PORT" -gt 65535 ]; then
	die "PORT must be in 1024..65535, got $PORT"
fi
case "$ACTION" in
	start | stop | stop-immediate | restart | status | destroy) ;;
	*) usage ;;
esac
[ -x "$PG_BIN/pg_ctl" ] || die "$PG_BIN/pg_ctl not found; run test/deps.sh first"

# Absolute DIR (relative paths are taken from the caller's cwd), without
# resolving a final symlink yet: see the /tmp fallback below.
case "$DIR_ARG" in
	/*) DIR=$DIR_ARG ;;
	*) DIR="$(pwd -P)/$DIR_ARG" ;;
esac
DIR=${DIR%/}

# Who owns and runs the cluster.
IS_ROOT=false
if [ "$(id -u)" -eq 0 ]; then
	IS_ROOT=true
	RUN_USER=postgres
	id -u "$RUN_USER" >/dev/null 2>&1 ||
		die "running as root but OS user \"$RUN_USER\" does not exist; run test/deps.sh first"
else
	RUN_USER=$(id -un)
fi

# as_owner CMD...: run CMD as the cluster owner, from "/" so that a cwd the
# owner cannot read (e.g. /root) causes no warnings.
as_owner() {
	if $IS_ROOT; then
		(cd / && runuser -u "$RUN_USER" -- env PATH="$PATH" "$@")
	else
		(cd / && "$@")
	fi
}

# A cluster may have been moved under /tmp (see below); DIR is then a symlink
# to it.  The server itself is always given the real path.
real_dir() {
	if [ -L "$DIR" ]; then
		readlink -f "$DIR"
	else
		echo "$DIR"
	fi
}

# fallback_dir: where the cluster goes if the owner cannot reach DIR.
fallback_dir() {
	echo "/tmp/eventsourcing-clusters/$(echo "$DIR" | tr -c 'A-Za-z0-9._\n-' '_' | sed 's/^_*//')"
}

# make_reachable PATH: make sure the cluster owner can traverse every parent
# directory of PATH.  As root, missing "x" permission is added with
# "chmod o+x" (saying so); returns 1 if that is not possible.
make_reachable() {
	local target=$1 parent d rest
	$IS_ROOT || return 0
	parent=$(dirname "$target")
	as_owner test -x "$parent" && return 0
	# walk from / down to the parent, fixing each directory on the way
	d=""
	rest=${parent#/}
	while [ -n "$rest" ]; do
		d="$d/${rest%%/*}"
		case "$rest" in
			*/*) rest=${rest#*/} ;;
			*) rest="" ;;
		esac
		if ! as_owner test -x "$d"; then
			if chmod o+x "$d" 2>/dev/null && as_owner test -x "$d"; then
				msg "made $d traversable by \"$RUN_USER\" (chmod o+x)"
			else
				return 1
			fi
		fi
	done
	as_owner test -x "$parent"
}

# pg_is_running: true if a server runs on the cluster's data directory.
pg_is_running() {
	local rd
	rd=$(real_dir)
	[ -f "$rd/PG_VERSION" ] || return 1
	as_owner pg_ctl -D "$rd" status >/dev/null 2>&1
}

# init_cluster: create the cluster with initdb and our settings.
init_cluster() {
	local rd sockdir locale_opt initlog
	rd=$(real_dir)

	if [ -e "$rd" ] && [ -n "$(ls -A "$rd" 2>/dev/null)" ]; then
		die "$rd exists, is not empty and holds no cluster (no PG_VERSION); remove it and retry"
	fi

	# The owner must be able to reach the data directory.  If the parents
	# cannot be made traversable, put the cluster under /tmp and leave a
	# symlink at DIR.
	mkdir -p "$(dirname "$DIR")"
	if [ ! -L "$DIR" ] && ! make_reachable "$DIR"; then
		rd=$(fallback_dir)
		msg "\"$RUN_USER\" cannot traverse the parents of $DIR and chmod o+x failed;"
		msg "using $rd instead (symlinked from $DIR)"
		mkdir -p "$(dirname "$rd")"
		chmod 1777 "$(dirname "$rd")" 2>/dev/null || true
		rm -rf "$rd"
		[ -e "$DIR" ] && rmdir "$DIR"
		ln -s "$rd" "$DIR"
	fi

	mkdir -p "$rd"
	chmod 700 "$rd"
	if $IS_ROOT; then
		chown "$RUN_USER:" "$rd"
	fi

	# unix socket paths are limited to 107 bytes
	sockdir="$rd/socket"
	if [ $((${#sockdir} + 17)) -gt 107 ]; then
		sockdir="/tmp/es-sock-$(echo "$rd" | cksum | cut -d' ' -f1)"
		msg "socket path under $rd would be too long; using $sockdir"
	fi

	# UTF8 with the C.UTF-8 locale if the system has it: results must not
	# depend on the caller's LANG.
	if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
		locale_opt=(--locale=C.UTF-8)
	else
		locale_opt=(--no-locale)
	fi

	initlog=$(mktemp)
	chmod 644 "$initlog"
	msg "creating cluster in $rd (initdb as \"$RUN_USER\")"
	if ! as_owner initdb -D "$rd" -U postgres -A trust -E UTF8 "${locale_opt[@]}" >"$initlog" 2>&1; then
		cat "$initlog" >&2
		rm -f "$initlog"
		die "initdb failed"
	fi

	as_owner mkdir -p "$rd/log" "$sockdir"
	as_owner chmod 700 "$sockdir"
	# as root, this leaves a root-owned initdb.log: harmless
	mv "$initlog" "$rd/log/initdb.log"

	{
		echo ""
		echo "# ---- added by test/cluster.sh ----"
		echo "listen_addresses = '127.0.0.1'"
		echo "port = $PORT"
		echo "unix_socket_directories = '$sockdir'"
		echo "max_connections = 100"
		echo "fsync = on"
		echo "logging_collector = off"
		echo "log_line_prefix = '%m [%p] %q%u@%d '"
		if [ -n "${ES_EXTRA_CONF:-}" ]; then
			echo "# ---- ES_EXTRA_CONF ----"
			printf '%s\n' "$ES_EXTRA_CONF"
		fi
	} | as_owner tee -a "$rd/postgresql.conf" >/dev/null
}

# warn_extra_conf: ES_EXTRA_CONF only applies when the cluster is created.
warn_extra_conf() {
	local rd line
	[ -n "${ES_EXTRA_CONF:-}" ] || return 0
	rd=$(real_dir)
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		if ! grep -qxF -- "$line" "$rd/postgresql.conf"; then
			msg "warning: ES_EXTRA_CONF line \"$line\" is not in $rd/postgresql.conf;"
			msg "warning: it is only applied when the cluster is created ($PROG $DIR_ARG $PORT destroy)"
		fi
	done <<<"$ES_EXTRA_CONF"
}

do_start() {
	local rd logfile running_port
	rd=$(real_dir)
	if [ ! -f "$rd/PG_VERSION" ]; then
		init_cluster
		rd=$(real_dir)
	else
		warn_extra_conf
		make_reachable "$rd" || die "\"$RUN_USER\" cannot reach $rd"
		# an existing directory created by someone else: hand it over
		if $IS_ROOT && [ "$(stat -c %U "$rd")" != "$RUN_USER" ]; then
			msg "chown -R $RUN_USER $rd"
			chown -R "$RUN_USER:" "$rd"
		fi
	fi
	logfile="$rd/log/postgresql.log"
	as_owner mkdir -p "$rd/log"

	if pg_is_running; then
		running_port=$(sed -n 4p "$rd/postmaster.pid")
		if [ "$running_port" != "$PORT" ]; then
			die "already running on port $running_port, not $PORT; stop it first ($PROG $DIR_ARG $running_port stop)"
		fi
		msg "already running (data directory $rd)"
	else
		msg "starting server on 127.0.0.1:$PORT (data directory $rd, log $logfile)"
		if ! as_owner pg_ctl -D "$rd" -l "$logfile" -o "-p $PORT" -w -t 120 start >/dev/null; then
			echo "---- last lines of $logfile ----" >&2
			tail -n 30 "$logfile" >&2 || true
			die "server did not start (is port $PORT already in use?)"
		fi
	fi
	if ! pg_isready -q -h 127.0.0.1 -p "$PORT" -t 30; then
		die "server of $rd does not answer on 127.0.0.1:$PORT (running on another port?)"
	fi
	msg "ready: psql -h 127.0.0.1 -p $PORT -U postgres -d <db>"
}

# do_stop MODE: stop the server (fast or immediate) if it runs.
do_stop() {
	local mode=$1 rd
	rd=$(real_dir)
	if ! pg_is_running; then
		msg "not running (data directory $rd)"
		return 0
	fi
	msg "stopping server (-m $mode, data directory $rd)"
	as_owner pg_ctl -D "$rd" -m "$mode" -w -t 120 stop >/dev/null
}

do_status() {
	local rd rc=0
	rd=$(real_dir)
	if [ ! -f "$rd/PG_VERSION" ]; then
		msg "no cluster in $rd"
		return 4
	fi
	as_owner pg_ctl -D "$rd" status || rc=$?
	return "$rc"
}

do_destroy() {
	local rd sockdir
	rd=$(real_dir)
	if pg_is_running; then
		do_stop immediate
	fi
	if [ -f "$rd/postgresql.conf" ]; then
		sockdir=$(sed -n "s/^unix_socket_directories = '\(\/tmp\/es-sock-[0-9]*\)'$/\1/p" "$rd/postgresql.conf" | tail -n 1)
		if [ -n "$sockdir" ]; then
			rm -rf "$sockdir"
		fi
	fi
	if [ -e "$rd" ] || [ -L "$DIR" ]; then
		msg "removing $rd"
		rm -rf "$rd"
		if [ -L "$DIR" ]; then
			rm -f "$DIR"
		fi
	fi
	return 0
}

case "$ACTION" in
	start) do_start ;;
	stop) do_stop fast ;;
	stop-immediate) do_stop immediate ;;
	restart)
		do_stop fast
		do_start
		;;
	status) do_status ;;
	destroy) do_destroy ;;
esac
