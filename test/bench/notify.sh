#!/usr/bin/env bash
# test/bench/notify.sh - cost and latency of the notify modes (off, commit,
# worker) against plain INSERTs.
#
# Usage: test/bench/notify.sh
#
# Everything runs on ONE private cluster in ONE run: started with
# test/cluster.sh in BENCH_CLUSTER_DIR (default
# /tmp/eventsourcing-notify-bench-cluster) on BENCH_PORT (default 25449) with
# shared_preload_libraries = 'eventsourcing' (worker mode needs it).  The
# server is restarted first, so that it runs the library installed now, and
# stopped at the end unless it was running before or BENCH_KEEP_RUNNING=1
# (the data directory is kept; "test/cluster.sh DIR PORT destroy" removes
# it).  The database BENCH_DB (default es_notify_bench) is dropped and
# created again.  The listener (test/bench/listener.c) is compiled with cc
# and libpq (Debian: libpq-dev) into a temporary directory.
#
# 1. Throughput: one append per transaction to one of BENCH_STREAMS (1000)
#    streams, pgbench -n -M prepared -T BENCH_SECONDS (20) for each number of
#    clients in BENCH_CLIENTS ("8 32"), no listener, workloads:
#      plain INSERT   INSERT into bench.plain_events, a copy of es.events
#                     without triggers (test/bench/baseline_insert.sql, as in
#                     run.sh)
#      es_append(off|commit|worker)
#                     test/bench/notify_append.sql with
#                     PGOPTIONS='-c eventsourcing.notify=MODE'
#    For worker: the backlog left in es.notify_queue when pgbench ends, the
#    time the notifier takes to drain it, its passes (batches), events per
#    batch and CPU time (/proc/PID/stat; the same in the latency rows).
# 2. Latency: commit and worker mode at fixed rates BENCH_RATES ("1000
#    4000") appends/s (pgbench -R, BENCH_LAT_CLIENTS (8) clients,
#    BENCH_LAT_SECONDS (15) s) while the listener LISTENs on es_playbook:
#    latency = receive time - the event's created_at (its "timestamp"),
#    p50/p90/p99/max; duplicates and per-stream out-of-order arrivals seen
#    by the listener; lost = events appended in the run that the listener
#    did not receive (compared with es.events).  The listener stops at a
#    NOTIFY on es_bench_end sent after pgbench ended (and, in worker mode,
#    after the queue is empty), so it has seen everything sent before.
# 3. Verdicts (reported, never fatal):
#      es_append(worker) / plain INSERT, 8 clients     target >= 0.80
#      p99 latency, worker, 4000/s                      target <= 10 ms
#      lost and duplicated notifications, all runs      target 0
#
# Every store starts empty (DROP/CREATE EXTENSION, TRUNCATE, VACUUM ANALYZE,
# CHECKPOINT).  Worker mode is used only if it is available (the library
# preloaded, "SET eventsourcing.notify = worker" accepted and es.notify_status
# present, i.e. extension 1.3); otherwise its rows say why.  The server log
# lines of the run that mention the notifier, ERROR, FATAL, PANIC or WARNING
# are shown at the end.
#
# Output: the tables and verdicts on stdout and in
# test/bench/results/notify-<timestamp>.txt (pgbench output in
# notify-<timestamp>.log).  Exit status 0 unless a pgbench run or the
# listener failed; targets missed are reported, not fatal.  The default run
# takes about 4 minutes.  The load average at the start and the end is in the
# report: other work on the machine moves the numbers a lot.
#
# Environment: BENCH_SECONDS, BENCH_CLIENTS, BENCH_REPEAT (throughput runs
# per cell, interleaved; the table shows the median; default 1),
# BENCH_RATES, BENCH_LAT_SECONDS, BENCH_LAT_CLIENTS, BENCH_STREAMS,
# BENCH_JOBS (pgbench threads, at most; default: number of CPUs),
# BENCH_MODES (subset of "off commit worker"; default all three),
# BENCH_SKIP_THROUGHPUT=1, BENCH_SKIP_LATENCY=1, BENCH_EXT_VERSION (CREATE
# EXTENSION ... VERSION, e.g. 1.2: worker mode is then reported as not
# available), BENCH_DB, BENCH_CLUSTER_DIR, BENCH_PORT, BENCH_KEEP_RUNNING=1,
# CC (default cc).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd -P)
REPO=$(cd "$BENCH_DIR/../.." && pwd -P)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
export PATH="$PG_BIN:$PATH"

