#!/usr/bin/env bash
# test/shell/020_crash.sh - crash (pg_ctl stop -m immediate) under append load.
#
# CRASH_CLIENTS psql sessions append in autocommit, each running a script of
# statements with explicit event ids:
#   clients 1..5  SELECT event_id FROM es_append(...)
#   clients 6..7  INSERT INTO es.events ... RETURNING event_id
#   client  8     SELECT event_id FROM es_append_batch(...) (3 events)
# Half of the appends go to one hot stream, the rest to 200 cold streams in
# two categories.  A row printed by psql means the commit was acknowledged
# (libpq returns the result after the server's ReadyForQuery, which follows
# the commit), so each client's output is the list of its acknowledged
# event ids.
#
# The event id encodes client, statement and batch element:
#   CCCCCCCC-EEEE-4000-8000-SSSSSSSSSSSS   (hex)
# so the checks can tell which statement an event came from.
#
# After CRASH_LOAD_SECONDS of load the cluster is stopped with -m immediate
# and started again (crash recovery).  Then:
#   * every acknowledged event is stored;
#   * per client, the acknowledged statements are 0..k without a hole (no
#     statement failed before the crash) and nothing beyond statement k+1 (the
#     one in flight) is stored;
#   * every stream is numbered 1..n, es.streams agrees with es.events, ids
#     and positions are unique, the indexes pass amcheck;
#   * retrying the in-flight statement of every client with the same event
#     ids succeeds (idempotent if it had committed) and stores each id once;
#   * new appends continue at version + 1 with a global position above all
#     stored ones.
# This runs CRASH_ROUNDS times (default 3) on the same database.
# shellcheck source-path=SCRIPTDIR source=lib/common.bash
. "$(dirname "$0")/lib/common.bash"

CLIENTS=${CRASH_CLIENTS:-8}
LOAD_SECONDS=${CRASH_LOAD_SECONDS:-6}
ROUNDS=${CRASH_ROUNDS:-3}
STATEMENTS=${CRASH_STATEMENTS:-30000}	# per client; far more than can run
DB="es_crash_$$"

[ "$CLIENTS" -ge 8 ] || die "CRASH_CLIENTS must be at least 8"
: "${ES_CLUSTER:?ES_CLUSTER must be set}"
es_wait_ready 60 || die "server not ready on $PGHOST:$PGPORT"
es_create_db "$DB"

if q "$DB" "CREATE EXTENSION IF NOT EXISTS amcheck" >/dev/null 2>&1; then
	HAVE_AMCHECK=1
else
	HAVE_AMCHECK=0
	log "amcheck not available: index checks skipped"
fi

# client_kind CLIENT: append | insert | batch
client_kind() {
	local c=$1
	if [ "$c" -eq "$CLIENTS" ]; then
		echo batch
	elif [ "$c" -ge $((CLIENTS - 2)) ]; then
		echo insert
	else
		echo append
	fi
}

# gen_script ID KIND COUNT: statements 0..COUNT-1 of client ID, one per
# line (statement s on line s + 1).
gen_script() {
	awk -v id="$1" -v kind="$2" -v count="$3" '
	function uuid(s, e) { return sprintf("%08x-%04x-4000-8000-%012x", id, e, s) }
	function stream(r) {
		if (r < 0.5) return "playbook-hot"
		if (r < 0.8) return "playbook-" int(1 + rand() * 100)
		return "image-" int(1 + rand() * 100)
	}
	BEGIN {
		srand(id)
		for (s = 0; s < count; s++) {
			st = stream(rand()); t = int(rand() * 3)
			type = (t == 0 ? "module_add" : (t == 1 ? "module_move" : "module_update"))
			data = sprintf("{\"moduleId\": \"m%d\", \"client\": %d, \"statement\": %d, \"position\": {\"x\": %d, \"y\": %d}}", s % 50, id, s, s % 1000, id)
			if (kind == "append")
				printf "SELECT event_id FROM es_append(%s, %s, %s, user_id => %s, event_id => %s);\n", \
					"\047" st "\047", "\047" type "\047", "\047" data "\047", "\047u" id "\047", "\047" uuid(s, 0) "\047"
			else if (kind == "insert")
				printf "INSERT INTO es.events (stream, event_type, data, event_id, username) VALUES (%s, %s, %s, %s, %s) RETURNING event_id;\n", \
					"\047" st "\047", "\047" type "\047", "\047" data "\047", "\047" uuid(s, 0) "\047", "\047user " id "\047"
			else {
				printf "SELECT event_id FROM es_append_batch(\047%s\047, \047[", st
				for (e = 0; e < 3; e++)
					printf "%s{\"event_type\": \"%s\", \"data\": %s, \"event_id\": \"%s\"}", (e ? ", " : ""), type, data, uuid(s, e)
				printf "]\047);\n"
			}
		}
	}'
}

