#!/usr/bin/env bash
# demo.sh - build eventsourcing, start a private PostgreSQL 15 cluster and
# show the event store at work.
#
# Usage: ./demo.sh [start]   build + install the extension, start (or keep)
#                            the cluster in .cluster on port ${ES_PORT:-54329},
#                            create database "eventsourcing" with the
#                            extension, load the playbook editor's event
#                            definitions (examples/playbook.sql), then append
#                            a few events to a fresh playbook stream while a
#                            LISTEN session watches, read them back and
#                            replay the stream's state
#        ./demo.sh stop      stop that cluster
#        ./demo.sh status    is it running?
#
# The cluster keeps running after "start" so you can connect to it; its data
# stays in .cluster until you delete the directory.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
PG_BIN=/usr/lib/postgresql/15/bin
export PATH="$PG_BIN:$PATH"
cd "$REPO"

PORT=${ES_PORT:-54329}
DIR="$REPO/.cluster"
DB=eventsourcing
CLUSTER=("$REPO/test/cluster.sh" "$DIR" "$PORT")

# libpq settings for every psql below
unset PGDATABASE PGSERVICE PGHOSTADDR
export PGHOST=127.0.0.1 PGPORT="$PORT" PGUSER=postgres

step() { printf '\n==== %s ====\n' "$*"; }

case "${1:-start}" in
	start) ;;
	stop)
		if [ -f "$DIR/relay.pid" ]; then
			kill "$(cat "$DIR/relay.pid")" 2>/dev/null || true
			rm -f "$DIR/relay.pid"
		fi
		exec "${CLUSTER[@]}" stop
		;;
	status)
		exec "${CLUSTER[@]}" status
		;;
	*)
		echo "usage: $0 [start|stop|status]" >&2
		exit 2
		;;
esac

# ---- build, install, cluster, database -----------------------------------

step "dependencies (test/deps.sh)"
"$REPO/test/deps.sh"

step "build and install (make && make install)"
make -s
make -s install
echo "installed into $(pg_config --sharedir)/extension and $(pg_config --pkglibdir)"
make -s relay
echo "built relay/es-relay"

step "cluster ($DIR, port $PORT)"
# preloaded: appends are announced by the database's notifier (worker mode)
ES_EXTRA_CONF="shared_preload_libraries = 'eventsourcing'" "${CLUSTER[@]}" start