SECONDS_PER_RUN=${BENCH_SECONDS:-20}
CLIENT_LIST=${BENCH_CLIENTS:-"8 32"}
REPEAT=${BENCH_REPEAT:-1}
RATES=${BENCH_RATES:-"1000 4000"}
LAT_SECONDS=${BENCH_LAT_SECONDS:-15}
LAT_CLIENTS=${BENCH_LAT_CLIENTS:-8}
NSTREAMS=${BENCH_STREAMS:-1000}
MAX_JOBS=${BENCH_JOBS:-$(nproc 2>/dev/null || echo 2)}
MODES=${BENCH_MODES:-"off commit worker"}
DB=${BENCH_DB:-es_notify_bench}
EXT_CLAUSE=""
if [ -n "${BENCH_EXT_VERSION:-}" ]; then
	case "$BENCH_EXT_VERSION" in
		*[!0-9.]*) die "BENCH_EXT_VERSION must look like 1.2, got \"$BENCH_EXT_VERSION\"" ;;
	esac
	EXT_CLAUSE="VERSION '$BENCH_EXT_VERSION'"
fi
CLUSTER_DIR=${BENCH_CLUSTER_DIR:-/tmp/eventsourcing-notify-bench-cluster}
PRELOAD_CONF="shared_preload_libraries = 'eventsourcing'"
END_CHANNEL=es_bench_end
DRAIN_TIMEOUT=120	# seconds the notifier may take to empty its queue

log() { echo "[notify-bench $(date +%H:%M:%S)] $*" >&2; }
die() { echo "notify-bench: error: $*" >&2; exit 1; }

for v in SECONDS_PER_RUN REPEAT LAT_SECONDS LAT_CLIENTS NSTREAMS MAX_JOBS; do
	case "${!v}" in
		'' | *[!0-9]* | 0) die "$v must be a positive integer, got \"${!v}\"" ;;
	esac
done
for m in $MODES; do
	case "$m" in off | commit | worker) ;; *) die "BENCH_MODES: unknown mode \"$m\"" ;; esac
done
has_mode() { case " $MODES " in *" $1 "*) return 0 ;; esac; return 1; }

# ---- the listener ----
WORK=$(mktemp -d "${TMPDIR:-/tmp}/es-notify-bench.XXXXXX")
chmod 755 "$WORK"
LISTENER="$WORK/listener"
LISTENER_PID=""
PG_INCLUDE=$(pg_config --includedir) || die "pg_config not found (Debian: libpq-dev)"
[ -f "$PG_INCLUDE/libpq-fe.h" ] || die "$PG_INCLUDE/libpq-fe.h not found: install libpq-dev"
"${CC:-cc}" -O2 -Wall -Wextra -Werror -I"$PG_INCLUDE" -o "$LISTENER" "$BENCH_DIR/listener.c" \
	-L"$(pg_config --libdir)" -lpq || die "cannot compile $BENCH_DIR/listener.c"

# ---- the cluster ----
export PGHOST=127.0.0.1 PGPORT=${BENCH_PORT:-25449} PGUSER=postgres
unset PGDATABASE PGOPTIONS PGSERVICE || true
[ -f "$REPO/test/cluster.sh" ] || die "test/cluster.sh not found"
WAS_RUNNING=0
if bash "$REPO/test/cluster.sh" "$CLUSTER_DIR" "$PGPORT" status >/dev/null 2>&1; then
	WAS_RUNNING=1
fi
if [ -f "$CLUSTER_DIR/postgresql.conf" ] && ! grep -qxF "$PRELOAD_CONF" "$CLUSTER_DIR/postgresql.conf"; then
	die "the cluster in $CLUSTER_DIR does not preload the library; remove it (test/cluster.sh $CLUSTER_DIR $PGPORT destroy) or choose another BENCH_CLUSTER_DIR"
