# test/shell/lib/common.bash - helpers shared by the shell suites.
#
# Sourced (not run) by test/shell/*.sh.  Expects the environment that
# test/run.sh provides: PGHOST, PGPORT, PGUSER, ES_REPO, ES_CLUSTER_DIR and
# ES_CLUSTER (a command taking start|stop|stop-immediate|restart).
#
# Each suite works in a database of its own (es_<suite>_<pid>), created by
# es_create_db and dropped by the EXIT trap, and prints one "PASS:"/"FAIL:"
# line per check; es_finish exits 0 only if no check failed.

set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
export PATH="$PG_BIN:$PATH"
export PGHOST=${PGHOST:-127.0.0.1}
export PGUSER=${PGUSER:-postgres}
: "${PGPORT:?PGPORT must be set (test/run.sh sets it)}"
export PGPORT
# results must not depend on the caller's settings
unset PGDATABASE PGOPTIONS PGSERVICE || true
export PGAPPNAME=${PGAPPNAME:-es-shell-test}

ES_SUITE=$(basename "$0" .sh)
ES_FAILED=0
ES_PASSED=0
ES_DBS=()
ES_TMP=$(mktemp -d "/tmp/${ES_SUITE}.XXXXXX")
chmod 755 "$ES_TMP"

log() { echo "[$ES_SUITE $(date +%H:%M:%S)] $*"; }

pass() { ES_PASSED=$((ES_PASSED + 1)); echo "PASS: $*"; }
fail() { ES_FAILED=$((ES_FAILED + 1)); echo "FAIL: $*"; }

# check DESCRIPTION ACTUAL EXPECTED: string equality.
check() {
	if [ "$2" = "$3" ]; then
		pass "$1 (got $2)"
	else
		fail "$1 (got '$2', expected '$3')"
	fi
}

# die MESSAGE: a failure that makes the rest of the suite meaningless.
die() {
	fail "$*"
	exit 1
}

