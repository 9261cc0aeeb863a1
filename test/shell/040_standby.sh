#!/usr/bin/env bash
# test/shell/040_standby.sh - replay on a hot standby.
#
# This suite does not use the suite's cluster: it builds its own pair, a
# primary (test/cluster.sh, port STANDBY_PRIMARY_PORT, default 25471) and a
# streaming hot standby cloned from it with pg_basebackup -R (port
# STANDBY_PORT, default 25472), both under a temporary directory, run as
# the OS user "postgres" when the script runs as root.  The EXIT trap
# destroys both.
#
# On the primary: the extension, definitions for category "playbook"
# (module_add, module_move, module_delete, rename), events in 30 playbook
# streams of 3..45 events and 6 of 2..4 events appended with
# eventsourcing.snapshot_every = 5, so that long streams have automatic
# snapshots and short ones (< 5 events) have none, a few snapshots taken with es_snapshot, and events in a
# category without definitions ("image").  The primary's WAL position is
# then waited for on the standby (pg_last_wal_replay_lsn >= the primary's
# pg_current_wal_lsn).
#
# On the standby, compared with the primary, output for output:
#   es_replay of every stream, es_replay(stream, n) for every n from 0 to
#   the version, es_replay_at at every event's created_at and just before
#   it (and before the first event), es_replay_all of both categories,
#   es_read of a stream; with the default state cache and with
#   eventsourcing.state_cache_size = 0 (every replay from the snapshots).
# Also on the standby: es_snapshot (of a stream with and without a
# snapshot at its version), es_append, es_append_batch, a plain INSERT and
# es_define fail with SQLSTATE 25006 (read-only transaction) and the
# session goes on working; snapshots are not changed; the standby's log
# shows no crash (no "terminated by signal", PANIC or TRAP) and it still
# accepts connections.
#
# Exit status 0 only if every check passed.
# shellcheck source-path=SCRIPTDIR source=lib/common.bash
export PGPORT=${PGPORT:-${STANDBY_PRIMARY_PORT:-25471}}
. "$(dirname "$0")/lib/common.bash"

# the pair's settings are ours alone
unset ES_EXTRA_CONF
REPO=${ES_REPO:-$(cd "$(dirname "$0")/../.." && pwd -P)}
P_PORT=${STANDBY_PRIMARY_PORT:-25471}
S_PORT=${STANDBY_PORT:-25472}
PAIR_DIR=$(mktemp -d "/tmp/es_standby_pair.XXXXXX")
chmod 755 "$PAIR_DIR"
P_DIR="$PAIR_DIR/primary"
S_DIR="$PAIR_DIR/standby"
DB=es_standby
PAIR_STARTED=false

# as_pg CMD...: run CMD as the OS user that owns the clusters
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u postgres -- env PATH="$PATH" "$@")
	else
		(cd / && "$@")
	fi
}

# shellcheck disable=SC2317  # (invoked by the EXIT trap)
# pair_cleanup: destroy both clusters of the pair, then the usual cleanup
pair_cleanup() {
	local rc=$?
	set +e
	if $PAIR_STARTED; then
		if [ "${ES_KEEP:-0}" = 1 ]; then
			echo "$ES_SUITE: ES_KEEP=1: kept the pair in $PAIR_DIR (ports $P_PORT, $S_PORT)"
		else
			"$REPO/test/cluster.sh" "$S_DIR" "$S_PORT" destroy >/dev/null 2>&1 || true
			"$REPO/test/cluster.sh" "$P_DIR" "$P_PORT" destroy >/dev/null 2>&1 || true
		fi
	fi
	[ "${ES_KEEP:-0}" = 1 ] || rm -rf "$PAIR_DIR"
	(exit "$rc")
	es_cleanup
}
trap pair_cleanup EXIT