fi
# restart: the server must run the library installed now
ES_EXTRA_CONF=$PRELOAD_CONF bash "$REPO/test/cluster.sh" "$CLUSTER_DIR" "$PGPORT" restart >&2
SERVER_LOG="$(readlink -f "$CLUSTER_DIR")/log/postgresql.log"

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	if [ -n "$LISTENER_PID" ]; then
		kill "$LISTENER_PID" 2>/dev/null || true
		wait "$LISTENER_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
	if [ "$WAS_RUNNING" = 0 ] && [ "${BENCH_KEEP_RUNNING:-0}" != 1 ]; then
		bash "$REPO/test/cluster.sh" "$CLUSTER_DIR" "$PGPORT" stop >&2 || true
	fi
}
trap cleanup EXIT

pg_isready -q -t 30 || die "no server at $PGHOST:$PGPORT"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }

# ---- database ----
dropdb --if-exists --force "$DB" >/dev/null
createdb "$DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "CREATE EXTENSION eventsourcing $EXT_CLAUSE" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<'SQL'
CREATE SCHEMA bench;
-- as in run.sh: the columns, constraints and indexes of es.events, no trigger
CREATE TABLE bench.plain_events (LIKE es.events INCLUDING ALL);
CREATE SEQUENCE bench.plain_global_position_seq OWNED BY bench.plain_events.global_position;
CREATE SEQUENCE bench.plain_sequence_number_seq;
ALTER TABLE bench.plain_events
    ALTER COLUMN global_position SET DEFAULT nextval('bench.plain_global_position_seq'),
    ALTER COLUMN event_id SET DEFAULT gen_random_uuid(),
    ALTER COLUMN created_at SET DEFAULT clock_timestamp(),
    ALTER COLUMN transaction_id SET DEFAULT pg_current_xact_id();
CREATE TABLE bench.received (stream text, sequence_number bigint);
SQL
[ "$(q "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'bench.plain_events'::regclass")" = 0 ] ||
	die "bench.plain_events has triggers"
# the server log from here on (dropdb --force stopped the old notifier)
LOG_START=$(stat -c %s "$SERVER_LOG" 2>/dev/null || echo 0)
EXT_VERSION=$(q "SELECT extversion FROM pg_extension WHERE extname = 'eventsourcing'")

# worker_unavailable: why worker mode cannot be used here (nothing if it can)
worker_unavailable() {
	local err
	case ",$(q "SHOW shared_preload_libraries" | tr -d ' ')," in
		*,eventsourcing,*) ;;
		*) echo "the library is not in shared_preload_libraries"; return ;;
	esac
	if ! err=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" -c "SET eventsourcing.notify = worker" 2>&1); then
		echo "SET eventsourcing.notify = worker fails: $(echo "$err" | head -n 1)"
		return
	fi
	if [ "$(q "SELECT to_regclass('es.notify_status') IS NOT NULL")" != t ]; then
		echo "extension $EXT_VERSION has no es.notify_status (worker mode needs 1.3)"
	fi
}
WORKER_WHY=""
WORKER_BEFORE="0 0 0 0"
if has_mode worker; then
	WORKER_WHY=$(worker_unavailable)
	if [ -n "$WORKER_WHY" ]; then
		log "worker mode not available: $WORKER_WHY"
	fi
fi
mode_usable() { has_mode "$1" && { [ "$1" != worker ] || [ -z "$WORKER_WHY" ]; }; }

# reset: every run starts from an empty store, vacuumed and checkpointed
reset_store() {
	psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<SQL
SET client_min_messages = warning;
DROP EXTENSION eventsourcing CASCADE;
CREATE EXTENSION eventsourcing $EXT_CLAUSE;
TRUNCATE bench.plain_events, bench.received;
ALTER SEQUENCE bench.plain_global_position_seq RESTART;
ALTER SEQUENCE bench.plain_sequence_number_seq RESTART;
SQL
	psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
}