# q DB SQL: run SQL, print tuples only (unaligned, '|' separated).
q() {
	psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# es_create_db NAME: create a database with the extension; remember it for
# the cleanup.
es_create_db() {
	local db=$1
	dropdb --if-exists "$db" >/dev/null 2>&1 || true
	createdb "$db" || die "createdb $db failed"
	ES_DBS+=("$db")
	q "$db" "CREATE EXTENSION eventsourcing" >/dev/null || die "CREATE EXTENSION in $db failed"
}

# es_wait_ready [SECONDS]: wait until the server accepts connections.
es_wait_ready() {
	local i limit=${1:-60}
	for ((i = 0; i < limit; i++)); do
		if pg_isready -q -h "$PGHOST" -p "$PGPORT" -t 1 && psql -X -At -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
			return 0
		fi
		sleep 1
	done
	return 1
}

# es_cluster ACTION: run $ES_CLUSTER (a command string, split on blanks).
es_cluster() {
	: "${ES_CLUSTER:?ES_CLUSTER must be set (test/run.sh sets it)}"
	# shellcheck disable=SC2086
	$ES_CLUSTER "$@"
}

# The checks of the log's invariants, run by several suites.
# es_check_invariants DB LABEL
es_check_invariants() {
	local db=$1 label=$2 n

	# es_verify (1.2) checks all of it, compacted and deleted streams too
	n=$(q "$db" "SELECT count(*) FROM es_verify()")
	check "$label: problems reported by es_verify()" "$n" 0

	# every stream is numbered 1..n: no gap, no duplicate (streams that lost
	# events to compaction or deletion are left to es_verify)
	n=$(q "$db" "SELECT count(*) FROM (
	        SELECT stream FROM es.events
	         WHERE stream NOT IN (SELECT stream FROM es.removals) GROUP BY stream
	        HAVING min(sequence_number) <> 1
	            OR max(sequence_number) <> count(*)
	            OR count(DISTINCT sequence_number) <> count(*)) s")
	check "$label: streams with a gap or a duplicate sequence number" "$n" 0

	# es.streams.version = max(sequence_number), category matches, no
	# stream row without events and no events without a stream row
	n=$(q "$db" "SELECT count(*) FROM es.streams s
	        FULL JOIN (SELECT stream, min(category) AS category,
	                          max(sequence_number) AS mx
	                     FROM es.events GROUP BY stream) e USING (stream)
	        WHERE stream NOT IN (SELECT stream FROM es.removals)
	          AND (s.version IS DISTINCT FROM e.mx
	           OR s.category IS DISTINCT FROM e.category)")
	check "$label: es.streams rows disagreeing with es.events (version, category, missing rows)" "$n" 0

	# global positions unique
	n=$(q "$db" "SELECT count(*) - count(DISTINCT global_position) FROM es.events")
	check "$label: duplicate global positions" "$n" 0

	# event ids unique
	n=$(q "$db" "SELECT count(*) - count(DISTINCT event_id) FROM es.events")
	check "$label: duplicate event ids" "$n" 0

	# within a stream, global order agrees with sequence order
	n=$(q "$db" "SELECT count(*) FROM (
	        SELECT global_position,
	               lag(global_position) OVER (PARTITION BY stream ORDER BY sequence_number) AS prev
	          FROM es.events) s WHERE prev >= global_position")
	check "$label: events whose global position is below their predecessor's in the stream" "$n" 0

	# the category column is the stream's prefix
	n=$(q "$db" "SELECT count(*) FROM es.events WHERE category <> split_part(stream, '-', 1)")
	check "$label: events with a category that is not their stream's prefix" "$n" 0

	# es_read_all (no transaction of ours is open) returns every event once
	n=$(q "$db" "SELECT (SELECT count(*) FROM es_read_all()) - (SELECT count(*) FROM es.events)")
	check "$label: es_read_all() count minus es.events count" "$n" 0
}

# es_finish: print the summary and exit with the suite's status.
es_finish() {
	echo "$ES_SUITE: $ES_PASSED checks passed, $ES_FAILED failed"
	if [ "$ES_FAILED" -eq 0 ]; then
		echo "PASS: $ES_SUITE"
		exit 0
	fi
	echo "FAIL: $ES_SUITE"
	exit 1
}

es_cleanup() {
	local rc=$? db
	# leave the cluster running for the next suite
	if ! pg_isready -q -h "$PGHOST" -p "$PGPORT" -t 2 && [ -n "${ES_CLUSTER:-}" ]; then
		log "cluster not running at exit; starting it again"
		es_cluster start >/dev/null 2>&1 || echo "$ES_SUITE: could not restart the cluster" >&2
	fi
	if [ "${ES_KEEP:-0}" != 1 ]; then
		for db in "${ES_DBS[@]}"; do
			dropdb --if-exists --force "$db" >/dev/null 2>&1 || true
		done
		rm -rf "$ES_TMP"
	else
		echo "$ES_SUITE: ES_KEEP=1: kept databases ${ES_DBS[*]} and $ES_TMP"
	fi
	if [ "$rc" -ne 0 ] && [ "$ES_FAILED" -eq 0 ]; then
		echo "FAIL: $ES_SUITE ended with status $rc before its checks completed"
	fi
	exit "$rc"
}
trap es_cleanup EXIT

# start_listener DB OUT STOPFILE: start a psql session that LISTENs on
# es_playbook and es_image, writes what it receives to OUT and polls (psql
# prints notifications after each command) until STOPFILE exists; sets
# $listener to its pid.  Fails if it is not listening within 5 s.
start_listener() {
	local db=$1 out=$2 stop=$3
	{
		echo "LISTEN es_playbook; LISTEN es_image; SELECT 'listening';"
		while [ ! -e "$stop" ]; do
			echo "SELECT 1;"
			sleep 0.2
		done
		sleep 1
		echo "SELECT 1;"
	} | psql -X -At -d "$db" >"$out" 2>&1 &
	listener=$!
	for _ in $(seq 1 50); do
		grep -q listening "$out" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
