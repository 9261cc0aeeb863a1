#!/usr/bin/env bash
# test/bench/run.sh - append throughput of eventsourcing against plain INSERTs.
#
# Usage: test/bench/run.sh            (or: make bench)
#
# Everything runs on ONE cluster in ONE run, so the ratios compare like with
# like.  Which cluster:
#   * by default a private one, started with test/cluster.sh in
#     BENCH_CLUSTER_DIR (default /tmp/eventsourcing-bench-cluster) on
#     BENCH_PORT (default 25439) and stopped again at the end (the data
#     directory is kept; "test/cluster.sh DIR PORT destroy" removes it);
#   * with BENCH_USE_EXISTING=1, the server at PGHOST/PGPORT (PGUSER must be
#     a superuser that may create databases); the extension must be
#     installed there.
# The database BENCH_DB (default es_bench) is dropped and created again.
#
# Workloads, each one INSERT-sized append per transaction, for clients in
# BENCH_CLIENTS (default "1 8 32") and two stream distributions (1000 random
# streams; one hot stream):
#   baseline         plain INSERT into bench.plain_events: the same columns and
#                    indexes as es.events (CREATE TABLE ... LIKE es.events
#                    INCLUDING ALL: indexes and constraints, no triggers);
#                    sequence_number from a global sequence (no per-stream
#                    numbering at all)
#   baseline+lock    the hand-written equivalent of a per-stream sequence:
#                    BEGIN; pg_advisory_xact_lock(hashtext(stream));
#                    INSERT ... max(sequence_number) + 1; COMMIT
#   es_append(off)   es_append with eventsourcing.notify = off
#   es_append(commit) es_append with eventsourcing.notify = commit (default)
#   es INSERT(off)   INSERT INTO es.events (through the append trigger), off
# Each workload runs BENCH_SECONDS (default 20) with pgbench -M prepared
# after the store is reset (DROP/CREATE EXTENSION, TRUNCATE of the baseline
# table, VACUUM ANALYZE, CHECKPOINT), so all start empty.
#
# Output: a table (workload, streams, clients, TPS, ratio to the baseline of
# the same streams and clients, failed transactions), then the target ratios:
#   es_append(off) / baseline, 1000 streams, 8 and 32 clients   >= 0.85
#   es_append(off) / baseline+lock, hot stream                  >= 0.90
#   es_append(commit) / es_append(off)                          (reported)
# and the same text in test/bench/results/<timestamp>.txt.  Exit status 0
# unless a pgbench run failed; targets missed are reported, not fatal.
#
# Environment: BENCH_SECONDS, BENCH_REPEAT (runs per cell, interleaved; the
# table shows the median; default 1), BENCH_CLIENTS, BENCH_JOBS (pgbench threads, at
# most; default: number of CPUs), BENCH_STREAMS (default 1000),
# BENCH_WORKLOADS (subset of: baseline baseline_lock es_append_off
# es_append_commit es_insert_off), BENCH_USE_EXISTING, BENCH_CLUSTER_DIR,
# BENCH_PORT, BENCH_KEEP_RUNNING=1 (leave the private cluster running),
# BENCH_EXTRA_CONF (postgresql.conf lines for a new private cluster).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd -P)
REPO=$(cd "$BENCH_DIR/../.." && pwd -P)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
export PATH="$PG_BIN:$PATH"

SECONDS_PER_RUN=${BENCH_SECONDS:-20}
CLIENT_LIST=${BENCH_CLIENTS:-"1 8 32"}
MAX_JOBS=${BENCH_JOBS:-$(nproc 2>/dev/null || echo 2)}
NSTREAMS=${BENCH_STREAMS:-1000}
WORKLOADS=${BENCH_WORKLOADS:-"baseline baseline_lock es_append_off es_append_commit es_insert_off"}
DB=${BENCH_DB:-es_bench}
REPEAT=${BENCH_REPEAT:-1}
CLUSTER_DIR=${BENCH_CLUSTER_DIR:-/tmp/eventsourcing-bench-cluster}
STARTED_CLUSTER=0

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }

if [ "${BENCH_USE_EXISTING:-0}" = 1 ]; then
	export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
	log "using the existing server at $PGHOST:$PGPORT"
else
	export PGHOST=127.0.0.1 PGPORT=${BENCH_PORT:-25439} PGUSER=postgres
	[ -f "$REPO/test/cluster.sh" ] || die "test/cluster.sh not found; use BENCH_USE_EXISTING=1"
	if ! bash "$REPO/test/cluster.sh" "$CLUSTER_DIR" "$PGPORT" status >/dev/null 2>&1; then
		STARTED_CLUSTER=1
	fi
	ES_EXTRA_CONF=${BENCH_EXTRA_CONF:-} bash "$REPO/test/cluster.sh" "$CLUSTER_DIR" "$PGPORT" start >&2
fi
unset PGDATABASE PGOPTIONS PGSERVICE || true

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	if [ "$STARTED_CLUSTER" = 1 ] && [ "${BENCH_KEEP_RUNNING:-0}" != 1 ]; then
		bash "$REPO/test/cluster.sh" "$CLUSTER_DIR" "$PGPORT" stop >&2 || true
	fi
}
trap cleanup EXIT