# queue_len: events in es.notify_queue (committed, not yet announced)
queue_len() { q "SELECT coalesce(sum(cardinality(positions)), 0) FROM es.notify_queue"; }

# wait_drained: wait until the notifier has emptied its queue; prints the
# seconds it took, or "timeout"
wait_drained() {
	local start now
	start=$(date +%s.%N)
	while [ "$(queue_len)" != 0 ]; do
		now=$(date +%s.%N)
		if awk -v a="$start" -v b="$now" -v t="$DRAIN_TIMEOUT" 'BEGIN { exit !(b - a > t) }'; then
			echo timeout
			return
		fi
		sleep 0.05
	done
	now=$(date +%s.%N)
	awk -v a="$start" -v b="$now" 'BEGIN { printf "%.2f", b - a }'
}

# warm_up MODE: in worker mode, one append starts the notifier; wait until it
# runs and has published it
warm_up() {
	local i
	[ "$1" = worker ] || return 0
	PGOPTIONS="-c eventsourcing.notify=worker" q "SELECT es_append('playbook-1', 'warm_up', '{}')" >/dev/null
	for ((i = 0; i < 100; i++)); do
		[ "$(q "SELECT worker_state FROM es.notify_status")" = running ] && break
		sleep 0.1
	done
	[ "$(wait_drained)" != timeout ] || log "warning: the notifier did not publish the warm-up event"
	WORKER_BEFORE=$(worker_counters)
}

# worker_counters: "pid events_sent batches cpu_seconds" of the notifier
worker_counters() {
	local pid counters cpu=0
	counters=$(q "SELECT coalesce(worker_pid, 0) || ' ' || coalesce(events_sent, 0) || ' ' || coalesce(batches, 0)
	              FROM es.notify_status")
	pid=${counters%% *}
	if [ "$pid" != 0 ] && [ -r "/proc/$pid/stat" ]; then
		# utime + stime (fields 14 and 15; the name in field 2 has no blank)
		cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$pid/stat")
	fi
	echo "$counters $cpu"
}

# worker_note: what the notifier did since warm_up (batches, events per
# batch, CPU seconds), or that it was restarted meanwhile
worker_note() {
	local now
	now=$(worker_counters)
	# shellcheck disable=SC2086  # four words each
	set -- $WORKER_BEFORE $now
	if [ "$1" != "$5" ]; then
		echo "notifier RESTARTED during the run (pid $1 -> $5)"
		return
	fi
	awk -v e=$(($6 - $2)) -v b=$(($7 - $3)) -v c0="$4" -v c1="$8" 'BEGIN {
		printf "%d batches, %.1f events/batch, notifier CPU %.1f s (%.0f us/event)", b, (b > 0 ? e / b : 0),
			c1 - c0, (e > 0 ? (c1 - c0) * 1e6 / e : 0) }'
}

# listener_start FILE: start the listener (events received go to FILE) and
# wait until it LISTENs
listener_start() {
	local i
	rm -f "$WORK/ready"
	"$LISTENER" -d "dbname=$DB" -s 60 -e "$END_CHANNEL" -o "$1" -r "$WORK/ready" es_playbook \
		>"$WORK/listener.out" 2>"$WORK/listener.err" &
	LISTENER_PID=$!
	for ((i = 0; i < 200; i++)); do
		[ -e "$WORK/ready" ] && return 0
		kill -0 "$LISTENER_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$WORK/listener.err" >&2
	die "the listener did not start"
}

# listener_finish: end the listener with a NOTIFY on END_CHANNEL (queued
# after every notification sent so far); its result line goes to
# LISTENER_RESULT (empty if it failed).  Not in a subshell: it waits for
# the listener, a child of this shell.
LISTENER_RESULT=""
listener_finish() {
	local rc=0
	q "NOTIFY $END_CHANNEL" >/dev/null
	wait "$LISTENER_PID" || rc=$?
	LISTENER_PID=""
	if [ -s "$WORK/listener.err" ]; then
		sed 's/^/  listener: /' "$WORK/listener.err" >&2
	fi
	LISTENER_RESULT=""
	if [ "$rc" = 0 ]; then
		LISTENER_RESULT=$(cat "$WORK/listener.out")
	fi
	[ -n "$LISTENER_RESULT" ]
}