# qp SQL / qs SQL: tuples only on the primary / the standby
qp() { psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$P_PORT" -U postgres -d "$DB" -c "$1"; }
qs() { psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$S_PORT" -U postgres -d "$DB" -c "$1"; }

# sqlstate_on_standby SQL: "ERROR:  <sqlstate>" of SQL run on the standby,
# or its output if it succeeded
sqlstate_on_standby() {
	psql -X -q -At -h 127.0.0.1 -p "$S_PORT" -U postgres -d "$DB" \
		-c '\set VERBOSITY sqlstate' -c "$1" 2>&1 || true
}

for port in "$P_PORT" "$S_PORT"; do
	if pg_isready -q -h 127.0.0.1 -p "$port" -t 1; then
		die "port $port is already in use (a server answers there); set STANDBY_PRIMARY_PORT / STANDBY_PORT"
	fi
done

# ---- the pair ----
PAIR_STARTED=true
log "primary: $P_DIR on port $P_PORT"
"$REPO/test/cluster.sh" "$P_DIR" "$P_PORT" start >"$PAIR_DIR/primary-start.log" 2>&1 ||
	die "primary did not start: $(tail -n 20 "$PAIR_DIR/primary-start.log")"

log "standby: pg_basebackup -R into $S_DIR, port $S_PORT"
mkdir -p "$S_DIR"
chmod 700 "$S_DIR"
[ "$(id -u)" -ne 0 ] || chown postgres: "$S_DIR"
as_pg pg_basebackup -h 127.0.0.1 -p "$P_PORT" -U postgres -D "$S_DIR" -R -X stream -c fast \
	>"$PAIR_DIR/basebackup.log" 2>&1 ||
	die "pg_basebackup failed: $(cat "$PAIR_DIR/basebackup.log")"
# its own port and socket directory, an empty log
as_pg mkdir -p "$S_DIR/socket" "$S_DIR/log"
as_pg chmod 700 "$S_DIR/socket"
as_pg rm -f "$S_DIR/log/postgresql.log"
{
	echo ""
	echo "# ---- standby (040_standby.sh) ----"
	echo "port = $S_PORT"
	echo "unix_socket_directories = '$S_DIR/socket'"
	echo "hot_standby = on"
} | as_pg tee -a "$S_DIR/postgresql.auto.conf" >/dev/null
"$REPO/test/cluster.sh" "$S_DIR" "$S_PORT" start >"$PAIR_DIR/standby-start.log" 2>&1 ||
	die "standby did not start: $(tail -n 20 "$PAIR_DIR/standby-start.log")"
check "standby is in recovery" "$(psql -X -At -h 127.0.0.1 -p "$S_PORT" -U postgres -d postgres -c 'SELECT pg_is_in_recovery()')" t

# ---- events on the primary ----
psql -X -q -h 127.0.0.1 -p "$P_PORT" -U postgres -d postgres -c "CREATE DATABASE $DB" ||
	die "CREATE DATABASE on the primary failed"
psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$P_PORT" -U postgres -d "$DB" >"$PAIR_DIR/load.out" 2>&1 <<'SQL' ||
CREATE EXTENSION eventsourcing;
SELECT es_define('playbook', 'module_add',
    '[{"op": "merge", "path": "", "value": {"modules": {}, "names": {}}},
      {"op": "absent", "path": "/modules/{/moduleId}"},
      {"op": "add", "path": "/modules/{/moduleId}", "value": {"$data": "/module"}},
      {"op": "add", "path": "/modules/{/moduleId}/added_at", "value": {"$event": "sequence_number"}}]',
    '{"type": "object", "required": ["moduleId", "module"],
      "properties": {"moduleId": {"type": "string"}, "module": {"type": "object"}}}');
SELECT es_define('playbook', 'module_move',
    '[{"op": "exists", "path": "/modules/{/moduleId}"},
      {"op": "add", "path": "/modules/{/moduleId}/position", "value": {"$data": "/position"}}]');
SELECT es_define('playbook', 'module_delete',
    '[{"op": "exists", "path": "/modules/{/moduleId}"},
      {"op": "remove", "path": "/modules/{/moduleId}"}]');
SELECT es_define('playbook', 'rename',
    '[{"op": "merge", "path": "", "value": {"title": {"$data": "/title"}, "by": {"$event": "username"}}}]');

SET eventsourcing.snapshot_every = 5;
-- 30 streams, stream s gets about 1.5 * s events: adds, moves, deletes,
-- renames; each stream in transactions of a few events
DO $$
DECLARE
    n int;
BEGIN
    FOR s IN 1 .. 30 LOOP
        n := 0;
        FOR m IN 1 .. s LOOP
            PERFORM es_append('playbook-' || s, 'module_add',
                jsonb_build_object('moduleId', 'm' || m,
                                   'module', jsonb_build_object('name', 'mod ' || m, 'params', jsonb_build_object('n', m))),
                username => 'u' || (m % 3));
            IF m % 2 = 0 THEN
                PERFORM es_append('playbook-' || s, 'module_move',
                    jsonb_build_object('moduleId', 'm' || m, 'position', jsonb_build_object('x', m, 'y', s)));
            END IF;
            IF m % 7 = 0 THEN
                PERFORM es_append('playbook-' || s, 'module_delete', jsonb_build_object('moduleId', 'm' || (m - 3)));
                PERFORM es_append('playbook-' || s, 'rename', jsonb_build_object('title', 'title ' || m),
                                  username => 'renamer');
            END IF;
        END LOOP;
    END LOOP;
END
$$;
-- more events later, in other transactions, so that times differ
SELECT pg_sleep(0.05);
SELECT count(*) FROM (
    SELECT es_append('playbook-' || s, 'rename', jsonb_build_object('title', 'late ' || s))
    FROM generate_series(1, 30, 3) s) x;
SELECT pg_sleep(0.05);
SELECT count(*) FROM (
    SELECT es_append('playbook-' || s, 'module_move',
                     jsonb_build_object('moduleId', 'm1', 'position', jsonb_build_object('x', -s)))
    FROM generate_series(1, 30, 2) s) x;
-- short streams (1..4 events, below snapshot_every): no snapshot
SELECT count(*) FROM (
    SELECT es_append('playbook-short' || s, 'module_add',
                     jsonb_build_object('moduleId', 'm' || m, 'module', jsonb_build_object('n', m)))
    FROM generate_series(1, 6) s, generate_series(1, 1 + s % 4) m) x;
-- on-demand snapshots, also of a short stream
SELECT es_snapshot('playbook-2'), es_snapshot('playbook-3'), es_snapshot('playbook-17');
-- a category without definitions
SELECT count(*) FROM (
    SELECT es_append('image-' || (i % 4), 'image_added', jsonb_build_object('path', i || '.jpg'))
    FROM generate_series(1, 12) i) x;
SQL
	die "loading the primary failed: $(tail -n 30 "$PAIR_DIR/load.out")"

log "primary: $(qp "SELECT format('%s events in %s streams, %s snapshots of %s streams',
        (SELECT count(*) FROM es.events), (SELECT count(*) FROM es.streams),
        (SELECT count(*) FROM es.snapshots), (SELECT count(DISTINCT stream) FROM es.snapshots))")"
n=$(qp "SELECT count(*) FROM es.streams s WHERE category = 'playbook'
          AND NOT EXISTS (SELECT FROM es.snapshots p WHERE p.stream = s.stream)")
if [ "$n" -ge 5 ]; then
	pass "primary: $n playbook streams have no snapshot"
else
	fail "primary: only $n playbook streams have no snapshot (the test wants at least 5)"
fi
n=$(qp "SELECT count(DISTINCT stream) FROM es.snapshots")
if [ "$n" -ge 10 ]; then
	pass "primary: $n streams have snapshots"
else
	fail "primary: only $n streams have snapshots (eventsourcing.snapshot_every = 5 was set)"
fi
check "primary: es_replay('playbook-14') title and module count" \
	"$(qp "SELECT (es_replay('playbook-14')->>'title') || '/' || (SELECT count(*) FROM jsonb_object_keys(es_replay('playbook-14')->'modules'))")" \
	"title 14/12"

# ---- wait until the standby has replayed everything ----
lsn=$(qp "SELECT pg_current_wal_lsn()")
caught_up=f
for _ in $(seq 1 120); do
	caught_up=$(qs "SELECT coalesce(pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn, false)" 2>/dev/null || echo f)
	[ "$caught_up" = t ] && break
	sleep 0.5
done
check "standby replayed the primary's WAL up to $lsn" "$caught_up" t
[ "$caught_up" = t ] || die "standby did not catch up within 60 s"

# ---- the same answers on both ----
# compare LABEL SQL: run SQL on both (psql -A, with headers), compare
compare() {
	local label=$1 sql=$2 fp="$PAIR_DIR/primary.$3.out" fs="$PAIR_DIR/standby.$3.out" opts=${4:-}
	psql -X -q -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$P_PORT" -U postgres -d "$DB" \
		-c "SET TimeZone = 'UTC'" ${opts:+-c "$opts"} -c "$sql" >"$fp" 2>&1 ||
		{ fail "$label: failed on the primary: $(head -n 5 "$fp")"; return; }
	psql -X -q -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$S_PORT" -U postgres -d "$DB" \
		-c "SET TimeZone = 'UTC'" ${opts:+-c "$opts"} -c "$sql" >"$fs" 2>&1 ||
		{ fail "$label: failed on the standby: $(head -n 5 "$fs")"; return; }
	if cmp -s "$fp" "$fs"; then
		pass "$label: standby = primary ($(($(wc -l <"$fp") - 2)) rows, md5 $(md5sum <"$fp" | cut -c1-12))"
	else
		fail "$label: standby differs from primary:"
		diff "$fp" "$fs" | head -n 20 | sed 's/^/    /'
	fi
}

SQL_REPLAY="SELECT stream, version, es_replay(stream) AS state FROM es.streams ORDER BY stream"
SQL_REPLAY_N="SELECT s.stream, n, es_replay(s.stream, n) AS state
                FROM es.streams s, generate_series(0, s.version) n ORDER BY 1, 2"
SQL_REPLAY_AT="SELECT e.stream, e.sequence_number,
                      es_replay_at(e.stream, e.created_at) AS at_event,
                      es_replay_at(e.stream, e.created_at - interval '1 microsecond') AS before_event
                 FROM es.events e ORDER BY e.stream, e.sequence_number"
SQL_REPLAY_AT0="SELECT stream, es_replay_at(stream, '2000-01-01') AS before_all,
                       es_replay_at(stream, now() + interval '1 day') AS after_all
                  FROM es.streams ORDER BY stream"
SQL_REPLAY_ALL="SELECT * FROM es_replay_all('playbook') UNION ALL SELECT * FROM es_replay_all('image')"
SQL_READ="SELECT global_position, stream, sequence_number, event_id, event_type, data, metadata,
                 user_id, username, created_at FROM es_read('playbook-21')"
SQL_SNAP="SELECT stream, sequence_number, definitions_hash, state FROM es.snapshots ORDER BY 1, 2"

for cache in default 0; do
	opts=""
	[ "$cache" = default ] || opts="SET eventsourcing.state_cache_size = $cache"
	compare "es_replay of every stream (cache $cache)" "$SQL_REPLAY" "replay.$cache" "$opts"
	compare "es_replay(stream, n) for every n (cache $cache)" "$SQL_REPLAY_N" "replay_n.$cache" "$opts"
	compare "es_replay_at at and before every event (cache $cache)" "$SQL_REPLAY_AT" "replay_at.$cache" "$opts"
	compare "es_replay_at before the first and after the last event (cache $cache)" "$SQL_REPLAY_AT0" "replay_at0.$cache" "$opts"
	compare "es_replay_all('playbook') and ('image') (cache $cache)" "$SQL_REPLAY_ALL" "replay_all.$cache" "$opts"
done
compare "es_read('playbook-21')" "$SQL_READ" read
compare "es.snapshots rows" "$SQL_SNAP" snapshots

# es_replay from the primary folded without snapshots equals the standby's
# (which reads the snapshots): the snapshots the standby uses are right
psql -X -q -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$P_PORT" -U postgres -d "$DB" >"$PAIR_DIR/primary.nosnap.out" 2>&1 <<SQL || fail "replay without snapshots on the primary failed: $(head -n 5 "$PAIR_DIR/primary.nosnap.out")"
SET eventsourcing.state_cache_size = 0;
BEGIN;
DELETE FROM es.snapshots;
$SQL_REPLAY;
ROLLBACK;
SQL
grep -v -e '^BEGIN$' -e '^DELETE [0-9]*$' -e '^ROLLBACK$' -e '^SET$' "$PAIR_DIR/primary.nosnap.out" >"$PAIR_DIR/primary.nosnap.rows" || true
grep -v '^SET$' "$PAIR_DIR/standby.replay.0.out" >"$PAIR_DIR/standby.replay.0.rows" || true
if cmp -s "$PAIR_DIR/primary.nosnap.rows" "$PAIR_DIR/standby.replay.0.rows"; then
	pass "es_replay on the standby (from snapshots, no cache) = primary's fold without snapshots"
else
	fail "es_replay on the standby differs from the primary's fold without snapshots:"
	diff "$PAIR_DIR/primary.nosnap.rows" "$PAIR_DIR/standby.replay.0.rows" | head -n 20 | sed 's/^/    /'
fi

# the results are not trivially empty
check "standby: es_replay('playbook-30') module count" \
	"$(qs "SELECT count(*) FROM jsonb_object_keys(es_replay('playbook-30')->'modules')")" \
	"$(qp "SELECT count(*) FROM jsonb_object_keys(es_replay('playbook-30')->'modules')")"
check "standby: es_replay of a category without definitions" "$(qs "SELECT es_replay('image-1')")" "{}"
check "standby: es_replay(stream, 0)" "$(qs "SELECT es_replay('playbook-5', 0)")" "{}"

# ---- writes are refused on the standby ----
snapshots_before=$(qs "SELECT count(*) || '/' || coalesce(max(created_at)::text, '') FROM es.snapshots")
check "standby: es_snapshot of a stream with a snapshot at its version" \
	"$(sqlstate_on_standby "SELECT es_snapshot('playbook-17')")" "ERROR:  25006"
check "standby: es_snapshot of a stream without any snapshot" \
	"$(sqlstate_on_standby "SELECT es_snapshot('playbook-short2')")" "ERROR:  25006"
check "standby: es_snapshot of a stream with a snapshot below its version" \
	"$(sqlstate_on_standby "SELECT es_snapshot('playbook-4')")" "ERROR:  25006"
check "standby: es_snapshot of a long stream" \
	"$(sqlstate_on_standby "SELECT es_snapshot('playbook-29')")" "ERROR:  25006"
check "standby: es_append" \
	"$(sqlstate_on_standby "SELECT es_append('playbook-1', 'rename', '{\"title\": \"x\"}')")" "ERROR:  25006"
check "standby: es_append to a new stream" \
	"$(sqlstate_on_standby "SELECT es_append('playbook-new', 'rename', '{\"title\": \"x\"}')")" "ERROR:  25006"
check "standby: es_append_batch" \
	"$(sqlstate_on_standby "SELECT es_append_batch('playbook-1', '[{\"event_type\": \"rename\", \"data\": {\"title\": \"x\"}}]')")" "ERROR:  25006"
check "standby: INSERT INTO es.events" \
	"$(sqlstate_on_standby "INSERT INTO es.events (stream, event_type, data) VALUES ('playbook-1', 'rename', '{\"title\": \"x\"}')")" "ERROR:  25006"
check "standby: es_define" \
	"$(sqlstate_on_standby "SELECT es_define('playbook', 'other', '[]')")" "ERROR:  25006"
info=$(sqlstate_on_standby "SELECT es_snapshot('playbook-nothing')")
echo "INFO: standby: es_snapshot of a stream without events: $info"
# one session: the failures do not break it
got=$(psql -X -q -At -h 127.0.0.1 -p "$S_PORT" -U postgres -d "$DB" 2>&1 <<'SQL' || true
\set VERBOSITY sqlstate
SELECT es_replay('playbook-9') IS NOT NULL;
SELECT es_snapshot('playbook-9');
SELECT es_append('playbook-9', 'rename', '{"title": "x"}');
SELECT es_replay('playbook-9') = es_replay('playbook-9', es_version('playbook-9'));
SELECT count(*) > 0 FROM es_read('playbook-9');
SQL
)
check "standby: one session, replay / es_snapshot / es_append / replay / read" \
	"$(echo "$got" | tr '\n' ' ')" "t ERROR:  25006 ERROR:  25006 t t "
check "standby: es.snapshots unchanged by the attempts" \
	"$(qs "SELECT count(*) || '/' || coalesce(max(created_at)::text, '') FROM es.snapshots")" "$snapshots_before"

# ---- the servers are healthy ----
check "standby still accepts connections" "$(qs "SELECT pg_is_in_recovery()")" t
check "primary still accepts connections" "$(qp "SELECT NOT pg_is_in_recovery()")" t
for side in standby primary; do
	if [ $side = standby ]; then d=$S_DIR; else d=$P_DIR; fi
	logfile=$(readlink -f "$d")/log/postgresql.log
	if [ ! -f "$logfile" ]; then
		fail "$side log $logfile not found"
	elif grep -qE 'terminated by signal|PANIC|TRAP:|server process .* was terminated|was terminated by exception' "$logfile"; then
		fail "$side log shows a crash:"
		grep -E 'terminated by signal|PANIC|TRAP:|was terminated' "$logfile" | head -n 10 | sed 's/^/    /'
	else
		pass "$side log shows no crash ($(grep -c 'ERROR:' "$logfile" || true) ERROR lines)"
	fi
done

es_finish