step "database \"$DB\""
if [ "$(psql -X -At -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
	createdb "$DB"
	echo "created database $DB"
fi
# (a database made by an earlier run may hold an older version: update it)
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c 'SET client_min_messages = warning' \
	-c 'CREATE EXTENSION IF NOT EXISTS eventsourcing;' \
	-c 'ALTER EXTENSION eventsourcing UPDATE;'
psql -X -At -d "$DB" -c "SELECT 'extension eventsourcing ' || extversion || ' in database $DB' FROM pg_extension WHERE extname = 'eventsourcing'"

# ---- the demo ------------------------------------------------------------

step "event definitions for category playbook (examples/playbook.sql)"
# from now on every append to a playbook-* stream is validated against them
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f "$REPO/examples/playbook.sql" >/dev/null
psql -X -At -d "$DB" -c "SELECT count(*) || ' event types defined: ' || string_agg(event_type, ', ' ORDER BY event_type)
	FROM es.event_types WHERE category = 'playbook'" | fold -s -w 78

# a fresh stream per run, so reruns work; its category "playbook" makes the
# NOTIFY channel es_playbook
STREAM="playbook-demo-$(date +%s)"
LISTEN_OUT=$(mktemp)
GO_FILE="$LISTEN_OUT.go"
LISTENER_PID=""
APPNAME="es-demo-listener-$$"

cleanup() {
	if [ -n "$LISTENER_PID" ]; then
		kill "$LISTENER_PID" 2>/dev/null || true
	fi
	rm -f "$LISTEN_OUT" "$GO_FILE"
}
trap cleanup EXIT

step "LISTEN es_playbook (a second session, in the background)"
# psql prints "Asynchronous notification ..." only after it runs a command:
# it runs LISTEN, waits (reading its input) until the appends are done, then
# runs two more short commands, which bring in and print the notifications.
{
	echo "LISTEN es_playbook;"
	for _ in $(seq 1 300); do
		[ -e "$GO_FILE" ] && break
		sleep 0.1
	done
	echo "SELECT pg_sleep(0.5);"
	echo "SELECT 1;"
} | PGAPPNAME="$APPNAME" psql -X -q -A -t -d "$DB" >"$LISTEN_OUT" 2>&1 &
LISTENER_PID=$!

# wait until the listener has run its LISTEN
listening=false
for _ in $(seq 1 100); do
	if [ "$(psql -X -At -d "$DB" -c "SELECT count(*) FROM pg_stat_activity
		WHERE application_name = '$APPNAME' AND state = 'idle' AND query LIKE 'LISTEN%'")" = 1 ]; then
		listening=true
		break
	fi
	sleep 0.1
done
if $listening; then
	echo "listening on channel es_playbook"
else
	echo "warning: the listener did not come up; going on without it" >&2
fi

step "append events to stream $STREAM (alice and bob editing a playbook)"
psql -X -e -v ON_ERROR_STOP=1 -v stream="$STREAM" -d "$DB" <<'SQL'
SELECT sequence_number, event_type, user_id FROM es_append(:'stream', 'module_add', '{"moduleId":"m1","module":{"name":"ping"},"position":{"x":100,"y":200}}'::jsonb, user_id => '1', username => 'alice');
SELECT sequence_number, event_type, user_id FROM es_append(:'stream', 'module_move', '{"moduleId":"m1","position":{"x":300,"y":120}}'::jsonb, user_id => '2', username => 'bob');
SELECT sequence_number, event_type, user_id FROM es_append(:'stream', 'module_add', '{"moduleId":"m2","module":{"name":"debug"},"position":{"x":500,"y":120}}'::jsonb, user_id => '2', username => 'bob');
SELECT sequence_number, event_type, user_id FROM es_append(:'stream', 'link_add', '{"linkId":"l1","source":"m1","target":"m2"}'::jsonb, user_id => '1', username => 'alice');
SQL

step "notifications received by the listener"
touch "$GO_FILE"
for _ in $(seq 1 150); do
	kill -0 "$LISTENER_PID" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$LISTENER_PID" 2>/dev/null; then
	echo "warning: the listener did not finish; stopping it" >&2
	kill "$LISTENER_PID" 2>/dev/null || true
fi
wait "$LISTENER_PID" 2>/dev/null || true
LISTENER_PID=""
# 'Asynchronous notification "CHANNEL" with payload "PAYLOAD" received from
# server process with PID N.' -> 'CHANNEL: PAYLOAD'
sed -n -E 's/^Asynchronous notification "([^"]*)" with payload "(.*)" received from server process with PID [0-9]+\.$/\1: \2/p' "$LISTEN_OUT"
received=$(grep -c '^Asynchronous notification' "$LISTEN_OUT" || true)
echo "($received notifications)"
if [ "$received" -lt 4 ]; then
	echo "warning: expected 4 notifications; the listener printed:" >&2
	cat "$LISTEN_OUT" >&2
fi

step "who sent them: eventsourcing.notify and the notifier (es.notify_status)"
psql -X -e -v ON_ERROR_STOP=1 -d "$DB" <<'SQL'
SELECT mode, worker_state, queued_transactions, lag_events, events_sent, last_error
  FROM es.notify_status;
SQL

step "read the stream back"
psql -X -e -v ON_ERROR_STOP=1 -v stream="$STREAM" -d "$DB" <<'SQL'
SELECT sequence_number, event_type, data FROM es_read(:'stream');
\set QUIET on
\pset format unaligned
\set QUIET off
SELECT es_sync(:'stream', 1);
SQL

step "replay the stream: the playbook's state (es_replay)"
psql -X -e -v ON_ERROR_STOP=1 -v stream="$STREAM" -d "$DB" <<'SQL'
\set QUIET on
\pset format unaligned
\set QUIET off
SELECT jsonb_pretty(es_replay(:'stream')) AS state;
SELECT es_replay(:'stream', 1) AS state_after_event_1;
SQL

step "an event that does not apply is refused, and nothing is stored"
psql -X -e -v stream="$STREAM" -d "$DB" <<'SQL' 2>&1 || true
SELECT es_append(:'stream', 'module_move', '{"moduleId":"m9","position":{"x":0,"y":0}}'::jsonb, user_id => '2', username => 'bob');
SELECT es_version(:'stream') AS version;
SQL

step "collaborative undo: bob's undo of his module m2 conflicts with alice's link to it"
psql -X -e -v stream="$STREAM" -d "$DB" <<'SQL' 2>&1 || true
SELECT sequence_number, event_type FROM es_undo_last(:'stream', '2', 'bob');
SELECT sequence_number, event_type, data->'patch' AS patch FROM es_undo_last(:'stream', '1', 'alice');
SELECT sequence_number, event_type, data->'patch' AS patch FROM es_undo_last(:'stream', '2', 'bob');
SELECT sequence_number, user_id, username, db_role, event_type, undone_by FROM es.audit
 WHERE stream = :'stream' ORDER BY sequence_number;
SELECT * FROM es_verify(:'stream');
SQL

step "the WebSocket relay and the browser editor (relay/es-relay)"
RELAY_PORT=${ES_RELAY_PORT:-28080}
if [ -f "$DIR/relay.pid" ]; then
	kill "$(cat "$DIR/relay.pid")" 2>/dev/null || true
	sleep 0.5
fi
"$REPO/relay/es-relay" --listen "127.0.0.1:$RELAY_PORT" \
	--dsn "host=127.0.0.1 port=$PORT user=postgres dbname=$DB" \
	--web "$REPO/relay/web" >"$DIR/log/es-relay.log" 2>&1 &
echo $! >"$DIR/relay.pid"
relay_up=0
for _ in $(seq 1 50); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$RELAY_PORT") 2>/dev/null; then
		relay_up=1
		break
	fi
	sleep 0.1
done
if [ "$relay_up" = 1 ]; then
	echo "es-relay listens on 127.0.0.1:$RELAY_PORT (log: $DIR/log/es-relay.log)"
	echo "Editor:   http://127.0.0.1:$RELAY_PORT/?stream=$STREAM&user_id=1&username=alice"
	echo "          (open a second tab with user_id=2&username=bob to edit together)"
else
	echo "warning: es-relay did not start; see $DIR/log/es-relay.log" >&2
fi

step "done"
echo "The cluster is running (data in $DIR, log in $DIR/log/postgresql.log)."
echo "Connect:  psql -h 127.0.0.1 -p $PORT -U postgres $DB"
echo "Stop:     ./demo.sh stop  (the cluster and the relay)"