# client id of client C in round R
cid() { echo $(($2 * 256 + $1)); }

SQL_ID="('x' || substr(event_id::text, 1, 8))::bit(32)::int"
SQL_STMT="('x' || substr(event_id::text, 25, 12))::bit(48)::bigint"

run_round() {
	local round=$1 c id kind pids=() i acked total before_max started

	log "round $round: starting $CLIENTS clients"
	for ((c = 1; c <= CLIENTS; c++)); do
		id=$(cid "$c" "$round")
		kind=$(client_kind "$c")
		gen_script "$id" "$kind" "$STATEMENTS" >"$ES_TMP/r$round-c$c.sql"
		psql -X -At -v ON_ERROR_STOP=0 -d "$DB" -f "$ES_TMP/r$round-c$c.sql" \
			>"$ES_TMP/r$round-c$c.ack" 2>"$ES_TMP/r$round-c$c.err" &
		pids+=($!)
	done

	# load for LOAD_SECONDS, and until every client has had some commits
	sleep "$LOAD_SECONDS"
	for ((i = 0; i < 30; i++)); do
		started=0
		for ((c = 1; c <= CLIENTS; c++)); do
			[ "$(wc -l <"$ES_TMP/r$round-c$c.ack")" -ge 5 ] && started=$((started + 1))
		done
		[ "$started" -eq "$CLIENTS" ] && break
		sleep 1
	done

	log "round $round: crash (stop-immediate) under load"
	es_cluster stop-immediate

	# the clients die with the connection
	for ((i = 0; i < 60; i++)); do
		alive=0
		for pid in "${pids[@]}"; do
			kill -0 "$pid" 2>/dev/null && alive=$((alive + 1))
		done
		[ "$alive" -eq 0 ] && break
		sleep 0.5
	done
	for pid in "${pids[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			fail "round $round: client pid $pid still running 30 s after the crash"
			kill "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done

	log "round $round: restart (crash recovery)"
	es_cluster start
	es_wait_ready 120 || die "round $round: server did not come back"

	# what the clients saw acknowledged
	cat "$ES_TMP"/r"$round"-c*.ack | grep -E '^[0-9a-f]{8}-' >"$ES_TMP/r$round.acked" || true
	acked=$(wc -l <"$ES_TMP/r$round.acked")
	log "round $round: $acked acknowledged event ids"
	[ "$acked" -gt 0 ] || fail "round $round: no append was acknowledged before the crash"

	# errors other than the lost connection mean a statement failed
	cat "$ES_TMP"/r"$round"-c*.err |
		grep -v -E 'terminating connection due to immediate shutdown command|server closed the connection unexpectedly|This probably means the server terminated abnormally|before or while processing the request|connection to server was lost|no connection to the server|could not send data to server|could not receive data from server|terminating connection because of crash|the database system is (shutting down|in recovery mode)|^\s*$' \
		>"$ES_TMP/r$round.errors" || true
	if [ -s "$ES_TMP/r$round.errors" ]; then
		fail "round $round: clients reported errors other than the lost connection:"
		sed 's/^/    /' "$ES_TMP/r$round.errors" | head -n 20
	else
		pass "round $round: no client error other than the lost connection"
	fi

	psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS acked;
CREATE TABLE acked (event_id uuid PRIMARY KEY);
\\copy acked FROM '$ES_TMP/r$round.acked'
SQL

	n=$(q "$DB" "SELECT count(*) FROM acked a WHERE NOT EXISTS (SELECT FROM es.events e WHERE e.event_id = a.event_id)")
	check "round $round: acknowledged events missing after recovery (of $acked)" "$n" 0

	# per client: acknowledged statements are 0..k, stored ones at most k+1
	n=$(q "$DB" "WITH a AS (
	        SELECT $SQL_ID AS id, count(DISTINCT $SQL_STMT) AS stmts, max($SQL_STMT) AS k
	          FROM acked GROUP BY 1)
	    SELECT count(*) FROM a WHERE stmts <> k + 1")
	check "round $round: clients with a hole in their acknowledged statements" "$n" 0
	n=$(q "$DB" "WITH a AS (SELECT $SQL_ID AS id, max($SQL_STMT) AS k FROM acked GROUP BY 1),
	              e AS (SELECT $SQL_ID AS id, max($SQL_STMT) AS k FROM es.events GROUP BY 1)
	    SELECT count(*) FROM e LEFT JOIN a USING (id)
	     WHERE e.id / 256 = $round AND e.k > coalesce(a.k, -1) + 1")
	check "round $round: clients with stored statements beyond the one in flight" "$n" 0
	n=$(q "$DB" "WITH a AS (SELECT $SQL_ID AS id, max($SQL_STMT) AS k FROM acked GROUP BY 1)
	    SELECT count(*) FROM es.events e JOIN a ON $SQL_ID = a.id AND $SQL_STMT = a.k + 1")
	log "round $round: $n events of in-flight statements committed without acknowledgement"

	es_check_invariants "$DB" "round $round after recovery"
	if [ "$HAVE_AMCHECK" = 1 ]; then
		# 7 indexes on es.events (1.2 adds the undo index), 1 on es.streams; an error fails the query
		n=$(q "$DB" "SELECT count(*) FROM (
		        SELECT bt_index_check(i.indexrelid, true) FROM pg_index i
		         WHERE i.indrelid IN ('es.events'::regclass, 'es.streams'::regclass)) s")
		check "round $round: es.events/es.streams indexes verified by amcheck bt_index_check(heapallindexed)" "$n" 8
	fi

	# retry the in-flight statement of every client, with the same ids
	: >"$ES_TMP/r$round.retry.sql"
	for ((c = 1; c <= CLIENTS; c++)); do
		id=$(cid "$c" "$round")
		k=$(q "$DB" "SELECT coalesce(max($SQL_STMT), -1) FROM acked WHERE $SQL_ID = $id")
		sed -n "$((k + 2))p" "$ES_TMP/r$round-c$c.sql" >>"$ES_TMP/r$round.retry.sql"
	done
	before_max=$(q "$DB" "SELECT coalesce(max(global_position), 0) FROM es.events")
	total=$(q "$DB" "SELECT count(*) FROM es.events")
	if psql -X -At -v ON_ERROR_STOP=1 -d "$DB" -f "$ES_TMP/r$round.retry.sql" >"$ES_TMP/r$round.retry.out" 2>&1; then
		pass "round $round: retry of the $CLIENTS in-flight statements with the same event ids succeeded"
	else
		fail "round $round: retry of the in-flight statements failed:"
		sed 's/^/    /' "$ES_TMP/r$round.retry.out" | head -n 10
	fi
	# each client now has statements 0..k+1 stored exactly once
	n=$(q "$DB" "WITH a AS (SELECT $SQL_ID AS id, max($SQL_STMT) AS k FROM acked GROUP BY 1),
	              e AS (SELECT $SQL_ID AS id, count(*) AS n, count(DISTINCT $SQL_STMT) AS stmts,
	                           max($SQL_STMT) AS k
	                      FROM es.events WHERE $SQL_ID / 256 = $round GROUP BY 1)
	    SELECT count(*) FROM e JOIN a USING (id)
	     WHERE e.k <> a.k + 1 OR e.stmts <> a.k + 2
	        OR e.n <> e.stmts * CASE WHEN e.id % 256 = $CLIENTS THEN 3 ELSE 1 END")
	check "round $round: clients whose stored statements are not exactly 0..k+1 after the retry" "$n" 0
	n=$(q "$DB" "SELECT count(*) FROM es.events WHERE global_position > $before_max")
	log "round $round: the retry appended $n events ($((total)) stored before it)"

	# appends continue at version + 1, above every stored position
	before_max=$(q "$DB" "SELECT max(global_position) FROM es.events")
	for s in playbook-hot playbook-1 image-2 playbook-new$round; do
		v=$(q "$DB" "SELECT es_version('$s')")
		got=$(q "$DB" "SELECT sequence_number, global_position > $before_max FROM es_append('$s', 'after_crash', '{\"round\": $round}')")
		check "round $round: append to $s after recovery gets version+1 ($((v + 1))) and a new top position" "$got" "$((v + 1))|t"
	done
	es_check_invariants "$DB" "round $round after new appends"
}

for ((r = 1; r <= ROUNDS; r++)); do
	start=$SECONDS
	run_round "$r"
	log "round $r took $((SECONDS - start)) s"
done

log "final: $(q "$DB" "SELECT format('%s events, %s streams, hot stream version %s',
        (SELECT count(*) FROM es.events), (SELECT count(*) FROM es.streams), es_version('playbook-hot'))")"
es_finish