pg_isready -q -t 30 || die "no server at $PGHOST:$PGPORT"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }

# ---- database ----
dropdb --if-exists --force "$DB" >/dev/null
createdb "$DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<'SQL'
CREATE EXTENSION eventsourcing;
CREATE SCHEMA bench;
-- same columns, NOT NULLs, CHECK, primary key, unique constraints and
-- indexes as es.events; LIKE copies no trigger
CREATE TABLE bench.plain_events (LIKE es.events INCLUDING ALL);
CREATE SEQUENCE bench.plain_global_position_seq OWNED BY bench.plain_events.global_position;
CREATE SEQUENCE bench.plain_sequence_number_seq;
ALTER TABLE bench.plain_events
    ALTER COLUMN global_position SET DEFAULT nextval('bench.plain_global_position_seq'),
    ALTER COLUMN event_id SET DEFAULT gen_random_uuid(),
    ALTER COLUMN created_at SET DEFAULT clock_timestamp(),
    ALTER COLUMN transaction_id SET DEFAULT pg_current_xact_id();
SQL
n_idx=$(q "SELECT (SELECT count(*) FROM pg_index WHERE indrelid = 'bench.plain_events'::regclass)
                  || '/' || (SELECT count(*) FROM pg_index WHERE indrelid = 'es.events'::regclass)")
n_trg=$(q "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'bench.plain_events'::regclass")
[ "${n_idx%/*}" = "${n_idx#*/}" ] || die "bench.plain_events has $n_idx indexes of es.events"
[ "$n_trg" = 0 ] || die "bench.plain_events has $n_trg triggers"

# reset: every workload starts from an empty store, vacuumed and checkpointed
reset_store() {
	psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP EXTENSION eventsourcing CASCADE;
CREATE EXTENSION eventsourcing;
TRUNCATE bench.plain_events;
ALTER SEQUENCE bench.plain_global_position_seq RESTART;
ALTER SEQUENCE bench.plain_sequence_number_seq RESTART;
SQL
	psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
}

# label, script, PGOPTIONS, table of the workload
wl_label() {
	case "$1" in
		baseline) echo "baseline" ;;
		baseline_lock) echo "baseline+lock" ;;
		es_append_off) echo "es_append(off)" ;;
		es_append_commit) echo "es_append(commit)" ;;
		es_insert_off) echo "es INSERT(off)" ;;
		*) die "unknown workload $1" ;;
	esac
}
wl_script() {
	case "$1" in
		baseline) echo baseline_insert.sql ;;
		baseline_lock) echo baseline_locked.sql ;;
		es_append_off | es_append_commit) echo es_append.sql ;;
		es_insert_off) echo es_insert.sql ;;
	esac
}
wl_options() {
	case "$1" in
		es_append_commit) echo "-c eventsourcing.notify=commit" ;;
		es_*) echo "-c eventsourcing.notify=off" ;;
		*) echo "" ;;
	esac
}
wl_table() {
	case "$1" in
		baseline*) echo bench.plain_events ;;
		*) echo es.events ;;
	esac
}

declare -A TPS TPS_ALL FAILED
RUN_FAILED=0
RESULTS_DIR="$BENCH_DIR/results"
mkdir -p "$RESULTS_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
OUT="$RESULTS_DIR/$STAMP.txt"
RAW="$RESULTS_DIR/$STAMP.pgbench.log"
: >"$RAW"

run_one() {
	local wl=$1 dist=$2 clients=$3 nstreams jobs out tps failed processed rows rc=0
	if [ "$dist" = hot ]; then nstreams=1; else nstreams=$NSTREAMS; fi
	jobs=$((clients < MAX_JOBS ? clients : MAX_JOBS))
	reset_store
	out=$(PGOPTIONS="$(wl_options "$wl")" pgbench -n -M prepared -c "$clients" -j "$jobs" \
		-T "$SECONDS_PER_RUN" -D nstreams="$nstreams" -f "$BENCH_DIR/$(wl_script "$wl")" "$DB" 2>&1) || rc=$?
	{
		echo "==== $wl dist=$dist clients=$clients rc=$rc"
		echo "$out"
	} >>"$RAW"
	tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p')
	failed=$(echo "$out" | sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p')
	processed=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
	rows=$(q "SELECT count(*) FROM $(wl_table "$wl")")
	if [ "$rc" -ne 0 ] || [ -z "$tps" ] || [ "${failed:-0}" != 0 ] || [ "$rows" != "${processed:-x}" ]; then
		RUN_FAILED=1
		log "$wl/$dist/$clients: pgbench rc=$rc failed=${failed:-?} processed=${processed:-?} rows=$rows; see $RAW"
		echo "$out" | grep -iE 'error|abort' | head -n 5 >&2 || true
	fi
	TPS_ALL[$wl,$dist,$clients]="${TPS_ALL[$wl,$dist,$clients]:-} ${tps:-0}"
	FAILED[$wl,$dist,$clients]=$((${FAILED[$wl,$dist,$clients]:-0} + ${failed:-0}))
	log "$(printf '%-18s %-12s %3s clients: %10s tps' "$(wl_label "$wl")" "$dist" "$clients" "${tps:-?}")"
}

# median of the arguments
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'
}

