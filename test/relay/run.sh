#!/usr/bin/env bash
# test/relay/run.sh - es-relay against a real server.
#
# Usage: test/relay/run.sh [test|load]
#
#   test   (default) the integration test, test/relay/test_relay.py
#   load   the load test, test/relay/load.py, per notify mode (worker,
#          then commit) at 1000 actions/s offered and closed loop; it
#          prints the figures
#
# Builds relay/es-relay, starts a private cluster (test/cluster.sh, library
# preloaded) on a free port below 32768, creates a database with the
# extension and examples/playbook.sql, starts the relay on another free
# port, runs the Python side, then stops everything.  Prints one PASS:/FAIL:
# line per check and exits 1 if any failed.
#
# Environment: ES_RELAY_PG_PORT, ES_RELAY_PORT (ports; default: free ones),
# ES_RELAY_CFLAGS (e.g. "-O1 -g -fsanitize=address,undefined" to build the
# relay with sanitizers), ES_LOAD_ARGS (more arguments for load.py).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
HERE="$REPO/test/relay"
MODE=${1:-test}
case "$MODE" in
	test | load) ;;
	*)
		echo "usage: $0 [test|load]" >&2
		exit 2
		;;
esac
export PATH="/usr/lib/postgresql/15/bin:$PATH"
# Debian's python3, which has python3-websockets (not a pyenv or venv one)
PY=/usr/bin/python3

FAILED=0
PASSED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
log() { echo "[relay $(date +%H:%M:%S)] $*"; }

# free_port: a TCP port below 32768 nobody listens on
free_port() {
	"$PY" - <<'EOF'
import random, socket
for _ in range(200):
    p = random.randint(20000, 32000)
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
        print(p)
        break
EOF
}

WORK=$(mktemp -d /tmp/es-relay-test.XXXXXX)
chmod 755 "$WORK"
PG_PORT=${ES_RELAY_PG_PORT:-$(free_port)}
RELAY_PORT=${ES_RELAY_PORT:-$(free_port)}
while [ "$RELAY_PORT" = "$PG_PORT" ]; do RELAY_PORT=$(free_port); done
CLUSTER=("$REPO/test/cluster.sh" "$WORK/pg" "$PG_PORT")
DB=es_relay
DSN="host=127.0.0.1 port=$PG_PORT user=postgres dbname=$DB"
RELAY_PID=""
RELAY_LOG="$WORK/relay.log"