# field NAME LINE: the value of NAME=value in a listener result line
field() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# median_note WL CLIENTS: the note of the run whose TPS is nearest the median
median_note() {
	local best="" d bestd="" t
	for t in ${TPS_ALL[$1,$2]}; do
		d=$(awk -v a="$t" -v m="${TPS[$1,$2]}" 'BEGIN { d = a - m; print (d < 0 ? -d : d) }')
		if [ -z "$bestd" ] || awk -v a="$d" -v b="$bestd" 'BEGIN { exit !(a < b) }'; then
			bestd=$d best=$t
		fi
	done
	echo "${NOTE[$1,$2,$best]:-}"
}
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.2f", a / b; else printf "n/a" }'
}

RESULTS_DIR="$BENCH_DIR/results"
mkdir -p "$RESULTS_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
OUT="$RESULTS_DIR/notify-$STAMP.txt"
RAW="$RESULTS_DIR/notify-$STAMP.log"
: >"$RAW"
RUN_FAILED=0
# other work on the machine skews everything: shown in the report
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- 1. throughput ----
WORKLOADS="plain"
for m in off commit worker; do
	if has_mode "$m"; then WORKLOADS="$WORKLOADS $m"; fi
done
wl_label() { if [ "$1" = plain ]; then echo "plain INSERT"; else echo "es_append($1)"; fi; }