total_runs=$((2 * REPEAT * $(echo "$CLIENT_LIST" | wc -w) * $(echo "$WORKLOADS" | wc -w)))
log "$total_runs runs of $SECONDS_PER_RUN s (+ reset) on $PGHOST:$PGPORT, database $DB"
# the repetitions of a group are interleaved (a b c a b c), so that a slow
# phase of the machine does not hit one workload only
for dist in streams hot; do
	for clients in $CLIENT_LIST; do
		for ((rep = 1; rep <= REPEAT; rep++)); do
			for wl in $WORKLOADS; do
				run_one "$wl" "$dist" "$clients"
			done
		done
		for wl in $WORKLOADS; do
			# shellcheck disable=SC2086  # one word per run
			TPS[$wl,$dist,$clients]=$(median ${TPS_ALL[$wl,$dist,$clients]})
		done
	done
done

# ---- report ----
dist_label() { if [ "$1" = hot ]; then echo "1 (hot)"; else echo "$NSTREAMS"; fi; }
{
	echo "eventsourcing benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "server: $(q "SELECT version()")"
	echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo)"
	echo "settings: $(q "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name)
	                    FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers',
	                    'wal_level', 'max_wal_size', 'checkpoint_timeout', 'full_page_writes', 'commit_delay')")"
	echo "pgbench -n -M prepared -T $SECONDS_PER_RUN, threads min(clients, $MAX_JOBS); event data ~300 bytes jsonb"
	echo "TPS: median of $REPEAT run(s) per cell; failed: total over them"
	echo "ratio: TPS / TPS of 'baseline' with the same streams and clients"
	echo
	printf '%-18s %-8s %7s %11s %9s %7s\n' workload streams clients TPS "vs base" failed
	printf '%-18s %-8s %7s %11s %9s %7s\n' ------------------ -------- ------- ----------- --------- -------
	for dist in streams hot; do
		for clients in $CLIENT_LIST; do
			for wl in $WORKLOADS; do
				base=${TPS[baseline,$dist,$clients]:-0}
				printf '%-18s %-8s %7s %11.1f %9s %7s\n' "$(wl_label "$wl")" "$(dist_label "$dist")" "$clients" \
					"${TPS[$wl,$dist,$clients]}" "$(ratio "${TPS[$wl,$dist,$clients]}" "$base")" \
					"${FAILED[$wl,$dist,$clients]}"
			done
		done
	done
	echo
	echo "ratios:"
	target() {	# LABEL VALUE TARGET
		local verdict
		verdict=$(awk -v v="$2" -v t="$3" 'BEGIN { if (v == "n/a") print "n/a"; else if (v + 0 >= t + 0) print "met"; else print "NOT MET" }')
		printf '  %-62s %5s  (target >= %s: %s)\n' "$1" "$2" "$3" "$verdict"
	}
	has() { case " $WORKLOADS " in *" $1 "*) return 0 ;; esac; return 1; }
	for clients in $CLIENT_LIST; do
		if has es_append_off && has baseline; then
			r=$(ratio "${TPS[es_append_off,streams,$clients]}" "${TPS[baseline,streams,$clients]}")
			if [ "$clients" -ge 8 ]; then
				target "es_append(off) / baseline, $NSTREAMS streams, $clients clients" "$r" 0.85
			else
				printf '  %-62s %5s\n' "es_append(off) / baseline, $NSTREAMS streams, $clients clients" "$r"
			fi
		fi
	done
	for clients in $CLIENT_LIST; do
		if has es_append_off && has baseline_lock; then
			r=$(ratio "${TPS[es_append_off,hot,$clients]}" "${TPS[baseline_lock,hot,$clients]}")
			target "es_append(off) / baseline+lock, hot stream, $clients clients" "$r" 0.90
		fi
	done
	for dist in streams hot; do
		for clients in $CLIENT_LIST; do
			if has es_append_off && has es_append_commit; then
				printf '  %-62s %5s\n' "es_append(commit) / es_append(off), $(dist_label "$dist") streams, $clients clients" \
					"$(ratio "${TPS[es_append_commit,$dist,$clients]}" "${TPS[es_append_off,$dist,$clients]}")"
			fi
		done
	done
	for dist in streams hot; do
		for clients in $CLIENT_LIST; do
			if has es_append_off && has es_insert_off; then
				printf '  %-62s %5s\n' "es INSERT(off) / es_append(off), $(dist_label "$dist") streams, $clients clients" \
					"$(ratio "${TPS[es_insert_off,$dist,$clients]}" "${TPS[es_append_off,$dist,$clients]}")"
			fi
		done
	done
	if [ "$RUN_FAILED" = 1 ]; then
		echo
		echo "WARNING: some pgbench runs failed or stored a different number of rows; see $RAW"
	fi
} | tee "$OUT"
log "results written to $OUT (pgbench output: $RAW)"
exit "$RUN_FAILED"