cleanup() {
	local rc=$?
	set +e
	stop_relay
	"${CLUSTER[@]}" destroy >/dev/null 2>&1
	if [ "$FAILED" -gt 0 ] || [ "$rc" -ne 0 ]; then
		echo "(relay log and cluster kept in $WORK)"
		[ -f "$RELAY_LOG" ] && tail -n 30 "$RELAY_LOG"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

# start_relay DSN: start es-relay in the background and wait for its port
start_relay() {
	"$RELAY_BIN" --listen "127.0.0.1:$RELAY_PORT" --dsn "$1" --web "$WORK/web" \
		>>"$RELAY_LOG" 2>&1 &
	RELAY_PID=$!
	for _ in $(seq 50); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$RELAY_PORT") 2>/dev/null; then
			return 0
		fi
		kill -0 "$RELAY_PID" 2>/dev/null || break
		sleep 0.1
	done
	return 1
}

# stop_relay: SIGTERM; true if it exited by itself with status 0
stop_relay() {
	local rc=0
	[ -n "$RELAY_PID" ] || return 0
	kill -TERM "$RELAY_PID" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$RELAY_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$RELAY_PID" 2>/dev/null; then
		kill -KILL "$RELAY_PID"
		rc=1
	fi
	wait "$RELAY_PID" 2>/dev/null || rc=$?
	RELAY_PID=""
	return "$rc"
}

log "building the relay"
RELAY_BIN="$REPO/relay/es-relay"
if [ -n "${ES_RELAY_CFLAGS:-}" ]; then
	# a build of its own, not left in relay/
	RELAY_BIN="$WORK/es-relay"
	BUILD=(make -s -C "$REPO/relay" BIN="$RELAY_BIN" CFLAGS="$ES_RELAY_CFLAGS")
else
	BUILD=(make -s -C "$REPO/relay")
fi
if "${BUILD[@]}"; then
	pass "relay builds with -Wall -Wextra -Werror"
else
	fail "relay builds"
	exit 1
fi

log "cluster on port $PG_PORT, relay on port $RELAY_PORT ($WORK)"
if ! ES_EXTRA_CONF="shared_preload_libraries = 'eventsourcing'" "${CLUSTER[@]}" start >"$WORK/cluster.log" 2>&1; then
	cat "$WORK/cluster.log"
	fail "cluster starts"
	exit 1
fi
if createdb -h 127.0.0.1 -p "$PG_PORT" -U postgres "$DB" &&
	psql -X -q -v ON_ERROR_STOP=1 -d "$DSN" -c "CREATE EXTENSION eventsourcing" >/dev/null &&
	psql -X -q -v ON_ERROR_STOP=1 -d "$DSN" -f "$REPO/examples/playbook.sql" >/dev/null; then
	pass "database with the extension and examples/playbook.sql"
else
	fail "database with the extension and examples/playbook.sql"
	exit 1
fi

# the test's own static files (relay/web/ is the editor's)
mkdir -p "$WORK/web"
echo '<!doctype html><title>es-relay test</title>' >"$WORK/web/index.html"
echo 'console.log("test");' >"$WORK/web/app.js"
echo 'body { margin: 0 }' >"$WORK/web/style.css"
echo '{"test": true}' >"$WORK/web/data.json"
echo '<svg xmlns="http://www.w3.org/2000/svg"/>' >"$WORK/web/icon.svg"

if start_relay "$DSN"; then
	pass "relay starts and listens"
else
	fail "relay starts and listens"
	exit 1
fi

rc=0
if [ "$MODE" = test ]; then
	timeout 300 "$PY" "$HERE/test_relay.py" --url "ws://127.0.0.1:$RELAY_PORT" --dsn "$DSN" \
		--cluster "${CLUSTER[*]}" --relay-pid "$RELAY_PID" --relay-log "$RELAY_LOG" \
		--web "$WORK/web" || rc=$?
	[ "$rc" -eq 0 ] || fail "test_relay.py exited with status $rc"
else
	# per notify mode: the offered 1000 actions/s, then as fast as the
	# clients can (closed loop); the appends run on the relay's connections,
	# whose notify mode the DSN sets
	for mode in worker commit; do
		if [ "$mode" = commit ]; then
			stop_relay || true
			if ! start_relay "$DSN options='-c eventsourcing.notify=commit'"; then
				fail "relay restarts in commit mode"
				break
			fi
		fi
		for rate in 1000 0; do
			rc=0
			# shellcheck disable=SC2086
			timeout 600 "$PY" "$HERE/load.py" --url "ws://127.0.0.1:$RELAY_PORT" --dsn "$DSN" \
				--mode "$mode" --rate "$rate" --relay-pid "$RELAY_PID" ${ES_LOAD_ARGS:-} || rc=$?
			[ "$rc" -eq 0 ] || fail "load.py --mode $mode --rate $rate exited with status $rc"
		done
	done
fi

if [ -n "$RELAY_PID" ] && kill -0 "$RELAY_PID" 2>/dev/null; then
	pass "relay still running at the end"
else
	fail "relay still running at the end"
fi
if stop_relay; then
	pass "relay stops on SIGTERM with status 0"
else
	fail "relay stops on SIGTERM with status 0"
fi
if grep -qE 'AddressSanitizer|runtime error|LeakSanitizer' "$RELAY_LOG"; then
	grep -E -A5 'AddressSanitizer|runtime error|LeakSanitizer' "$RELAY_LOG" | head -40
	fail "no sanitizer reports in the relay log"
fi

echo "relay suite: $PASSED passed, $FAILED failed (in this script; test_relay.py counts its own)"
[ "$FAILED" -eq 0 ]