declare -A TPS TPS_ALL FAILED NOTE
run_tput() {
	local wl=$1 clients=$2 jobs script opts out tps failed processed rows rc=0 backlog drain
	jobs=$((clients < MAX_JOBS ? clients : MAX_JOBS))
	if [ "$wl" = plain ]; then
		script=baseline_insert.sql opts=""
	else
		script=notify_append.sql opts="-c eventsourcing.notify=$wl"
	fi
	reset_store
	warm_up "$wl"
	out=$(PGOPTIONS=$opts pgbench -n -M prepared -c "$clients" -j "$jobs" -T "$SECONDS_PER_RUN" \
		-D nstreams="$NSTREAMS" -f "$BENCH_DIR/$script" "$DB" 2>&1) || rc=$?
	tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p')
	if [ "$wl" = worker ]; then
		backlog=$(queue_len)
		drain=$(wait_drained)
		# per run (the table shows the note of the median run)
		NOTE[$wl,$clients,${tps:-0}]="backlog $backlog events, drained in $drain s, $(worker_note)"
	fi
	{
		echo "==== throughput $wl clients=$clients rc=$rc"
		echo "$out"
		if [ "$wl" = worker ]; then echo "notifier: ${NOTE[$wl,$clients,${tps:-0}]}"; fi
	} >>"$RAW"
	failed=$(echo "$out" | sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p')
	processed=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
	if [ "$wl" = plain ]; then
		rows=$(q "SELECT count(*) FROM bench.plain_events")
	else
		rows=$(q "SELECT count(*) FROM es.events WHERE event_type <> 'warm_up'")
	fi
	if [ "$rc" -ne 0 ] || [ -z "$tps" ] || [ "${failed:-0}" != 0 ] || [ "$rows" != "${processed:-x}" ]; then
		RUN_FAILED=1
		log "$wl/$clients: pgbench rc=$rc failed=${failed:-?} processed=${processed:-?} rows=$rows; see $RAW"
		echo "$out" | grep -iE 'error|abort' | head -n 5 >&2 || true
	fi
	TPS_ALL[$wl,$clients]="${TPS_ALL[$wl,$clients]:-} ${tps:-0}"
	FAILED[$wl,$clients]=$((${FAILED[$wl,$clients]:-0} + ${failed:-0}))
	log "$(printf '%-20s %3s clients: %10s tps' "$(wl_label "$wl")" "$clients" "${tps:-?}")${backlog:+, backlog $backlog, drained in $drain s}"
}

if [ "${BENCH_SKIP_THROUGHPUT:-0}" != 1 ]; then
	log "throughput: $(echo "$WORKLOADS" | wc -w) workloads x clients $CLIENT_LIST x $REPEAT, $SECONDS_PER_RUN s each"
	for clients in $CLIENT_LIST; do
		for ((rep = 1; rep <= REPEAT; rep++)); do
			for wl in $WORKLOADS; do
				if [ "$wl" = worker ] && [ -n "$WORKER_WHY" ]; then continue; fi
				run_tput "$wl" "$clients"
			done
		done
		for wl in $WORKLOADS; do
			if [ -n "${TPS_ALL[$wl,$clients]:-}" ]; then
				# shellcheck disable=SC2086  # one word per run
				TPS[$wl,$clients]=$(median ${TPS_ALL[$wl,$clients]})
			fi
		done
	done
fi

# ---- 2. latency ----
declare -A LAT LAT_P99
LAT_MODES=""
for m in commit worker; do
	if mode_usable "$m"; then LAT_MODES="$LAT_MODES $m"; fi
done
TOTAL_LOST=0 TOTAL_DUP=0 TOTAL_OOO=0

run_latency() {
	local mode=$1 rate=$2 jobs start_gp out rc=0 res appended lost extra tps lag drain=""
	jobs=$((LAT_CLIENTS < MAX_JOBS ? LAT_CLIENTS : MAX_JOBS))
	reset_store
	warm_up "$mode"
	start_gp=$(q "SELECT coalesce(max(global_position), 0) FROM es.events")
	listener_start "$WORK/received.txt"
	out=$(PGOPTIONS="-c eventsourcing.notify=$mode" pgbench -n -M prepared -c "$LAT_CLIENTS" -j "$jobs" \
		-R "$rate" -T "$LAT_SECONDS" -D nstreams="$NSTREAMS" -f "$BENCH_DIR/notify_append.sql" "$DB" 2>&1) || rc=$?
	if [ "$mode" = worker ]; then
		drain="$(wait_drained) s, $(worker_note)"
	fi
	if ! listener_finish; then
		RUN_FAILED=1
		log "latency $mode/$rate: the listener failed"
	fi
	res=$LISTENER_RESULT
	{
		echo "==== latency $mode rate=$rate rc=$rc"
		echo "$out"
		echo "listener: $res"
	} >>"$RAW"
	if [ "$rc" -ne 0 ] || echo "$out" | grep -q '^number of failed transactions: [1-9]'; then
		RUN_FAILED=1
		log "latency $mode/$rate: pgbench failed (rc=$rc); see $RAW"
	fi
	tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p')
	lag=$(echo "$out" | sed -n 's/^rate limit schedule lag: avg \([0-9.]*\) (max \([0-9.]*\)) ms$/\1\/\2/p')
	# what the listener missed, compared with the store
	psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "TRUNCATE bench.received" \
		-c "\\copy bench.received FROM '$WORK/received.txt' WITH (FORMAT text, DELIMITER ' ')" >/dev/null
	appended=$(q "SELECT count(*) FROM es.events WHERE global_position > $start_gp")
	lost=$(q "SELECT count(*) FROM es.events e WHERE global_position > $start_gp AND NOT EXISTS
	          (SELECT FROM bench.received r WHERE r.stream = e.stream AND r.sequence_number = e.sequence_number)")
	extra=$(q "SELECT count(*) FROM bench.received r WHERE NOT EXISTS
	          (SELECT FROM es.events e WHERE e.global_position > $start_gp
	              AND e.stream = r.stream AND e.sequence_number = r.sequence_number)")
	LAT[$mode,$rate]="$(printf '%-8s %6s %8.1f %8s %8s %6s %5s %5s %5s %8s %8s %8s %8s %9s' \
		"$mode" "$rate" "${tps:-0}" "$appended" "$(field count "$res")" "$lost" "$(field duplicates "$res")" \
		"$(field out_of_order "$res")" "$extra" "$(field p50_ms "$res")" "$(field p90_ms "$res")" \
		"$(field p99_ms "$res")" "$(field max_ms "$res")" "${lag:-?}")${drain:+  drained in $drain}$(
		awk -v t="${tps:-0}" -v r="$rate" 'BEGIN { if (t < 0.95 * r) print "  RATE NOT REACHED (saturated)" }')"
	LAT_P99[$mode,$rate]=$(field p99_ms "$res")
	TOTAL_LOST=$((TOTAL_LOST + lost))
	TOTAL_DUP=$((TOTAL_DUP + $(field duplicates "$res" | grep . || echo 0)))
	TOTAL_OOO=$((TOTAL_OOO + $(field out_of_order "$res" | grep . || echo 0)))
	log "latency $mode $rate/s: appended $appended, received $(field count "$res"), lost $lost, p50 $(field p50_ms "$res") p99 $(field p99_ms "$res") max $(field max_ms "$res") ms"
}

if [ "${BENCH_SKIP_LATENCY:-0}" != 1 ] && [ -n "$LAT_MODES" ]; then
	log "latency:$LAT_MODES x rates $RATES, $LAT_CLIENTS clients, $LAT_SECONDS s each"
	for rate in $RATES; do
		for mode in $LAT_MODES; do
			run_latency "$mode" "$rate"
		done
	done
fi

# ---- report ----
{
	echo "eventsourcing notify benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "server: $(q "SELECT version()")"
	echo "extension: eventsourcing $EXT_VERSION, $(q "SHOW shared_preload_libraries" | sed 's/^/shared_preload_libraries = /')"
	echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo), load average $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
	echo "settings: $(q "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name)
	                    FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers',
	                    'wal_level', 'max_wal_size', 'commit_delay')")"
	if [ -n "$WORKER_WHY" ]; then
		echo "worker mode: NOT AVAILABLE: $WORKER_WHY"
	fi
	if [ "${BENCH_SKIP_THROUGHPUT:-0}" != 1 ]; then
		echo
		echo "1. Throughput: $NSTREAMS streams, one append per transaction, pgbench -n -M prepared -T $SECONDS_PER_RUN,"
		echo "   threads min(clients, $MAX_JOBS), no listener; TPS = median of $REPEAT run(s); ratio = TPS / plain INSERT"
		echo
		printf '%-20s %7s %11s %9s %7s  %s\n' workload clients TPS "vs plain" failed note
		printf '%-20s %7s %11s %9s %7s  %s\n' -------------------- ------- ----------- --------- ------- ----
		for clients in $CLIENT_LIST; do
			for wl in $WORKLOADS; do
				if [ -z "${TPS[$wl,$clients]:-}" ]; then
					printf '%-20s %7s %11s %9s %7s  %s\n' "$(wl_label "$wl")" "$clients" - - - "not run: $WORKER_WHY"
					continue
				fi
				printf '%-20s %7s %11.1f %9s %7s  %s\n' "$(wl_label "$wl")" "$clients" "${TPS[$wl,$clients]}" \
					"$(ratio "${TPS[$wl,$clients]}" "${TPS[plain,$clients]:-}")" "${FAILED[$wl,$clients]}" \
					"$(median_note "$wl" "$clients")"
			done
		done
	fi
	if [ "${BENCH_SKIP_LATENCY:-0}" != 1 ]; then
		echo
		echo "2. Latency commit -> listener: pgbench -R RATE -c $LAT_CLIENTS -T $LAT_SECONDS, $NSTREAMS streams, listener on es_playbook"
		echo "   (ms, receive time - the event's created_at; lost = appended and never received; dup = received twice;"
		echo "   ooo = out of order within a stream; extra = received but not appended in the run; sched lag = pgbench avg/max ms;"
	echo "   RATE NOT REACHED: the server could not append at that rate, the latency is measured at saturation)"
		echo
		printf '%-8s %6s %8s %8s %8s %6s %5s %5s %5s %8s %8s %8s %8s %9s\n' \
			mode rate tps appended received lost dup ooo extra p50 p90 p99 max "sched lag"
		printf '%-8s %6s %8s %8s %8s %6s %5s %5s %5s %8s %8s %8s %8s %9s\n' \
			-------- ------ -------- -------- -------- ------ ----- ----- ----- -------- -------- -------- -------- ---------
		for rate in $RATES; do
			for mode in commit worker; do
				if [ -n "${LAT[$mode,$rate]:-}" ]; then
					echo "${LAT[$mode,$rate]}"
				elif has_mode "$mode"; then
					printf '%-8s %6s  not run: %s\n' "$mode" "$rate" "${WORKER_WHY:-mode not selected}"
				fi
			done
		done
	fi
	echo
	echo "verdicts (reported, not enforced):"
	verdict() {	# LABEL VALUE OP TARGET
		local v
		v=$(awk -v v="$2" -v op="$3" -v t="$4" 'BEGIN {
			if (v == "" || v == "n/a") print "n/a";
			else if ((op == ">=" && v + 0 >= t + 0) || (op == "<=" && v + 0 <= t + 0) || (op == "=" && v + 0 == t + 0)) print "met";
			else print "NOT MET" }')
		printf '  %-52s %8s  (target %s %s: %s)\n' "$1" "${2:-n/a}" "$3" "$4" "$v"
	}
	if [ "${BENCH_SKIP_THROUGHPUT:-0}" != 1 ]; then
		for clients in $CLIENT_LIST; do
			r=$(ratio "${TPS[worker,$clients]:-}" "${TPS[plain,$clients]:-}")
			if [ "$clients" = 8 ]; then
				verdict "es_append(worker) / plain INSERT, $clients clients" "$r" ">=" 0.80
			else
				printf '  %-52s %8s\n' "es_append(worker) / plain INSERT, $clients clients" "$r"
			fi
			printf '  %-52s %8s\n' "es_append(worker) / es_append(off), $clients clients" \
				"$(ratio "${TPS[worker,$clients]:-}" "${TPS[off,$clients]:-}")"
			printf '  %-52s %8s\n' "es_append(commit) / es_append(off), $clients clients" \
				"$(ratio "${TPS[commit,$clients]:-}" "${TPS[off,$clients]:-}")"
		done
	fi
	if [ "${BENCH_SKIP_LATENCY:-0}" != 1 ]; then
		for rate in $RATES; do
			if [ "$rate" = 4000 ]; then
				verdict "p99 latency (ms), worker, $rate/s" "${LAT_P99[worker,$rate]:-n/a}" "<=" 10
			else
				printf '  %-52s %8s\n' "p99 latency (ms), worker, $rate/s" "${LAT_P99[worker,$rate]:-n/a}"
			fi
			printf '  %-52s %8s\n' "p99 latency (ms), commit, $rate/s" "${LAT_P99[commit,$rate]:-n/a}"
		done
		verdict "lost notifications, all latency runs" "$TOTAL_LOST" "=" 0
		verdict "duplicated notifications, all latency runs" "$TOTAL_DUP" "=" 0
		verdict "out-of-order (per stream), all latency runs" "$TOTAL_OOO" "=" 0
	fi
	if [ -z "$WORKER_WHY" ] && has_mode worker; then
		echo
		echo "notifier: $(q "SELECT format('state %s, last_error %s', worker_state, coalesce(last_error || ' at ' || last_error_at, 'none'))
		                 FROM es.notify_status")"
	fi
	echo
	if [ -r "$SERVER_LOG" ]; then
		n=$(tail -c +"$((LOG_START + 1))" "$SERVER_LOG" | grep -ciE 'notifier|ERROR|FATAL|PANIC|WARNING' || true)
		echo "server log ($SERVER_LOG): $n line(s) of this run mention the notifier, ERROR, FATAL, PANIC or WARNING"
		tail -c +"$((LOG_START + 1))" "$SERVER_LOG" | grep -iE 'notifier|ERROR|FATAL|PANIC|WARNING' | head -n 20 | sed 's/^/  /' || true
	fi
	if [ "$RUN_FAILED" = 1 ]; then
		echo
		echo "WARNING: some pgbench runs or the listener failed, or a run stored a different number of rows; see $RAW"
	fi
} | tee "$OUT"
log "results written to $OUT (pgbench output: $RAW)"
exit "$RUN_FAILED"
